"""The reseller-wide usage rollup (`ResellerUsageDay`): bytes of all a reseller's
sub-accounts per local day, so the reseller's series over a month reads a few rows a day
instead of every sub-account's day (900,000 `UsageDay` rows in `bench/api.py`).

Exactness: `usage.services.storage.days_recompute`, the one writer of `UsageDay`, calls
`reseller_usage_days_add` with each changed day's difference (new total minus the stored
one) in the same transaction as the day's own upsert. The difference is exact because the
days of one sub-account have one writer at a time (the sync lock that `days_recompute`
already relies on to sum hours), and the addition is one `INSERT ... ON CONFLICT DO UPDATE
SET bytes = bytes + excluded.bytes`, which PostgreSQL applies under the row's lock: two
syncs of different sub-accounts on the same day both land, whatever their order. A rolled
back sync rolls its addition back with it.

Contention: every sync of a reseller changes today's bytes. One row a day would make
concurrent syncs of different sub-accounts queue on it until each commits; the rows are
therefore split into `SLOTS` by sub-account id, and a read sums them (SLOTS x days rows).

`reseller_usage_days_rebuild` recomputes a reseller's rows from `UsageDay` (after loading
days by other means, or to check): `manage.py rebuild_usage_rollup`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection, transaction

from accounts.models import Customer, Reseller, SubAccount
from usage.models import ResellerUsageDay, UsageDay

#: Rows per reseller and day (sub-account id modulo SLOTS). Changing it needs a rebuild.
SLOTS = 8


def _names() -> dict[str, str]:
    qn = connection.ops.quote_name
    return {
        "rollup": qn(ResellerUsageDay._meta.db_table),
        "days": qn(UsageDay._meta.db_table),
        "subs": qn(SubAccount._meta.db_table),
        "customers": qn(Customer._meta.db_table),
    }


def reseller_usage_days_add(*, sub_account_id: int, changes: Iterable[tuple[dt.date, int]]) -> None:
    """Add `(day, bytes difference)` of one sub-account's days to its reseller's rollup.

    Call in the transaction that wrote those days, with the difference between the day's
    new bytes and the bytes stored before (negative when a correction lowered it). One
    statement; the reseller is read in it (no round trip)."""
    rows = sorted((day, delta) for day, delta in changes if delta)
    if not rows:
        return
    ops = connection.ops
    cast = ("%s::date", "%s::bigint") if connection.vendor == "postgresql" else ("%s", "%s")
    values = ", ".join([f"({cast[0]}, {cast[1]})"] * len(rows))
    names = _names()
    sql = (
        f"WITH changes (day, bytes) AS (VALUES {values}) "  # noqa: S608
        f"INSERT INTO {names['rollup']} (reseller_id, day, slot, bytes) "
        f"SELECT c.reseller_id, changes.day, %s, changes.bytes "
        f"FROM changes, {names['subs']} s JOIN {names['customers']} c ON c.id = s.customer_id "
        f"WHERE s.id = %s "
        f"ON CONFLICT (reseller_id, day, slot) "
        f"DO UPDATE SET bytes = {names['rollup']}.bytes + excluded.bytes"
    )
    params: list = []
    for day, delta in rows:
        params += [ops.adapt_datefield_value(day), delta]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, sub_account_id % SLOTS, sub_account_id])


def _rebuild_sql(names: dict[str, str]) -> str:
    return (
        f"INSERT INTO {names['rollup']} (reseller_id, day, slot, bytes) "  # noqa: S608
        f"SELECT c.reseller_id, d.day, d.sub_account_id %% {SLOTS}, SUM(d.bytes) "
        f"FROM {names['days']} d JOIN {names['subs']} s ON s.id = d.sub_account_id "
        f"JOIN {names['customers']} c ON c.id = s.customer_id "
        f"WHERE c.reseller_id = %s "
        f"GROUP BY c.reseller_id, d.day, d.sub_account_id %% {SLOTS} "
        f"ON CONFLICT (reseller_id, day, slot) DO UPDATE SET bytes = excluded.bytes"
    )


@transaction.atomic
def reseller_usage_days_rebuild(*, reseller: Reseller) -> int:
    """Recompute the reseller's rollup from its `UsageDay` rows; return the rows written.

    Safe while syncs run: a sync that committed before the recount is in it; one still open
    holds the rows it added to, so the delete waits for it (and the recount, a new
    statement, then sees it), and one that adds later adds to the recounted row."""
    names = _names()
    ResellerUsageDay.objects.filter(reseller=reseller).delete()
    with connection.cursor() as cursor:
        cursor.execute(_rebuild_sql(names), [reseller.pk])
    return ResellerUsageDay.objects.filter(reseller=reseller).count()
