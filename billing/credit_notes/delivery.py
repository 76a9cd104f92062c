"""Storing a credit note's PDF and emailing it, each safe to repeat.

PDF: rendered from the frozen document and stored under
`credit_notes/<reseller>/<number>.pdf`, once (`credit_note_pdf_store` does nothing when the
file is there).

Email: every delivery is a `CreditNoteEmail` row, unique per note and sequence (1 is queued
with the note; a staff resend adds the next), sent at most once by `billing.outbox`, so two
workers given the same delivery send one email.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.files.base import ContentFile
from django.db import transaction

from accounts.models import Reseller
from billing import outbox
from billing.credit_notes.models import CreditNote, CreditNoteEmail
from billing.credit_notes.rendering import credit_note_document
from core.enqueue import enqueue_on_commit

logger = logging.getLogger(__name__)


def credit_note_pdf_render(*, credit_note: CreditNote) -> bytes:
    from billing.pdf import render_credit_note_pdf

    return render_credit_note_pdf(credit_note_document(credit_note))


def credit_note_pdf_store(*, credit_note: CreditNote, now: dt.datetime) -> CreditNote:
    """Render and store the note's PDF unless it is stored already, once: the row is the
    judge (issuing and the first email can both get here, in-process even), and a writer that
    loses the race deletes its file and takes the stored one."""
    if not credit_note.pdf:
        credit_note.refresh_from_db(fields=["pdf", "pdf_rendered_at"])
    if credit_note.pdf:
        return credit_note
    data = credit_note_pdf_render(credit_note=credit_note)
    storage = credit_note.pdf.storage
    name = storage.save(
        f"credit_notes/{credit_note.reseller.slug}/{credit_note.number}.pdf", ContentFile(data)
    )
    recorded = (
        CreditNote.objects.row_of(credit_note).filter(pdf="").update(pdf=name, pdf_rendered_at=now)
    )
    if not recorded:
        storage.delete(name)
        credit_note.refresh_from_db(fields=["pdf", "pdf_rendered_at"])
        return credit_note
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
    delivery = CreditNoteEmail.objects.create(
        credit_note=credit_note,
        sequence=outbox.email_delivery_next_sequence(deliveries=credit_note.emails.all()),
        requested_by=requested_by[:150],
        recipients=list(recipients),
        queued_at=now,
    )
    credit_note_email_dispatch(delivery=delivery)
    return delivery


def credit_note_email_dispatch(*, delivery: CreditNoteEmail) -> None:
    enqueue_on_commit("billing.credit_notes.tasks.credit_note_email_send_task", delivery.pk)


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
            CreditNote.objects.select_for_update()
            .select_related("customer")
            .row_of(credit_note)
            .get()
        )
        return credit_note_email_queue(
            credit_note=locked,
            now=now,
            recipients=to or locked.customer.billing_emails,
            requested_by=requested_by,
        )


def credit_note_email_send(*, delivery: CreditNoteEmail, now: dt.datetime) -> CreditNoteEmail:
    """Send one delivery at most once (`billing.outbox`); `status` says what happened."""
    return outbox.email_delivery_send(delivery=delivery, now=now, build_message=_build_message)


def _build_message(delivery: CreditNoteEmail, now: dt.datetime):
    from billing.credit_notes.emails import build_credit_note_email

    note = delivery.credit_note
    credit_note_pdf_store(credit_note=note, now=now)
    with note.pdf.open("rb") as fh:
        pdf = fh.read()
    return build_credit_note_email(
        doc=credit_note_document(note),
        pdf=pdf,
        **outbox.email_envelope(delivery=delivery, idstring=f"cn{note.pk}.{delivery.sequence}"),
    )


def credit_notes_catch_up(
    *,
    reseller: Reseller,
    now: dt.datetime,
    created_before: dt.datetime | None = None,
) -> list[int]:
    """The repair of the recovery sweep and the hourly cycle (`billing.recovery`): render
    PDFs that failed at issue (of notes created, wall clock, before `created_before`, when
    given), and dispatch again deliveries stuck `queued` or `sending` (`billing.outbox`, the
    same one-duplicate window as invoices). Returns the deliveries dispatched."""
    missing = CreditNote.objects.for_reseller(reseller).filter(pdf="")
    if created_before is not None:
        missing = missing.filter(created_at__lt=created_before)
    for note in missing.select_related("reseller"):
        try:
            credit_note_pdf_store(credit_note=note, now=now)
        except Exception:
            logger.exception("PDF rendering failed again for credit note %s", note.pk)
    return outbox.email_deliveries_redispatch(
        model=CreditNoteEmail,
        reseller=reseller,
        now=now,
        dispatch=lambda pk: credit_note_email_dispatch(delivery=CreditNoteEmail(pk=pk)),
    )
