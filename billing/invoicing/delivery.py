"""Storing the PDF and emailing the invoice, each safe to repeat.

PDF: rendered from the frozen document and stored under `invoices/<reseller>/<number>.pdf`;
`invoice_pdf_store` does nothing when the file is already there, so the cycle can call it
for every issued invoice without a PDF.

Email: every delivery is an `InvoiceEmail` row, sent at most once by `billing.outbox` (a
task retried or delivered twice sends one email). A resend is a new row. A voided invoice's
notice is a row too (kind `void_notice`, one per invoice): no PDF attached, it names the
invoice, its period and total and says it is no longer owed. A reminder (queued by
`billing.dunning`) is checked again when it is sent: with nothing due any more it is not sent
(`reminder_balance_text`).
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Case, CharField, Value, When

from accounts.models import Reseller
from billing import outbox
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.invoicing.pdf_with_credits import invoice_pdf_with_credits
from billing.invoicing.rendering import invoice_document
from billing.models import Invoice, InvoiceEmail, InvoiceLine, InvoiceStatus, InvoiceUsage
from billing.money import format_money
from core.enqueue import enqueue_on_commit
from core.errors import ApplicationError

logger = logging.getLogger(__name__)


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
    """Render and store the PDF of an issued invoice once (again with `force`). Without
    `force` the row is the judge: another writer that stored one first (a batch and the
    recovery sweep) wins, and this one deletes its file and takes the stored one."""
    if invoice.status == InvoiceStatus.DRAFT:
        raise ApplicationError("invoice_not_issued", "Drafts are previewed, not stored as PDF.")
    if not force:
        if not invoice.pdf:
            invoice.refresh_from_db(fields=["pdf", "pdf_rendered_at"])
        if invoice.pdf:
            return invoice
    data = invoice_pdf_render(invoice=invoice, lines=lines, usage=usage)
    invoice_pdfs_save(pdfs=[(invoice, data)], now=now, replace=force)
    return invoice


def invoice_pdfs_save(
    *, pdfs: list[tuple[Invoice, bytes]], now: dt.datetime, replace: bool = False
) -> set[int]:
    """Store rendered PDFs of issued invoices under `invoices/<reseller>/<number>.pdf` and
    record them on their rows (one UPDATE for the lot), on rows without a PDF only unless
    `replace`: a row that got one meanwhile keeps it, and the file written here for it is
    deleted (no orphan files when a batch and the recovery sweep meet). Returns the ids of
    the invoices whose row now names the file written here."""
    names: dict[int, str] = {}
    for invoice, data in pdfs:
        if invoice.status == InvoiceStatus.DRAFT:
            raise ApplicationError("invoice_not_issued", "Drafts are previewed, not stored as PDF.")
        names[invoice.pk] = invoice.pdf.storage.save(
            f"invoices/{invoice.reseller.slug}/{invoice.number}.pdf", ContentFile(data)
        )
    if not names:
        return set()
    invoices = Invoice.objects.rows_of(invoice for invoice, _data in pdfs)
    rows = invoices if replace else invoices.filter(pdf="")
    if len(names) == 1:
        (name,) = names.values()
        rows.update(pdf=name, pdf_rendered_at=now)
    else:
        rows.update(
            pdf=Case(
                *(When(pk=pk, then=Value(name)) for pk, name in names.items()),
                output_field=CharField(),
            ),
            pdf_rendered_at=now,
        )
    recorded = names
    if not replace:
        recorded = dict(invoices.values_list("pk", "pdf"))
    stored = set()
    for invoice, _data in pdfs:
        name = names[invoice.pk]
        if recorded.get(invoice.pk) != name:  # another writer stored its PDF first
            invoice.pdf.storage.delete(name)
            invoice.refresh_from_db(fields=["pdf", "pdf_rendered_at"])
            continue
        invoice.pdf.name = name
        invoice.pdf_rendered_at = now
        stored.add(invoice.pk)
    return stored


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


def invoice_pdfs_render_missing(
    *, reseller: Reseller, now: dt.datetime, issued_before: dt.datetime | None = None
) -> list[int]:
    """Render the PDFs of issued invoices that have none (a crash after finalization), or
    only of those whose row was last written (`updated_at`, wall clock: the finalization's
    chunk, or any later change) before `issued_before` (the sweep leaves the PDFs a running
    batch is about to store to it). Returns the invoices whose PDF this call stored."""
    missing = Invoice.objects.for_reseller(reseller).exclude(status=InvoiceStatus.DRAFT)
    if issued_before is not None:
        missing = missing.filter(updated_at__lt=issued_before)
    done: list[int] = []
    for invoice in missing.filter(pdf="").select_related("reseller"):
        try:
            data = invoice_pdf_render(invoice=invoice)
            done.extend(invoice_pdfs_save(pdfs=[(invoice, data)], now=now))
        except Exception:
            logger.exception("PDF rendering failed again for invoice %s", invoice.pk)
    return done


def invoice_email_dispatch(*, delivery: InvoiceEmail) -> None:
    """Enqueue the send task once the current transaction commits."""
    enqueue_on_commit("billing.tasks.invoice_email_send_task", delivery.pk)


def invoice_emails_redispatch(*, reseller: Reseller, now: dt.datetime) -> list[int]:
    """Dispatch again the reseller's stuck invoice deliveries (`billing.outbox`)."""
    return outbox.email_deliveries_redispatch(
        model=InvoiceEmail,
        reseller=reseller,
        now=now,
        dispatch=lambda pk: invoice_email_dispatch(delivery=InvoiceEmail(pk=pk)),
    )


