"""Gapless credit note numbers per reseller and year: `{prefix}-CN-{YYYY}-{NNNNN}`.

A series of its own (`CreditNoteSequence`), separate from the invoices', taken in the
issuing transaction (`billing.sequences`): concurrent notes queue on the series' row lock
and a rolled-back note gives its number back.
"""

from __future__ import annotations

from accounts.models import Reseller
from billing.credit_notes.models import CreditNoteSequence
from billing.sequences import yearly_numbers_take


def credit_note_number_format(*, prefix: str, year: int, number: int) -> str:
    return f"{prefix}-CN-{year:04d}-{number:05d}"


def credit_note_number_next(*, reseller: Reseller, year: int) -> tuple[str, int]:
    """Take the next number of `year` for `reseller`; the lock lasts until the caller
    commits, so this must run inside its atomic block."""
    (number,) = yearly_numbers_take(series=CreditNoteSequence, reseller=reseller, year=year)
    return credit_note_number_format(
        prefix=reseller.invoice_prefix, year=year, number=number
    ), number
