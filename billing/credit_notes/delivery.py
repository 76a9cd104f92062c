"""Storing a credit note's PDF and emailing it, each safe to repeat.

PDF: rendered from the frozen document and stored under
`credit_notes/<reseller>/<number>.pdf`, once (`credit_note_pdf_store` does nothing when the
file is there).

Email: every delivery is a `CreditNoteEmail` row, unique per note and sequence (1 is queued
with the note; a staff resend adds the next). `credit_note_email_send` claims the row under a
row lock (queued/failed -> sending), sends outside the transaction and records `sent`, or
`failed` and re-raises for the task's retry. A row already `sending` or `sent` is never
sent again, so two workers given the same delivery send one email.
"""

from __future__ import annotations

import datetime as dt
import logging
from email.utils import make_msgid

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from accounts.models import Reseller
from billing.credit_notes.models import CreditNote, CreditNoteEmail
from billing.credit_notes.rendering import credit_note_document

logger = logging.getLogger(__name__)

#: A delivery queued (or claimed) this long ago without finishing: its task message was lost
#: or its worker died; the hourly cycle dispatches it again (the claim keeps it to one send).
STALE_AFTER = dt.timedelta(minutes=15)


def credit_note_pdf_render(*, credit_note: CreditNote) -> bytes:
    from billing.pdf import render_credit_note_pdf

    return render_credit_note_pdf(credit_note_document(credit_note))


def credit_note_pdf_store(*, credit_note: CreditNote, now: dt.datetime) -> CreditNote:
    """Render and store the note's PDF unless it is stored already."""
    if credit_note.pdf:
        return credit_note
    data = credit_note_pdf_render(credit_note=credit_note)
    name = credit_note.pdf.storage.save(
        f"credit_notes/{credit_note.reseller.slug}/{credit_note.number}.pdf", ContentFile(data)
    )
    CreditNote.objects.filter(pk=credit_note.pk).update(pdf=name, pdf_rendered_at=now)
    credit_note.pdf.name = name
    credit_note.pdf_rendered_at = now
    return credit_note


def credit_note_pdf_content(*, credit_note: CreditNote) -> bytes:
    """The stored PDF (the one emailed), or a fresh rendering when none is stored (a failed
    render at issue, or a lost file); never writes anything."""
    if credit_note.pdf:
        try:
            with credit_note.pdf.open("rb") as fh:
                return fh.read()
        except OSError:
            pass
    return credit_note_pdf_render(credit_note=credit_note)


def credit_note_email_queue(
    *, credit_note: CreditNote, now: dt.datetime, recipients: list[str], requested_by: str = ""
) -> CreditNoteEmail:
    """A new delivery (the next sequence; the note's row lock or the unique constraint keeps
    two from taking the same), sent by the task once the transaction commits."""
    last = CreditNoteEmail.objects.filter(credit_note=credit_note).order_by("-sequence").first()
    delivery = CreditNoteEmail.objects.create(
        credit_note=credit_note,
        sequence=(last.sequence + 1) if last else 1,
        requested_by=requested_by[:150],
        recipients=list(recipients),
        queued_at=now,
    )
    credit_note_email_dispatch(delivery=delivery)
    return delivery


def credit_note_email_dispatch(*, delivery: CreditNoteEmail) -> None:
    from billing.credit_notes.tasks import credit_note_email_send_task

    credit_note_email_send_task.delay_on_commit(delivery.pk)


def credit_note_email_resend(
    *,
    credit_note: CreditNote,
    now: dt.datetime,
    requested_by: str = "",
    to: list[str] | None = None,
) -> CreditNoteEmail:
    """Staff's deliberate resend: a new delivery row, dispatched on commit."""
    with transaction.atomic():
        locked = (
            CreditNote.objects.select_for_update().select_related("customer").get(pk=credit_note.pk)
        )
        return credit_note_email_queue(
            credit_note=locked,
            now=now,
            recipients=to or locked.customer.billing_emails,
            requested_by=requested_by,
        )


