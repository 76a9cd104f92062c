"""Writing usage rows: UTC hour buckets and the reseller-local days derived from them.

Two ways to write an hour:
- `hours_replace` (history providers): the upstream's value REPLACES the stored one; equal
  rows are skipped; a changed bucket bumps `revision`.
- `hours_add` (ledger providers): each snapshot interval is new usage, ADDED to the hours
  it spans (idempotency comes from storing each snapshot once, see `ledger.py`).

Days: a day's bytes are the sum of the UTC hours that START inside that calendar day in the
reseller's timezone (`hour_start.astimezone(tz).date()`). DST days therefore hold 23 or 25
hours; in zones with a half-hour offset (Asia/Kolkata, +05:30) the hour 18:00-19:00Z runs
23:30-00:30 local and belongs wholly to the first day. After writing hours, every local day
touched by a changed hour is recomputed from UsageHour (never incremented), so days always
equal the sum of their hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from usage.models import UsageDay, UsageHour
from usage.providers.base import BadResponseError, HourlyUsage
from usage.services.rollup import SLOTS, reseller_usage_days_add
from usage.services.sql import upsert_rows
from usage.services.storage_pg import (
    RecordedWrite,
    days_recompute_pg,
    history_rows_replace_pg,
    history_rows_replace_recorded_pg,
    hours_replace_pg,
)

HOUR = dt.timedelta(hours=1)
UTC = dt.UTC


def floor_hour(value: dt.datetime) -> dt.datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: dt.datetime) -> dt.datetime:
    floored = floor_hour(value)
    return floored if floored == value else floored + HOUR


@lru_cache(maxsize=16384)
def _adapt_datetime(vendor: str, value: dt.datetime):
    # `vendor` is part of the cache key: the same process may talk to two databases in tests.
    return connection.ops.adapt_datetimefield_value(value)


def db_datetime(value: dt.datetime):
    """`value` as the database stores it (SQLite: naive UTC text). Hour starts repeat across
    sub-accounts, so the conversion is cached."""
    return _adapt_datetime(connection.vendor, value)


@lru_cache(maxsize=65536)
def local_day(hour_start: dt.datetime, tz: ZoneInfo) -> dt.date:
    """The reseller-local calendar day an hour belongs to: the day it starts in. (Cached:
    the same hours come back for every sub-account of a pass.)"""
    return hour_start.astimezone(tz).date()


@lru_cache(maxsize=4096)
def day_bounds(day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The instants local day `day` starts and the next one starts (aware, in `tz`)."""
    return (
        dt.datetime.combine(day, dt.time(), tzinfo=tz),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz),
    )


def validate_hours(
    hours: Iterable[HourlyUsage], *, window_start: dt.datetime, window_end: dt.datetime
) -> dict[dt.datetime, HourlyUsage]:
    """Refuse what a connector should never have returned, before anything is written."""
    result: dict[dt.datetime, HourlyUsage] = {}
    zero, utc = dt.timedelta(0), dt.UTC
    for item in hours:
        start, nbytes = item.hour_start, item.bytes
        if start.tzinfo is not utc and (start.tzinfo is None or start.utcoffset() != zero):
            raise BadResponseError("hour bucket is not an aware UTC time")
        if start.minute or start.second or start.microsecond:  # UTC: on the hour
            raise BadResponseError("hour bucket does not start on the hour")
        if not window_start <= start < window_end:
            raise BadResponseError("hour bucket outside the requested window")
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
            raise BadResponseError("hour bucket bytes are not a non-negative integer")
        seen = result.get(start)
        if seen is not None and seen.bytes != nbytes:
            raise BadResponseError("two different values for one hour bucket")
        result[start] = item
    return result


def hours_replace(
    *,
    sub_account_id: int,
    hours: dict[dt.datetime, HourlyUsage],
    window_start: dt.datetime,
    window_end: dt.datetime,
) -> set[dt.datetime]:
    """Make stored hours in `[window_start, window_end)` equal the report; return changed hours.

    An hour stored earlier but absent from the report is set to 0 (the upstream no longer
    reports usage there). Call inside a transaction. PostgreSQL compares and writes in one
    statement (`storage_pg`); other databases compare here.
    """
    if connection.vendor == "postgresql":
        return hours_replace_pg(
            sub_account_id=sub_account_id,
            hours=hours,
            window_start=window_start,
            window_end=window_end,
            stamp=timezone.now(),
        )
    table = connection.ops.quote_name(UsageHour._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT hour_start, bytes, raw_value, raw_unit, revision FROM {table} "  # noqa: S608
            "WHERE sub_account_id = %s AND hour_start >= %s AND hour_start < %s",
            [sub_account_id, db_datetime(window_start), db_datetime(window_end)],
        )
        # Keyed by the database's own representation: no datetime parsing per row.
        stored = {row[0]: row[1:] for row in cursor.fetchall()}
    existing = {}
    for start in hours:
        key = db_datetime(start)
        if key in stored:
            existing[start] = stored.pop(key)
    for value, row in stored.items():  # stored hours the report no longer has
        existing[_parse_db_datetime(value)] = row
    rows: list[tuple] = []
    for start, item in hours.items():
        raw_value, raw_unit = item.raw_value[:40], item.raw_unit[:8]
        old = existing.get(start)
        if old is None:
            revision = 0
        elif old[:3] == (item.bytes, raw_value, raw_unit):
            continue
        else:
            revision = old[3] + (1 if old[0] != item.bytes else 0)
        rows.append((start, item.bytes, raw_value, raw_unit, revision))
    for start, old in existing.items():
        if start not in hours and old[0] != 0:
            rows.append((start, 0, "", "", old[3] + 1))
    _upsert_hours(sub_account_id, rows)
    return {row[0] for row in rows}


