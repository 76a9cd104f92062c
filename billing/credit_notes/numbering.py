"""Gapless credit note numbers per reseller and year: `{prefix}-CN-{YYYY}-{NNNNN}`.

A series of its own (`CreditNoteSequence`), separate from the invoices'. The year's row is
locked (SELECT ... FOR UPDATE) and incremented inside the issuing transaction, so concurrent
notes queue on the lock and a rolled-back note gives its number back: never MAX()+1.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import Reseller
from billing.credit_notes.models import CreditNoteSequence


def credit_note_number_format(*, prefix: str, year: int, number: int) -> str:
    return f"{prefix}-CN-{year:04d}-{number:05d}"


def credit_note_number_next(*, reseller: Reseller, year: int) -> tuple[str, int]:
    """Take the next number of `year` for `reseller`; the lock lasts until the caller
    commits, so this must run inside its atomic block."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("credit_note_number_next must run inside a transaction")
    rows = CreditNoteSequence.objects.select_for_update().filter(reseller=reseller, year=year)
    sequence = rows.first()
    if sequence is None:  # the year's first note
        try:
            with transaction.atomic():
                CreditNoteSequence.objects.create(reseller=reseller, year=year)
        except IntegrityError:
            pass  # created concurrently: queue on its lock below
        sequence = rows.get()
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    number = credit_note_number_format(
        prefix=reseller.invoice_prefix, year=year, number=sequence.last_number
    )
    return number, sequence.last_number
