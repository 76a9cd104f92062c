"""The PostgreSQL statements of `storage.py`: one round trip for a sync's hours, one for
its days, the comparison with stored rows done by the database.

- `hours_replace_pg`: the report goes in as four arrays (`unnest`), is upserted with
  `ON CONFLICT DO UPDATE ... WHERE` the stored values differ (an unchanged bucket is not
  written), and the hours stored in the window but absent from the report are set to 0 in
  the same statement; it returns the hours it wrote.
- `days_recompute_pg`: the changed days' sums over their hours, the days stored before,
  the upsert of those that differ, and each written day's difference from before (for
  the reseller rollup), in one statement.
- `history_rows_replace_pg`: both, then the reseller rollup, in one statement; and
  `history_rows_replace_recorded_pg`, the same plus the sync's SyncRun row, so that an
  IPFoxy sync writes everything in one round trip without a transaction around it.

All keep the semantics `storage.py` documents for every database (revisions, what counts
as unchanged); the SQLite path there compares in Python instead. The query text is
constant, so psycopg converts it once per process instead of parsing a long VALUES list
for every sync (`bench/sync.py` measured that at a tenth of the CPU of a sync).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from django.db import connection

from accounts.models import Customer, SubAccount
from core import rawsql
from usage.models import ResellerUsageDay, SyncRun, UsageDay, UsageHour
from usage.providers.base import BadResponseError, HourlyUsage


def _hours_ctes(hours: str) -> str:
    """The hours part: `report`, then `zeroed` and `written` (the hours it wrote). Positional
    parameters: the four report strings, stamp, sub-account, window start and end,
    sub-account, stamp."""
    return f"""
WITH report (hour_start, bytes, raw_value, raw_unit) AS (
    SELECT to_timestamp(t.epoch), t.bytes, t.raw_value, t.raw_unit
    FROM unnest(
        string_to_array(%s, ',')::bigint[], string_to_array(%s, ',')::bigint[],
        string_to_array(%s, E'\\x1f'), string_to_array(%s, E'\\x1f')
    ) AS t (epoch, bytes, raw_value, raw_unit)
), zeroed AS (
    UPDATE {hours} AS h
    SET bytes = 0, raw_value = '', raw_unit = '', revision = h.revision + 1, updated_at = %s
    WHERE h.sub_account_id = %s AND h.hour_start >= %s AND h.hour_start < %s
      AND h.bytes <> 0 AND h.hour_start NOT IN (SELECT hour_start FROM report)
    RETURNING h.hour_start
), written AS (
    INSERT INTO {hours} AS h
        (sub_account_id, hour_start, bytes, raw_value, raw_unit, revision, updated_at)
    SELECT %s, r.hour_start, r.bytes, left(r.raw_value, 40), left(r.raw_unit, 8), 0, %s
    FROM report r
    ON CONFLICT (sub_account_id, hour_start) DO UPDATE
    SET bytes = excluded.bytes, raw_value = excluded.raw_value, raw_unit = excluded.raw_unit,
        revision = h.revision + (h.bytes <> excluded.bytes)::int,
        updated_at = excluded.updated_at
    WHERE (h.bytes, h.raw_value, h.raw_unit)
        IS DISTINCT FROM (excluded.bytes, excluded.raw_value, excluded.raw_unit)
    RETURNING h.hour_start
)"""  # noqa: S608 - table names come from the models


@cache
def _hours_sql(hours: str) -> str:
    return (
        _hours_ctes(hours)  # noqa: S608 - table names come from the models
        + """
