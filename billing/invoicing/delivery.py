"""Storing the PDF and emailing the invoice, each safe to repeat.

PDF: rendered from the frozen document and stored under `invoices/<reseller>/<number>.pdf`;
`invoice_pdf_store` does nothing when the file is already there, so the cycle can call it
for every issued invoice without a PDF.

Email: every delivery is an `InvoiceEmail` row. `invoice_email_send` claims it under a row
lock (queued/failed -> sending), sends outside the transaction, then records `sent` (or
`failed` and re-raises for the task's retry). A row already `sent` or `sending` is never
sent again, so a task retried or delivered twice sends one email. A resend is a new row.
"""

from __future__ import annotations

import datetime as dt
import logging
from email.utils import make_msgid

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Case, CharField, Value, When

from accounts.models import Reseller
from billing.invoicing.rendering import invoice_document
from billing.models import Invoice, InvoiceEmail, InvoiceLine, InvoiceStatus, InvoiceUsage
from config.errors import ApplicationError

logger = logging.getLogger(__name__)

#: A queued delivery not claimed after this long is dispatched again by the cycle.
REDISPATCH_AFTER = dt.timedelta(minutes=15)
# A send claimed this long ago and not finished: its worker died (SMTP timeouts are shorter).
STALE_CLAIM_AFTER = dt.timedelta(minutes=15)


def invoice_pdf_render(
    *,
    invoice: Invoice,
    lines: list[InvoiceLine] | None = None,
    usage: list[InvoiceUsage] | None = None,
) -> bytes:
    """The invoice's PDF bytes, rendered from its frozen document (no storage).
    `lines`/`usage`: the invoice's rows when the caller already holds them."""
    from billing.pdf import render_invoice_pdf

    return render_invoice_pdf(invoice_document(invoice, lines=lines, usage=usage))


def invoice_pdf_store(
    *,
    invoice: Invoice,
    now: dt.datetime,
    force: bool = False,
    lines: list[InvoiceLine] | None = None,
    usage: list[InvoiceUsage] | None = None,
) -> Invoice:
    """Render and store the PDF of an issued invoice once (again with `force`)."""
    if invoice.status == InvoiceStatus.DRAFT:
        raise ApplicationError("invoice_not_issued", "Drafts are previewed, not stored as PDF.")
    if invoice.pdf and not force:
        return invoice
    data = invoice_pdf_render(invoice=invoice, lines=lines, usage=usage)
    invoice_pdfs_save(pdfs=[(invoice, data)], now=now)
    return invoice


def invoice_pdfs_save(*, pdfs: list[tuple[Invoice, bytes]], now: dt.datetime) -> None:
    """Store rendered PDFs of issued invoices under `invoices/<reseller>/<number>.pdf` and
    record them on their rows (one UPDATE for the lot)."""
    names: dict[int, str] = {}
    for invoice, data in pdfs:
        if invoice.status == InvoiceStatus.DRAFT:
            raise ApplicationError("invoice_not_issued", "Drafts are previewed, not stored as PDF.")
        name = invoice.pdf.storage.save(
            f"invoices/{invoice.reseller.slug}/{invoice.number}.pdf", ContentFile(data)
        )
        names[invoice.pk] = name
        invoice.pdf.name = name
        invoice.pdf_rendered_at = now
    if not names:
        return
    if len(names) == 1:
        ((pk, name),) = names.items()
        Invoice.objects.filter(pk=pk).update(pdf=name, pdf_rendered_at=now)
        return
    Invoice.objects.filter(pk__in=list(names)).update(
        pdf=Case(
            *(When(pk=pk, then=Value(name)) for pk, name in names.items()),
            output_field=CharField(),
        ),
        pdf_rendered_at=now,
    )


def invoices_deliver_rendered(
    done: list[tuple[Invoice, bytes | None, InvoiceEmail | None]], now: dt.datetime
) -> None:
    """After a batch was issued and rendered: store the PDFs, then queue the emails (a PDF
    that failed is rendered again by the cycle's catch-up, or when its email is built)."""
    pdfs = [(invoice, data) for invoice, data, _ in done if data is not None]
    try:
        invoice_pdfs_save(pdfs=pdfs, now=now)
    except Exception:
        logger.exception("storing %d PDFs failed; the cycle renders them again", len(pdfs))
    for _invoice, _data, delivery in done:
        if delivery is not None:
            invoice_email_dispatch(delivery=delivery)


def invoice_pdf_bytes(*, invoice: Invoice, now: dt.datetime) -> bytes:
    if not invoice.pdf:
        invoice_pdf_store(invoice=invoice, now=now)
    with invoice.pdf.open("rb") as fh:
        return fh.read()


def invoice_pdfs_render_missing(*, reseller: Reseller, now: dt.datetime) -> list[int]:
    """Render the PDFs of issued invoices that have none (a crash after finalization)."""
    done = []
    for invoice in (
        Invoice.objects.for_reseller(reseller)
        .exclude(status=InvoiceStatus.DRAFT)
        .filter(pdf="")
        .select_related("reseller")
    ):
        try:
            invoice_pdf_store(invoice=invoice, now=now)
        except Exception:
            logger.exception("PDF rendering failed again for invoice %s", invoice.pk)
        else:
            done.append(invoice.pk)
    return done


