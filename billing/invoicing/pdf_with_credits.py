"""The invoice PDF with its credits and payments: "Amount credited", "Paid" and "Balance
due" under the total.

The PDF stored and emailed when the invoice was issued is never changed. Once the invoice
has credit notes or payments, the API answers this rendering instead (from the same frozen
document), like it re-renders a paid or void invoice to show its current status.
"""

from __future__ import annotations

from billing.credit_notes.document import InvoiceCredit
from billing.credit_notes.selectors import invoice_amount_credited, invoice_balance_due
from billing.invoicing.rendering import invoice_document
from billing.models import Invoice
from billing.payments.selectors import invoice_amount_paid
from billing.pdf import render_invoice_pdf


def invoice_pdf_with_credits(*, invoice: Invoice) -> bytes | None:
    """The invoice re-rendered with its credits and payments, or None when it has neither
    (or has payments that were refunded in full and no credit note)."""
    credited = invoice_amount_credited(invoice=invoice)
    paid = invoice_amount_paid(invoice=invoice)
    if not credited and not paid:
        return None
    credit = InvoiceCredit(
        amount_credited=credited,
        amount_paid=paid,
        balance_due=invoice_balance_due(
            invoice=invoice, amount_credited=credited, amount_paid=paid
        ),
    )
    return render_invoice_pdf(invoice_document(invoice), credit=credit)