SELECT extract(epoch FROM hour_start)::bigint FROM zeroed
UNION ALL SELECT extract(epoch FROM hour_start)::bigint FROM written
"""
    )


def hours_replace_pg(
    *,
    sub_account_id: int,
    hours: Mapping[dt.datetime, HourlyUsage],
    window_start: dt.datetime,
    window_end: dt.datetime,
    stamp: dt.datetime,
) -> set[dt.datetime]:
    """Make the stored hours of `[window_start, window_end)` equal the report `hours` (by
    UTC hour start); return the hours written.

    The report travels as four delimited strings (hour starts as unix seconds, bytes, raw
    values, raw units) split by the database: joining them costs a few C calls where
    array parameters cost a Python loop per element."""
    epochs = {_epoch(start): start for start in hours}
    sql = _hours_sql(connection.ops.quote_name(UsageHour._meta.db_table))
    params = _hours_params(sub_account_id, hours, epochs, window_start, window_end, stamp)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written = cursor.fetchall()
    return {epochs.get(epoch) or _from_epoch(epoch) for (epoch,) in written}


def _hours_params(sub_account_id, hours, epochs, window_start, window_end, stamp) -> list:
    """The parameters of `_hours_ctes`, in order (`epochs`: the hours' unix seconds, in the
    order of `hours`)."""
    items = hours.values()
    raw_values = _UNIT.join([item.raw_value for item in items])
    raw_units = _UNIT.join([item.raw_unit for item in items])
    if (raw_values + raw_units).count(_UNIT) != 2 * max(len(hours) - 1, 0):
        raise BadResponseError("raw value holds a control character")
    return [
        ",".join(map(str, epochs)), ",".join([str(item.bytes) for item in items]),
        raw_values, raw_units,
        stamp, sub_account_id, window_start, window_end,
        sub_account_id, stamp,
    ]  # fmt: skip


_UNIT = "\x1f"  # ASCII unit separator: never in a raw value (numbers as text) or unit


def _epoch(start: dt.datetime) -> int:
    return int(start.timestamp())  # an hour start: whole seconds


def _from_epoch(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


_BOUNDS = """bounds (day, lo, hi) AS (
    SELECT t.day, to_timestamp(t.lo), to_timestamp(t.hi)
    FROM unnest(
        string_to_array(%s, ',')::date[], string_to_array(%s, ',')::float8[],
        string_to_array(%s, ',')::float8[]
    ) AS t (day, lo, hi)"""


def _days_upsert(days: str, written: str) -> str:
    """`old` (the days of `bounds` stored before) and `written` (the days of `sums` whose
    bytes differ, upserted; their new bytes). Parameters: sub-account, sub-account, stamp."""
    return f"""old AS (
    SELECT d.day, d.bytes, d.revision FROM {days} d
    WHERE d.sub_account_id = %s AND d.day IN (SELECT day FROM bounds)
), {written} AS (
    INSERT INTO {days} AS d (sub_account_id, day, bytes, revision, updated_at)
    SELECT %s, s.day, s.bytes, COALESCE(o.revision + 1, 0), %s
    FROM sums s LEFT JOIN old o ON o.day = s.day
    WHERE o.bytes IS DISTINCT FROM s.bytes
    ON CONFLICT (sub_account_id, day) DO UPDATE
    SET bytes = excluded.bytes, revision = excluded.revision, updated_at = excluded.updated_at
    RETURNING d.day, d.bytes
)"""  # noqa: S608 - table names come from the models


@cache
def _days_sql(hours: str, days: str) -> str:
    return f"""
WITH {_BOUNDS}
), sums AS (
    SELECT b.day, COALESCE(SUM(h.bytes), 0)::bigint AS bytes
    FROM bounds b LEFT JOIN {hours} h
      ON h.sub_account_id = %s AND h.hour_start >= b.lo AND h.hour_start < b.hi
    GROUP BY b.day
), {_days_upsert(days, "written")}
SELECT w.day, w.bytes - COALESCE(o.bytes, 0) FROM written w LEFT JOIN old o ON o.day = w.day
"""  # noqa: S608 - table names come from the models


def days_recompute_pg(
    *,
    sub_account_id: int,
    bounds: Sequence[tuple[dt.date, dt.datetime, dt.datetime]],
    stamp: dt.datetime,
) -> list[tuple[dt.date, int]]:
    """Recompute the days of `bounds` (day, its first instant, the next day's first) from
    the stored hours, writing those whose bytes differ from the stored day (a new day at
    revision 0, a changed one at its revision + 1); return `(day, new bytes - bytes stored
    before)` of each day written."""
    qn = connection.ops.quote_name
    sql = _days_sql(qn(UsageHour._meta.db_table), qn(UsageDay._meta.db_table))
    params = [*_bounds_params(bounds), sub_account_id, sub_account_id, sub_account_id, stamp]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(day, int(delta)) for day, delta in cursor.fetchall()]


def _bounds_params(bounds: Sequence[tuple[dt.date, dt.datetime, dt.datetime]]) -> list[str]:
    """Days and their bounds (unix seconds) as the three delimited strings `bounds` reads,
    converted once per set of days (every sub-account of a pass syncs the same window)."""
    return list(_bounds_text(tuple(bounds)))


@lru_cache(maxsize=256)
def _bounds_text(bounds: tuple[tuple[dt.date, dt.datetime, dt.datetime], ...]) -> tuple:
    return (
        ",".join([day.isoformat() for day, _, _ in bounds]),
        ",".join([repr(lo.timestamp()) for _, lo, _ in bounds]),
        ",".join([repr(hi.timestamp()) for _, _, hi in bounds]),
    )


def _history_ctes(hours: str, days: str, rollup: str, subs: str, customers: str) -> str:
    """Hours, then days, then the reseller rollup, as the CTEs of one statement. Every part
    reads the snapshot the statement started with, so a day's new sum is taken from the
    stored hours outside the window plus the report's hours (inside the window the stored
    hours become exactly the report, absent ones 0)."""
    return (
        _hours_ctes(hours)  # noqa: S608 - table names come from the models
        + f""", changed AS (
    SELECT hour_start FROM zeroed UNION ALL SELECT hour_start FROM written
), {_BOUNDS}
    WHERE EXISTS (
        SELECT 1 FROM changed c
        WHERE c.hour_start >= to_timestamp(t.lo) AND c.hour_start < to_timestamp(t.hi)
    )
), sums AS (
    SELECT b.day, (
        COALESCE((SELECT SUM(h.bytes) FROM {hours} h
                  WHERE h.sub_account_id = %s AND h.hour_start >= b.lo AND h.hour_start < b.hi
                    AND NOT (h.hour_start >= %s AND h.hour_start < %s)), 0)
        + COALESCE((SELECT SUM(r.bytes) FROM report r
                    WHERE r.hour_start >= b.lo AND r.hour_start < b.hi), 0)
    )::bigint AS bytes
    FROM bounds b
), {_days_upsert(days, "days_written")}, rolled AS (
    INSERT INTO {rollup} (reseller_id, day, slot, bytes)
    SELECT c.reseller_id, w.day, %s, w.bytes - COALESCE(o.bytes, 0)
    FROM days_written w LEFT JOIN old o ON o.day = w.day,
         {subs} s JOIN {customers} c ON c.id = s.customer_id
    WHERE s.id = %s AND w.bytes <> COALESCE(o.bytes, 0)
    ORDER BY w.day
    ON CONFLICT (reseller_id, day, slot) DO UPDATE SET bytes = {rollup}.bytes + excluded.bytes
)"""  # noqa: S608 - table names come from the models
    )


@cache
def _history_sql(*tables: str) -> str:
    counts = "SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM days_written)"
    return f"{_history_ctes(*tables)}\n{counts}\n"


#: The SyncRun columns `history_rows_replace_recorded_pg` fills from `run`, in order.
RUN_COLUMNS = (
    "upstream_account_id", "sub_account_id", "kind", "window_start", "window_end", "status",
    "pages", "requests", "started_at", "error_code", "error",
)  # fmt: skip


@cache
def _history_run_sql(runs: str, unlock: bool, *tables: str) -> str:
    """`_history_sql`, then the INSERT of the sync's SyncRun: its rows written are the
    statement's, its duration the seconds before the statement plus the statement's own
    (two readings of the database's clock), its end its start plus that duration. With
    `unlock`, the answer also releases the sync's advisory lock (a last parameter)."""
    unlocked = ", pg_advisory_unlock(%s)" if unlock else ""
    columns = ", ".join(RUN_COLUMNS)
    run_ctes = f""", counted AS (
    SELECT (SELECT count(*) FROM changed) AS hours, (SELECT count(*) FROM days_written) AS days,
           %s::float8 + extract(epoch FROM clock_timestamp() - statement_timestamp()) AS secs
), run AS (
    INSERT INTO {runs} ({columns}, rows_written, finished_at, duration_ms)
    SELECT {", ".join(["%s"] * len(RUN_COLUMNS))}, c.hours + c.days,
           %s::timestamptz + make_interval(secs => c.secs), floor(c.secs * 1000)::int
    FROM counted c
    RETURNING id, finished_at, duration_ms
)
SELECT run.id, run.finished_at, run.duration_ms, c.hours, c.days{unlocked} FROM run, counted c
"""  # noqa: S608 - table names come from the models
    return _history_ctes(*tables) + run_ctes


def history_rows_replace_pg(
    *,
    sub_account_id: int,
    hours: Mapping[dt.datetime, HourlyUsage],
    window_start: dt.datetime,
    window_end: dt.datetime,
    days: Sequence[tuple[dt.date, dt.datetime, dt.datetime]],
    slot: int,
    stamp: dt.datetime,
) -> tuple[int, int]:
    """`hours_replace_pg`, then `days_recompute_pg` for the local days (`days`: every day
    the window touches, with its bounds) holding a written hour, then the reseller rollup's
    addition of each written day's difference (`usage.services.rollup`, rows in day order,
    `slot` the sub-account's), in ONE statement and round trip; return (hours written, days
    written). Same rows, revisions and rollup additions as the three statements."""
    params = _history_params(sub_account_id, hours, window_start, window_end, days, slot, stamp)
    with connection.cursor() as cursor:
        cursor.execute(_history_sql(*_history_tables()), params)
        hours_written, days_written = cursor.fetchone()
    return int(hours_written), int(days_written)


@dataclass(frozen=True)
class RecordedWrite:
    """What `history_rows_replace_recorded_pg` wrote: the rows and the SyncRun."""

    hours_written: int
    days_written: int
    run_id: int
    finished_at: dt.datetime
    duration_ms: int


def history_rows_replace_recorded_pg(
    *,
    sub_account_id: int,
    hours: Mapping[dt.datetime, HourlyUsage],
    window_start: dt.datetime,
    window_end: dt.datetime,
    days: Sequence[tuple[dt.date, dt.datetime, dt.datetime]],
    slot: int,
    stamp: dt.datetime,
    run: Mapping[str, Any],
    run_seconds: float,
    unlock_key: int | None = None,
) -> RecordedWrite:
    """`history_rows_replace_pg` and the INSERT of the sync's SyncRun (`run`: its
    `RUN_COLUMNS`; `run_seconds`: how long it has taken so far) in the same statement: one
    round trip, atomic on its own, so it needs no transaction around it. With `unlock_key`
    the statement also releases that advisory lock (the sync's, `usage.locks`) at its end;
    that is not transactional: when the statement fails the lock may be released or not."""
    params = _history_params(sub_account_id, hours, window_start, window_end, days, slot, stamp)
    params += [run_seconds, *[run[name] for name in RUN_COLUMNS], run["started_at"]]
    if unlock_key is not None:
        params.append(unlock_key)
    sql = _history_run_sql(_runs_table(), unlock_key is not None, *_history_tables())
    row = rawsql.fetchone(sql, params)
    return RecordedWrite(int(row[3]), int(row[4]), row[0], row[1], row[2])


@cache
def _runs_table() -> str:
    return connection.ops.quote_name(SyncRun._meta.db_table)


@cache
def _history_tables() -> tuple[str, ...]:
    """The quoted tables of `_history_ctes` (PostgreSQL's quoting: only its statements use
    them), quoted once per process."""
    qn = connection.ops.quote_name
    return (
        qn(UsageHour._meta.db_table), qn(UsageDay._meta.db_table),
        qn(ResellerUsageDay._meta.db_table), qn(SubAccount._meta.db_table),
        qn(Customer._meta.db_table),
    )  # fmt: skip


def _history_params(sub_account_id, hours, window_start, window_end, days, slot, stamp) -> list:
    """The parameters of `_history_ctes`, in order."""
    epochs = [int(start.timestamp()) for start in hours]  # hour starts: whole seconds
    return [
        *_hours_params(sub_account_id, hours, epochs, window_start, window_end, stamp),
        *_bounds_params(days),
        sub_account_id, window_start, window_end,
        sub_account_id, sub_account_id, stamp,
        slot, sub_account_id,
    ]  # fmt: skip
