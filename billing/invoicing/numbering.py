"""Gapless invoice numbers per reseller and year: `{prefix}-{YYYY}-{NNNNN}`.

The next number comes from the `InvoiceSequence` row, incremented in place by one
`UPDATE ... SET last_number = last_number + 1 RETURNING` in the finalizing transaction: the
UPDATE takes the row lock (like SELECT ... FOR UPDATE) and a concurrent finalization waits,
then reads the committed value (never MAX()+1, which two finalizations can read alike). The
increment commits or rolls back together with the invoice, so a failed finalization leaves
no gap, and concurrent ones queue on the row lock.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import Reseller
from billing.models import InvoiceSequence


def invoice_number_format(*, prefix: str, year: int, number: int) -> str:
    return f"{prefix}-{year:04d}-{number:05d}"


def invoice_number_next(*, reseller: Reseller, year: int) -> tuple[str, int]:
    """Take the next number of `year` for `reseller`. Must run inside the caller's atomic
    block: the lock is held until it commits."""
    return invoice_numbers_next(reseller=reseller, year=year, count=1)[0]


def invoice_numbers_next(*, reseller: Reseller, year: int, count: int) -> list[tuple[str, int]]:
    """Take the next `count` numbers of `year` for `reseller` in one statement (a chunk of
    invoices issued in one transaction). Gapless like one at a time: the increment commits or
    rolls back with the invoices that use the numbers."""
    if count < 1:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("invoice_number_next must run inside a transaction")
    # One statement takes the row lock and increments (held until the caller commits).
    table = InvoiceSequence._meta.db_table
    sql = (
        f"UPDATE {table} SET last_number = last_number + %s "  # noqa: S608 (no user input)
        "WHERE reseller_id = %s AND year = %s RETURNING last_number"
    )
    params = [count, reseller.pk, year]
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:  # the year's first number
            try:
                with transaction.atomic():
                    InvoiceSequence.objects.create(reseller=reseller, year=year)
            except IntegrityError:
                pass  # created concurrently by another finalization: queue on its lock
            cursor.execute(sql, params)
            row = cursor.fetchone()
    last = int(row[0])
    return [
        (invoice_number_format(prefix=reseller.invoice_prefix, year=year, number=n), n)
        for n in range(last - count + 1, last + 1)
    ]