def invoice_email_dispatch(*, delivery: InvoiceEmail) -> None:
    """Enqueue the send task once the current transaction commits."""
    from billing.tasks import invoice_email_send_task

    invoice_email_send_task.delay_on_commit(delivery.pk)


def invoice_emails_redispatch(*, reseller: Reseller, now: dt.datetime) -> list[int]:
    """Dispatch again deliveries still queued long after queueing (a lost task message), and
    deliveries claimed for sending long ago that never finished (the worker died mid-send).

    Safe: sending claims the row, so a duplicate task sends nothing. A stale `sending` row
    is first turned `failed` by a status-conditional update, so two cycles never both
    take it. Its mail may already have left (a worker killed after the SMTP server
    accepted it): that is the one window where a customer can get the same invoice twice,
    both Message-IDs naming the same delivery (`<...invoice.sequence@...>`); never more, since
    the resend is claimed like any send.
    """
    deliveries = InvoiceEmail.objects.for_reseller(reseller)
    abandoned = list(
        deliveries.filter(
            status=InvoiceEmail.Status.SENDING, claimed_at__lt=now - STALE_CLAIM_AFTER
        ).values_list("pk", flat=True)
    )
    for pk in abandoned:
        InvoiceEmail.objects.filter(pk=pk, status=InvoiceEmail.Status.SENDING).update(
            status=InvoiceEmail.Status.FAILED,
            last_error="the worker stopped while sending; sent again (the first attempt "
            "may have been delivered)",
        )
    stale = abandoned + list(
        deliveries.filter(
            status=InvoiceEmail.Status.QUEUED, queued_at__lt=now - REDISPATCH_AFTER
        ).values_list("pk", flat=True)
    )
    for pk in stale:
        invoice_email_dispatch(delivery=InvoiceEmail(pk=pk))
    return stale


def _claim(delivery_id: int, now: dt.datetime) -> InvoiceEmail | None:
    with transaction.atomic():
        delivery = (
            InvoiceEmail.objects.select_for_update(of=("self",))
            .select_related("invoice__reseller")
            .get(pk=delivery_id)
        )
        if delivery.status not in (InvoiceEmail.Status.QUEUED, InvoiceEmail.Status.FAILED):
            return None
        delivery.status = InvoiceEmail.Status.SENDING
        delivery.attempts += 1
        delivery.claimed_at = now
        delivery.save(update_fields=["status", "attempts", "claimed_at"])
        return delivery


def invoice_email_send(*, delivery: InvoiceEmail, now: dt.datetime) -> InvoiceEmail:
    """Send one delivery at most once. Returns the row; `status` says what happened.

    Errors while sending mark it `failed` (retryable) and propagate to the caller's retry.
    """
    claimed = _claim(delivery.pk, now)
    if claimed is None:
        return InvoiceEmail.objects.get(pk=delivery.pk)
    invoice = claimed.invoice
    try:
        message = _build_message(invoice=invoice, delivery=claimed, now=now)
        message.send(fail_silently=False)
    except Exception as exc:
        claimed.status = InvoiceEmail.Status.FAILED
        # Exception text from SMTP carries the server's reply, never our credentials.
        claimed.last_error = f"{type(exc).__name__}: {exc}"[:500]
        claimed.save(update_fields=["status", "last_error"])
        raise
    claimed.status = InvoiceEmail.Status.SENT
    claimed.sent_at = now
    claimed.message_id = message.extra_headers.get("Message-ID", "")[:300]
    claimed.last_error = ""
    claimed.save(update_fields=["status", "sent_at", "message_id", "last_error"])
    return claimed


def _build_message(*, invoice: Invoice, delivery: InvoiceEmail, now: dt.datetime):
    from billing.emails import build_invoice_email

    reseller = invoice.reseller
    message = build_invoice_email(
        doc=invoice_document(invoice),
        pdf=invoice_pdf_bytes(invoice=invoice, now=now),
        to=list(delivery.recipients),
        from_email=reseller.sender_email or settings.DEFAULT_FROM_EMAIL,
        reply_to=[reseller.sender_email] if reseller.sender_email else None,
    )
    domain = (reseller.sender_email or settings.DEFAULT_FROM_EMAIL).rpartition("@")[2]
    message.extra_headers["Message-ID"] = make_msgid(
        idstring=f"{invoice.pk}.{delivery.sequence}", domain=domain or None
    )
    return message


def invoice_email_resend(
    *, invoice: Invoice, now: dt.datetime, requested_by: str = "", to: list[str] | None = None
) -> InvoiceEmail:
    """Staff's deliberate resend: a new delivery row (next sequence), dispatched on commit."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status == InvoiceStatus.DRAFT:
            raise ApplicationError("invoice_not_issued", "A draft cannot be emailed.")
        last = InvoiceEmail.objects.filter(invoice=locked).order_by("-sequence").first()
        delivery = InvoiceEmail.objects.create(
            invoice=locked,
            sequence=(last.sequence + 1) if last else 1,
            is_resend=last is not None,
            requested_by=requested_by[:150],
            recipients=to or locked.snapshot.get("buyer", {}).get("emails", []),
            queued_at=now,
        )
        invoice_email_dispatch(delivery=delivery)
    return delivery