def hours_and_days_replace(
    *,
    sub_account_id: int,
    hours: dict[dt.datetime, HourlyUsage],
    window_start: dt.datetime,
    window_end: dt.datetime,
    tz: ZoneInfo,
) -> int:
    """`hours_replace`, then `days_recompute` of the days of the hours it wrote (with the
    reseller rollup's addition); return the rows written (hours + days). In a transaction.
    PostgreSQL does all of it in one statement (`storage_pg.history_rows_replace_pg`)."""
    if connection.vendor != "postgresql" or window_end <= window_start:
        changed = hours_replace(
            sub_account_id=sub_account_id,
            hours=hours,
            window_start=window_start,
            window_end=window_end,
        )
        return len(changed) + days_recompute(sub_account_id=sub_account_id, hours=changed, tz=tz)
    hours_written, days_written = history_rows_replace_pg(
        **_history_arguments(sub_account_id, hours, window_start, window_end, tz)
    )
    return hours_written + days_written


def hours_and_days_replace_recorded(
    *,
    sub_account_id: int,
    hours: dict[dt.datetime, HourlyUsage],
    window_start: dt.datetime,
    window_end: dt.datetime,
    tz: ZoneInfo,
    run: dict,
    run_seconds: float,
    unlock_key: int | None = None,
) -> RecordedWrite | None:
    """`hours_and_days_replace` and the insert of the sync's SyncRun (`run`, see
    `storage_pg.RUN_COLUMNS`) in one statement, atomic without a transaction around it,
    releasing the advisory lock `unlock_key` when given; None where that is not available
    (not PostgreSQL, or an empty window): the caller then writes in a transaction as usual."""
    if connection.vendor != "postgresql" or window_end <= window_start:
        return None
    return history_rows_replace_recorded_pg(
        **_history_arguments(sub_account_id, hours, window_start, window_end, tz),
        run=run,
        run_seconds=run_seconds,
        unlock_key=unlock_key,
    )


def _history_arguments(sub_account_id, hours, window_start, window_end, tz) -> dict:
    """The arguments of the one-statement PostgreSQL write: every local day the window
    touches, with its bounds."""
    return {
        "sub_account_id": sub_account_id,
        "hours": hours,
        "window_start": window_start,
        "window_end": window_end,
        "days": window_days(window_start, window_end, tz),
        "slot": sub_account_id % SLOTS,
        "stamp": timezone.now(),
    }


