"""The credit note email, built (never sent) from the document and the PDF.

Like the invoice email: customer strings reach the HTML only through autoescaping, the
subject is one line, inline styles only.
"""

from __future__ import annotations

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from billing.credit_notes.document import CreditNoteDocument
from billing.emails import PDF_MIMETYPE, _one_line
from billing.pdf import formatting as fmt


def credit_note_email_subject(doc: CreditNoteDocument) -> str:
    """ "Credit note ACME-CN-2026-00001 from Acme Proxies — USD 60.00" """
    seller = _one_line(doc.seller.name)
    return f"Credit note {doc.number} from {seller} \u2014 {fmt.money(doc.total, doc.currency)}"


def build_credit_note_email(
    *,
    doc: CreditNoteDocument,
    pdf: bytes,
    to: list[str],
    from_email: str,
    reply_to: list[str] | None = None,
    cc: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
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
    message = EmailMultiAlternatives(
        subject=credit_note_email_subject(doc),
        body=render_to_string("billing/credit_note_email.txt", context),
        from_email=from_email,
        to=list(to),
        cc=list(cc) if cc else None,
        reply_to=list(reply_to) if reply_to else None,
        headers=dict(headers) if headers else None,
    )
    message.attach_alternative(
        render_to_string("billing/credit_note_email.html", context), "text/html"
    )
    message.attach(f"{doc.number}.pdf", pdf, PDF_MIMETYPE)
    return message
