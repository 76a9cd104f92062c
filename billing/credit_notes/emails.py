"""The credit note email, built (never sent) from the document and the PDF.

Like the invoice email: customer strings reach the HTML only through autoescaping, the
subject is one line, inline styles only.
"""

from __future__ import annotations

from typing import Any

from django.core.mail import EmailMultiAlternatives

from billing.credit_notes.document import CreditNoteDocument
from billing.emails import _one_line, document_email
from billing.pdf import formatting as fmt


def credit_note_email_subject(doc: CreditNoteDocument) -> str:
    """ "Credit note ACME-CN-2026-00001 from Acme Proxies — USD 60.00" """
    seller = _one_line(doc.seller.name)
    return f"Credit note {doc.number} from {seller} \u2014 {fmt.money(doc.total, doc.currency)}"


def build_credit_note_email(
    *, doc: CreditNoteDocument, pdf: bytes, **addressing: Any
) -> EmailMultiAlternatives:
    """Build (never send) the credit note email, the PDF attached; `addressing` as for
    `billing.emails.build_invoice_email`."""
    cur = doc.currency
    context = {
        "doc": doc,
        "seller": doc.seller,
        "buyer": doc.buyer,
        "issued_on": fmt.date_label(doc.issued_on),
        "subtotal": fmt.money(doc.subtotal, cur),
        "tax_label": f"Tax ({fmt.percent(doc.tax_rate)})",
        "tax": fmt.money(doc.tax, cur),
        "total": fmt.money(doc.total, cur),
        "attachment_name": f"{doc.number}.pdf",
    }
    return document_email(
        subject=credit_note_email_subject(doc),
        template="credit_note_email",
        context=context,
        attachment=(f"{doc.number}.pdf", pdf),
        **addressing,
    )