@lru_cache(maxsize=1024)
def window_days(
    window_start: dt.datetime, window_end: dt.datetime, tz: ZoneInfo
) -> tuple[tuple[dt.date, dt.datetime, dt.datetime], ...]:
    """Every local day of `tz` that the hours of `[window_start, window_end)` start in, with
    its bounds (`day_bounds`), in order. (Cached: every sub-account of a pass syncs the same
    window, and `storage_pg` converts the same tuple to its parameters once.)"""
    first, last = local_day(window_start, tz), local_day(window_end - HOUR, tz)
    return tuple(
        (day, *day_bounds(day, tz))
        for day in (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    )


def hours_add(*, sub_account_id: int, additions: dict[dt.datetime, int]) -> set[dt.datetime]:
    """Add bytes to hour buckets (ledger usage); return the hours written. In a transaction."""
    additions = {hour: n for hour, n in additions.items() if n}
    if not additions:
        return set()
    existing = {
        start: (nbytes, revision)
        for start, nbytes, revision in UsageHour.objects.filter(
            sub_account_id=sub_account_id, hour_start__in=list(additions)
        ).values_list("hour_start", "bytes", "revision")
    }
    rows = []
    for hour, added in additions.items():
        old_bytes, revision = existing.get(hour, (0, 0))
        total = old_bytes + added
        rows.append((hour, total, str(total), "B", revision))
    _upsert_hours(sub_account_id, rows)
    return set(additions)


def days_recompute(*, sub_account_id: int, hours: Iterable[dt.datetime], tz: ZoneInfo) -> int:
    """Recompute the local days containing `hours` from stored UsageHour; return rows written.

    A day whose total changed after it was first written bumps its `revision`.
    """
    days = {local_day(hour, tz) for hour in hours}
    if not days:
        return 0
    ordered = sorted(days)
    if connection.vendor == "postgresql":
        written = days_recompute_pg(
            sub_account_id=sub_account_id,
            bounds=[(day, *day_bounds(day, tz)) for day in ordered],
            stamp=timezone.now(),
        )
        reseller_usage_days_add(sub_account_id=sub_account_id, changes=written)
        return len(written)
    ops = connection.ops
    # The hours starting inside local day D are those in [local midnight D, local midnight
    # D+1) as instants: one conditional sum per day, no rows fetched.
    bounds = [tuple(db_datetime(edge) for edge in day_bounds(day, tz)) for day in ordered]
    sums = ", ".join(
        ["SUM(CASE WHEN hour_start >= %s AND hour_start < %s THEN bytes ELSE 0 END)"] * len(bounds)
    )
    table = ops.quote_name(UsageHour._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {sums} FROM {table} "  # noqa: S608
            "WHERE sub_account_id = %s AND hour_start >= %s AND hour_start < %s",
            [v for pair in bounds for v in pair] + [sub_account_id, bounds[0][0], bounds[-1][1]],
        )
        values = cursor.fetchone()
        totals = {day: int(value or 0) for day, value in zip(ordered, values, strict=True)}
        cursor.execute(
            f"SELECT day, bytes, revision FROM {ops.quote_name(UsageDay._meta.db_table)} "  # noqa: S608
            f"WHERE sub_account_id = %s AND day IN ({', '.join(['%s'] * len(ordered))})",
            [sub_account_id, *(ops.adapt_datefield_value(day) for day in ordered)],
        )
        existing = {_as_date(day): (nbytes, revision) for day, nbytes, revision in cursor}
    rows = []
    for day in sorted(days):
        total = totals.get(day, 0)
        old = existing.get(day)
        if old is not None and old[0] == total:
            continue
        rows.append((day, total, 0 if old is None else old[1] + 1))
    if rows:
        stamp = timezone.now()
        upsert_rows(
            table=UsageDay._meta.db_table,
            columns=["sub_account_id", "day", "bytes", "revision", "updated_at"],
            conflict=["sub_account_id", "day"],
            update=["bytes", "revision", "updated_at"],
            pg_types=["bigint", "date", "bigint", "integer", "timestamptz"],
            rows=[
                (
                    sub_account_id,
                    ops.adapt_datefield_value(day),
                    total,
                    revision,
                    ops.adapt_datetimefield_value(stamp),
                )
                for day, total, revision in rows
            ],
        )
        reseller_usage_days_add(  # the reseller-wide rollup, in this same transaction
            sub_account_id=sub_account_id,
            changes=[(day, total - existing.get(day, (0,))[0]) for day, total, _ in rows],
        )
    return len(rows)


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _parse_db_datetime(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _upsert_hours(sub_account_id: int, rows: list[tuple]) -> None:
    if not rows:
        return
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(timezone.now())
    upsert_rows(
        table=UsageHour._meta.db_table,
        columns=[
            "sub_account_id",
            "hour_start",
            "bytes",
            "raw_value",
            "raw_unit",
            "revision",
            "updated_at",
        ],
        conflict=["sub_account_id", "hour_start"],
        update=["bytes", "raw_value", "raw_unit", "revision", "updated_at"],
        pg_types=["bigint", "timestamptz", "bigint", "text", "text", "integer", "timestamptz"],
        rows=[(sub_account_id, db_datetime(hour), *rest, stamp) for hour, *rest in rows],
    )


def spread_over_hours(
    *, start: dt.datetime, end: dt.datetime, total: int
) -> dict[dt.datetime, int]:
    """Split `total` bytes over the UTC hours `[start, end)` spans, in proportion to the time
    spent in each hour, in integer bytes whose sum is exactly `total`.

    Largest remainder: each hour first gets the floor of its share, then the leftover bytes
    go one each to the hours with the largest fractional parts (earlier hour on ties).
    An empty or reversed interval puts everything in the hour containing `end`.
    """
    if total <= 0:
        return {}
    if end <= start:
        return {floor_hour(end): total}
    weights: list[tuple[dt.datetime, int]] = []
    hour = floor_hour(start)
    while hour < end:
        overlap = min(hour + HOUR, end) - max(hour, start)
        micros = overlap // dt.timedelta(microseconds=1)
        if micros > 0:
            weights.append((hour, micros))
        hour += HOUR
    whole = sum(w for _, w in weights)
    shares = {hour: total * w // whole for hour, w in weights}
    leftover = total - sum(shares.values())
    by_remainder = sorted(weights, key=lambda hw: (-(total * hw[1] % whole), hw[0]))
    for hour, _ in by_remainder[:leftover]:
        shares[hour] += 1
    return {hour: n for hour, n in shares.items() if n}
