"""Gapless number series per reseller and year (`YearlySequence` rows: invoices, credit notes).

The next numbers come from the series' row, incremented in place by one
`UPDATE ... SET last_number = last_number + n RETURNING` in the caller's transaction: the
UPDATE takes the row lock (like SELECT ... FOR UPDATE) and a concurrent caller waits, then
reads the committed value (never MAX()+1, which two callers can read alike). The increment
commits or rolls back together with the documents that use the numbers, so a failure leaves
no gap, and concurrent callers queue on the row lock.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import Reseller
from billing.abstract_models import YearlySequence


def yearly_numbers_take(
    *, series: type[YearlySequence], reseller: Reseller, year: int, count: int = 1
) -> range:
    """Take the next `count` numbers of `year` for `reseller`. Must run inside the caller's
    atomic block: the lock is held until it commits."""
    if count < 1:
        return range(0)
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"numbers of {series.__name__} must be taken inside a transaction")
    table = series._meta.db_table
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
                    series.objects.create(reseller=reseller, year=year)
            except IntegrityError:
                pass  # created concurrently by another caller: queue on its lock
            cursor.execute(sql, params)
            row = cursor.fetchone()
    last = int(row[0])
    return range(last - count + 1, last + 1)