def _claim(delivery_id: int, now: dt.datetime) -> CreditNoteEmail | None:
    with transaction.atomic():
        delivery = (
            CreditNoteEmail.objects.select_for_update(of=("self",))
            .select_related("credit_note__reseller")
            .get(pk=delivery_id)
        )
        if delivery.status not in (CreditNoteEmail.Status.QUEUED, CreditNoteEmail.Status.FAILED):
            return None
        delivery.status = CreditNoteEmail.Status.SENDING
        delivery.attempts += 1
        delivery.claimed_at = now
        delivery.save(update_fields=["status", "attempts", "claimed_at"])
        return delivery


def credit_note_email_send(*, delivery: CreditNoteEmail, now: dt.datetime) -> CreditNoteEmail:
    """Send one delivery at most once; errors mark it `failed` and propagate (retry)."""
    claimed = _claim(delivery.pk, now)
    if claimed is None:
        return CreditNoteEmail.objects.get(pk=delivery.pk)
    try:
        message = _build_message(delivery=claimed, now=now)
        message.send(fail_silently=False)
    except Exception as exc:
        claimed.status = CreditNoteEmail.Status.FAILED
        claimed.last_error = f"{type(exc).__name__}: {exc}"[:500]
        claimed.save(update_fields=["status", "last_error"])
        raise
    claimed.status = CreditNoteEmail.Status.SENT
    claimed.sent_at = now
    claimed.message_id = message.extra_headers.get("Message-ID", "")[:300]
    claimed.last_error = ""
    claimed.save(update_fields=["status", "sent_at", "message_id", "last_error"])
    return claimed


def _build_message(*, delivery: CreditNoteEmail, now: dt.datetime):
    from billing.credit_notes.emails import build_credit_note_email

    note = delivery.credit_note
    reseller = note.reseller
    sender = reseller.sender_email or settings.DEFAULT_FROM_EMAIL
    credit_note_pdf_store(credit_note=note, now=now)
    with note.pdf.open("rb") as fh:
        pdf = fh.read()
    message = build_credit_note_email(
        doc=credit_note_document(note),
        pdf=pdf,
        to=list(delivery.recipients),
        from_email=sender,
        reply_to=[reseller.sender_email] if reseller.sender_email else None,
    )
    message.extra_headers["Message-ID"] = make_msgid(
        idstring=f"cn{note.pk}.{delivery.sequence}", domain=sender.rpartition("@")[2] or None
    )
    return message


def credit_notes_catch_up(*, reseller: Reseller, now: dt.datetime) -> list[int]:
    """The hourly cycle's repair (`invoice_cycle_run`): render PDFs that failed at issue, and
    dispatch again deliveries stuck `queued` or `sending` (a stale claim becomes `failed`
    first, by a status-conditional update, so two cycles never both take it; its mail may
    have left already, the same one-duplicate window as invoices). Returns the deliveries
    dispatched."""
    for note in CreditNote.objects.for_reseller(reseller).filter(pdf="").select_related("reseller"):
        try:
            credit_note_pdf_store(credit_note=note, now=now)
        except Exception:
            logger.exception("PDF rendering failed again for credit note %s", note.pk)
    deliveries = CreditNoteEmail.objects.for_reseller(reseller)
    abandoned = list(
        deliveries.filter(
            status=CreditNoteEmail.Status.SENDING, claimed_at__lt=now - STALE_AFTER
        ).values_list("pk", flat=True)
    )
    for pk in abandoned:
        CreditNoteEmail.objects.filter(pk=pk, status=CreditNoteEmail.Status.SENDING).update(
            status=CreditNoteEmail.Status.FAILED,
            last_error="the worker stopped while sending; sent again",
        )
    stale = abandoned + list(
        deliveries.filter(
            status=CreditNoteEmail.Status.QUEUED, queued_at__lt=now - STALE_AFTER
        ).values_list("pk", flat=True)
    )
    for pk in stale:
        credit_note_email_dispatch(delivery=CreditNoteEmail(pk=pk))
    return stale
