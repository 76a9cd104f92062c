"""Read-only blocks of the admin invoice page: lines and totals, seller and buyer.

Amounts are formatted in the invoice currency (`format_money`: "$1,234.50", "¥1,235"); the
parties come from the invoice snapshot (what the document prints), never shown as JSON.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString

from billing.credit_notes.selectors import invoice_amount_credited, invoice_balance_due
from billing.models import Invoice, InvoiceStatus
from billing.money import format_money
from billing.payments.selectors import invoice_amount_paid

#: Statuses a credit note can be issued against (the credit note service checks it again).
CREDITABLE = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)


def _credit_note_url(invoice: Invoice) -> str:
    if invoice.status not in CREDITABLE:
        return ""
    try:
        return reverse("admin:billing_creditnote_add") + f"?invoice={invoice.pk}"
    except NoReverseMatch:  # the credit note admin is not registered
        return ""


def invoice_lines_panel(invoice: Invoice) -> SafeString:
    currency = invoice.currency

    def money(amount):
        return format_money(amount, currency)

    lines = [
        {
            "kind": line.get_kind_display(),
            "group": line.group,
            "description": line.description,
            "quantity": "" if line.quantity is None else f"{line.quantity.normalize():f}",
            "unit": line.unit,
            "unit_price": "" if line.unit_price is None else f"{line.unit_price.normalize():f}",
            "amount": money(line.amount),
        }
        for line in invoice.lines.order_by("position")
    ]
    credited = invoice_amount_credited(invoice=invoice)
    paid = invoice_amount_paid(invoice=invoice)
    balance = invoice_balance_due(invoice=invoice, amount_credited=credited, amount_paid=paid)
    return render_to_string(
        "admin/billing/invoice_lines_panel.html",
        {
            "lines": lines,
            "currency": currency,
            "subtotal": money(invoice.subtotal),
            "tax_rate": f"{invoice.tax_rate.normalize():f}",
            "tax": money(invoice.tax),
            "total": money(invoice.total),
            "credited": money(credited),
            "paid": money(paid),
            "balance_due": money(balance),
            "credit_note_url": _credit_note_url(invoice),
        },
    )


def invoice_parties_panel(invoice: Invoice) -> SafeString:
    snapshot = invoice.snapshot or {}
    return render_to_string(
        "admin/billing/invoice_parties_panel.html",
        {
            "parties": [
                ("Seller", snapshot.get("seller") or {}),
                ("Buyer", snapshot.get("buyer") or {}),
            ],
            "payment_instructions": snapshot.get("payment_instructions", ""),
            "unit_note": snapshot.get("unit_note", ""),
            "frozen": invoice.status != InvoiceStatus.DRAFT,
        },
    )
