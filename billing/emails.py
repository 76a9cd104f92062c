"""The invoice email (built here from the document and the rendered PDF) and the notice that
an invoice was voided (from the document alone); sent elsewhere.

Building is pure (no sending, no database) so the send task can claim the invoice, build the
message, send it and record the send, and tests can inspect the message without an outbox.
Customer-provided strings reach the HTML body only through Django's autoescaping; the text body
is plain text and is not escaped. The HTML uses inline styles only: no external images or CSS,
which mail clients block and which would leak when the customer opens the email.
"""

from __future__ import annotations

from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from billing.document import InvoiceDocument
from billing.pdf import formatting as fmt

PDF_MIMETYPE = "application/pdf"


def _one_line(text: str) -> str:
    """Collapse whitespace: a newline in a header would be rejected (header injection)."""
    return " ".join(text.split())


def invoice_email_subject(doc: InvoiceDocument) -> str:
    """ "Invoice INV-2026-00001 from Acme Proxies — USD 123.45" (a draft says "Draft invoice")."""
    what = f"Invoice {doc.number}" if doc.number else "Draft invoice"
    seller = _one_line(doc.seller.name)
    return f"{what} from {seller} \u2014 {fmt.money(doc.total, doc.currency)}"


def invoice_attachment_name(doc: InvoiceDocument) -> str:
    return f"{doc.number or 'draft-' + doc.period_start.strftime('%Y-%m')}.pdf"


def void_notice_subject(doc: InvoiceDocument) -> str:
    """ "Invoice INV-2026-00001 from Acme Proxies is void — USD 123.45 not due" """
    seller = _one_line(doc.seller.name)
    total = fmt.money(doc.total, doc.currency)
    return f"Invoice {doc.number} from {seller} is void \u2014 {total} not due"


def _context(doc: InvoiceDocument) -> dict:
    """What both templates of the invoice email and of the void notice show."""
    cur = doc.currency
    return {
        "doc": doc,
        "number": fmt.invoice_label(doc),
        "seller": doc.seller,
        "buyer": doc.buyer,
        "period": fmt.period_label(doc),
        "issued_on": fmt.date_label(doc.issued_on),
        "due_on": fmt.date_label(doc.due_on),
        "subtotal": fmt.money(doc.subtotal, cur),
        "tax_label": f"Tax ({fmt.percent(doc.tax_rate)})",
        "tax": fmt.money(doc.tax, cur),
        "total": fmt.money(doc.total, cur),
        "payment_lines": [line for line in doc.payment_instructions.splitlines() if line.strip()],
        "attachment_name": invoice_attachment_name(doc),
    }


def document_email(
    *,
    subject: str,
    template: str,
    context: dict,
    attachment: tuple[str, bytes] | None = None,
    to: list[str],
    from_email: str,
    reply_to: list[str] | None = None,
    cc: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    """Text body and HTML alternative of `billing/<template>.txt|html`, addressed (the
    addressing is `billing.outbox.email_envelope`'s), with an optional (name, PDF) attached.
    The one builder of every billing email: invoices, void notices, credit notes."""
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"billing/{template}.txt", context),
        from_email=from_email,
        to=list(to),
        cc=list(cc) if cc else None,
        reply_to=list(reply_to) if reply_to else None,
        headers=dict(headers) if headers else None,
    )
    message.attach_alternative(render_to_string(f"billing/{template}.html", context), "text/html")
    if attachment is not None:
        name, content = attachment
        message.attach(name, content, PDF_MIMETYPE)
    return message


def build_invoice_email(
    *, doc: InvoiceDocument, pdf: bytes, **addressing: Any
) -> EmailMultiAlternatives:
    """Build (never send) the invoice email: text body, HTML alternative, the PDF attached.
    `addressing`: `to`, `from_email`, `cc`, `reply_to`, `headers`
    (`billing.outbox.email_envelope`)."""
    return document_email(
        subject=invoice_email_subject(doc),
        template="invoice_email",
        context=_context(doc),
        attachment=(invoice_attachment_name(doc), pdf),
        **addressing,
    )


def build_void_notice_email(*, doc: InvoiceDocument, **addressing: Any) -> EmailMultiAlternatives:
    """Build (never send) the notice that the invoice of `doc` was voided: which invoice,
    its period and total, and that it is not owed. No attachment."""
    return document_email(
        subject=void_notice_subject(doc),
        template="invoice_void_email",
        context=_context(doc),
        **addressing,
    )


def reminder_subject(doc: InvoiceDocument, *, days: int) -> str:
    """ "Payment reminder: invoice INV-2026-00001 from Acme Proxies is due in 3 days" """
    seller = _one_line(doc.seller.name)
    if days < 0:
        when = f"is due in {-days} day{'s' if days != -1 else ''}"
    elif days == 0:
        when = "is due today"
    else:
        when = f"is {days} day{'s' if days != 1 else ''} overdue"
    return f"Payment reminder: invoice {doc.number} from {seller} {when}"


def build_reminder_email(
    *, doc: InvoiceDocument, pdf: bytes, days: int, balance_due: str, **addressing: Any
) -> EmailMultiAlternatives:
    """Build (never send) a payment reminder `days` from the due date (negative: before it),
    with the balance still due and the invoice PDF attached again."""
    context = _context(doc)
    due = context["due_on"]
    if days < 0:
        when_text = f"This is a friendly reminder that invoice {context['number']} is due on {due}."
    elif days == 0:
        when_text = f"Invoice {context['number']} is due today ({due})."
    else:
        when_text = (
            f"Invoice {context['number']} was due on {due} and is now {days} "
            f"day{'s' if days != 1 else ''} overdue. Please pay the balance due."
        )
    return document_email(
        subject=reminder_subject(doc, days=days),
        template="invoice_reminder_email",
        context={**context, "when_text": when_text, "balance_due": balance_due},
        attachment=(invoice_attachment_name(doc), pdf),
        **addressing,
    )
