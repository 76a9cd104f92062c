"""Gapless invoice numbers per reseller and year: `{prefix}-{YYYY}-{NNNNN}`, taken from the
`InvoiceSequence` series in the finalizing transaction (`billing.sequences`)."""

from __future__ import annotations

from accounts.models import Reseller
from billing.models import InvoiceSequence
from billing.sequences import yearly_numbers_take


def invoice_number_format(*, prefix: str, year: int, number: int) -> str:
    return f"{prefix}-{year:04d}-{number:05d}"


def invoice_numbers_next(*, reseller: Reseller, year: int, count: int) -> list[tuple[str, int]]:
    """Take the next `count` numbers of `year` for `reseller` in one statement (a chunk of
    invoices issued in one transaction). Gapless like one at a time: the increment commits or
    rolls back with the invoices that use the numbers."""
    numbers = yearly_numbers_take(series=InvoiceSequence, reseller=reseller, year=year, count=count)
    return [
        (invoice_number_format(prefix=reseller.invoice_prefix, year=year, number=n), n)
        for n in numbers
    ]