def invoice_email_send(*, delivery: InvoiceEmail, now: dt.datetime) -> InvoiceEmail:
    """Send one delivery at most once (`billing.outbox`); `status` says what happened. A
    reminder whose invoice has nothing due any more is not sent (`billing.dunning`)."""
    if (
        delivery.kind == InvoiceEmail.Kind.REMINDER
        and reminder_balance_text(delivery=delivery) is None
    ):
        delivery.refresh_from_db()
        return delivery
    return outbox.email_delivery_send(delivery=delivery, now=now, build_message=_build_message)


def _build_message(delivery: InvoiceEmail, now: dt.datetime):
    from billing.emails import build_invoice_email, build_reminder_email, build_void_notice_email

    invoice = delivery.invoice
    envelope = outbox.email_envelope(
        delivery=delivery, idstring=f"{invoice.pk}.{delivery.sequence}"
    )
    if delivery.kind == InvoiceEmail.Kind.VOID_NOTICE:
        return build_void_notice_email(doc=invoice_document(invoice), **envelope)
    if delivery.kind == InvoiceEmail.Kind.REMINDER:
        return build_reminder_email(
            doc=invoice_document(invoice),
            pdf=invoice_pdf_bytes(invoice=invoice, now=now),
            days=delivery.reminder_days,
            balance_due=reminder_balance_text(delivery=delivery) or "",
            **envelope,
        )
    return build_invoice_email(
        doc=invoice_document(invoice), pdf=invoice_pdf_bytes(invoice=invoice, now=now), **envelope
    )


NOT_DUE_NOTE = "not sent: nothing was due any more when it was due to go out"


def reminder_still_due(delivery: InvoiceEmail) -> Decimal | None:
    """The balance still due on a reminder's invoice, or None when nothing is (paid,
    credited in full, voided): then the reminder is not sent."""
    invoice = invoices_with_credit_totals(Invoice.objects.filter(pk=delivery.invoice_id)).first()
    if invoice is None or invoice.status != InvoiceStatus.FINALIZED or invoice.balance_due <= 0:
        return None
    return invoice.balance_due


def reminder_balance_text(*, delivery: InvoiceEmail) -> str | None:
    """The balance due as printed in the reminder; None when the reminder must not go out
    (and then marks it failed with the reason, once)."""
    balance = reminder_still_due(delivery)
    if balance is None:
        InvoiceEmail.objects.filter(pk=delivery.pk, status=InvoiceEmail.Status.QUEUED).update(
            status=InvoiceEmail.Status.FAILED, last_error=NOT_DUE_NOTE
        )
        return None
    return format_money(balance, delivery.invoice.currency)


def invoice_void_notice_queue(*, invoice: Invoice, now: dt.datetime) -> InvoiceEmail | None:
    """Queue the notice that `invoice` was voided, to the addresses it was issued to; sent by
    the task once the caller's transaction commits. Call it in the void's transaction (the
    invoice row locked): a void happens once, and so does its notice (one per invoice, a
    unique constraint). None when the invoice had no recipient."""
    recipients = invoice.snapshot.get("buyer", {}).get("emails", [])
    if not recipients:
        return None
    delivery = InvoiceEmail.objects.create(
        invoice=invoice,
        kind=InvoiceEmail.Kind.VOID_NOTICE,
        sequence=outbox.email_delivery_next_sequence(deliveries=invoice.emails.all()),
        recipients=recipients,
        queued_at=now,
    )
    invoice_email_dispatch(delivery=delivery)
    return delivery


def invoice_email_resend(
    *, invoice: Invoice, now: dt.datetime, requested_by: str = "", to: list[str] | None = None
) -> InvoiceEmail:
    """Staff's deliberate resend: a new delivery row (next sequence), dispatched on commit."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().row_of(invoice).get()
        if locked.status == InvoiceStatus.DRAFT:
            raise ApplicationError("invoice_not_issued", "A draft cannot be emailed.")
        sequence = outbox.email_delivery_next_sequence(deliveries=locked.emails.all())
        delivery = InvoiceEmail.objects.create(
            invoice=locked,
            sequence=sequence,
            is_resend=sequence > 1,
            requested_by=requested_by[:150],
            recipients=to or locked.snapshot.get("buyer", {}).get("emails", []),
            queued_at=now,
        )
        invoice_email_dispatch(delivery=delivery)
    return delivery


def invoice_pdf_content(*, invoice: Invoice) -> bytes:
    """The PDF of an invoice, never writing anything.

    A finalized invoice answers the stored file (the one emailed) when there is one; a draft
    renders on the fly as DRAFT, and a paid or void invoice renders again from its frozen
    snapshot so the watermark shows its current status (a missing stored file renders too).
    """
    credited = invoice_pdf_with_credits(invoice=invoice)  # its credit notes under the total
    if credited is not None:
        return credited
    if invoice.status == InvoiceStatus.FINALIZED and invoice.pdf:
        try:
            with invoice.pdf.open("rb") as fh:
                return fh.read()
        except OSError:
            pass  # lost from storage: render it again from the frozen document
    return invoice_pdf_render(invoice=invoice)
