"""Reads of stored usage. Every selector takes the reseller and scopes through it.

Periods are half-open: `[start_day, end_day)` in the reseller's calendar, whose days are the
`UsageDay` rows written by sync (each the sum of the UTC hours starting inside that day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncMonth

from accounts.models import Reseller
from core.compiled import CompiledQuery
from usage.models import (
    LedgerSnapshot,
    ResellerUsageDay,
    SubAccountTraffic,
    SyncRun,
    UpstreamSubAccount,
    UsageDay,
    UsageHour,
)


def usage_bytes_by_sub_account(
    *, reseller: Reseller, start_day: dt.date, end_day: dt.date
) -> dict[int, int]:
    """Bytes per sub-account id over the reseller-local days `[start_day, end_day)`.

    Sub-accounts without usage in the period are absent (read a missing key as 0).
    """
    rows = (
        UsageDay.objects.for_reseller(reseller)
        .filter(day__gte=start_day, day__lt=end_day)
        .values("sub_account_id")
        .annotate(total=Sum("bytes"))
    )
    return {row["sub_account_id"]: int(row["total"] or 0) for row in rows}


def usage_daily_series(
    *,
    reseller: Reseller,
    start_day: dt.date,
    end_day: dt.date,
    sub_account_ids: list[int] | None = None,
) -> dict[int, list[tuple[dt.date, int]]]:
    """Per sub-account, `(day, bytes)` for every stored day in `[start_day, end_day)`, in order.

    Days without a stored row are not invented here; a chart fills gaps with zeros.
    """
    qs = UsageDay.objects.for_reseller(reseller).filter(day__gte=start_day, day__lt=end_day)
    if sub_account_ids is not None:
        qs = qs.filter(sub_account_id__in=sub_account_ids)
    series: dict[int, list[tuple[dt.date, int]]] = {}
    for sub_id, day, nbytes in qs.order_by("sub_account_id", "day").values_list(
        "sub_account_id", "day", "bytes"
    ):
        series.setdefault(sub_id, []).append((day, int(nbytes)))
    return series


def usage_monthly_totals(
    *, reseller: Reseller, start_day: dt.date, end_day: dt.date
) -> dict[int, list[tuple[dt.date, int]]]:
    """Per sub-account, `(first day of month, bytes)` over `[start_day, end_day)`.

    Months are the reseller's calendar months, because the days already are.
    """
    rows = (
        UsageDay.objects.for_reseller(reseller)
        .filter(day__gte=start_day, day__lt=end_day)
        .annotate(month=TruncMonth("day"))
        .values("sub_account_id", "month")
        .annotate(total=Sum("bytes"))
        .order_by("sub_account_id", "month")
    )
    result: dict[int, list[tuple[dt.date, int]]] = {}
    for row in rows:
        month = row["month"]
        if isinstance(month, dt.datetime):  # some backends return a datetime
            month = month.date()
        result.setdefault(row["sub_account_id"], []).append((month, int(row["total"] or 0)))
    return result


def usage_hourly_series(
    *, reseller: Reseller, sub_account_id: int, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, int]]:
    """`(UTC hour start, bytes)` of one sub-account over `[start, end)` (aware datetimes)."""
    return [
        (hour, int(nbytes))
        for hour, nbytes in UsageHour.objects.for_reseller(reseller)
        .filter(sub_account_id=sub_account_id, hour_start__gte=start, hour_start__lt=end)
        .order_by("hour_start")
        .values_list("hour_start", "bytes")
    ]


# --- series for the API: one aggregate query each, zero-filled ----------------------------

GRANULARITIES = ("day", "month", "hour")


@dataclass(frozen=True)
class UsagePoint:
    """Bytes used in one period: a reseller-local day, a month (its first day), or a UTC
    hour (its start, as an aware datetime in the reseller's timezone)."""

    period: dt.date | dt.datetime
    bytes: int


def _scoped(queryset: QuerySet, *, customer_id: int | None, sub_account_id: int | None) -> QuerySet:
    if customer_id is not None:
        queryset = queryset.filter(sub_account__customer_id=customer_id)
    if sub_account_id is not None:
        queryset = queryset.filter(sub_account_id=sub_account_id)
    return queryset


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _rollup_days(reseller_id: int, first_day: dt.date, end_day: dt.date) -> QuerySet:
    return (
        ResellerUsageDay.objects.for_reseller(reseller_id)
        .filter(day__gte=first_day, day__lt=end_day)
        .values("day")
        .annotate(total=Sum("bytes"))
        .order_by()
        .values("day", "total")
    )


#: The reseller-wide daily totals; dates reach PostgreSQL's statement unchanged (SQLite's
#: are converted to text, so there each call compiles as usual: core.compiled).
_ROLLUP_DAYS = CompiledQuery(
    _rollup_days, sentinels=[-(10**15), dt.date(1, 1, 1), dt.date(1, 1, 2)]
)


def _day_points(totals: dict, *, first_day: dt.date, end_day: dt.date) -> list[UsagePoint]:
    count = (end_day - first_day).days
    periods = [first_day + dt.timedelta(days=n) for n in range(count)]
    return [UsagePoint(period=day, bytes=totals.get(day, 0)) for day in periods]


def usage_series(
    *,
    reseller: Reseller,
    granularity: str,
    first_day: dt.date,
    last_day: dt.date,
    customer_id: int | None = None,
    sub_account_id: int | None = None,
) -> list[UsagePoint]:
    """Total bytes per period over the reseller-local days `first_day..last_day` (inclusive),
    summed over the reseller's sub-accounts (or one customer's, or one sub-account).

    Every period of the range is present, in order, with 0 where nothing was stored:
    - `day`: one point per day, from `UsageDay` (over the whole reseller, days and months
      read its rollup `ResellerUsageDay`, which equals the sum of its sub-accounts' days);
    - `month`: one point per calendar month touched by the range (dated the 1st), summing
      only the range's days (a range starting mid-month gives a partial first month);
    - `hour`: one point per UTC hour starting inside the range's local days (23 or 25 on DST
      days), from `UsageHour`, dated in the reseller's timezone. Hours sum to their days.
    One aggregate query, whatever the length of the range.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}")
    if last_day < first_day:
        return []
    end_day = last_day + dt.timedelta(days=1)
    if granularity == "hour":
        return _hourly(
            reseller=reseller,
            first_day=first_day,
            end_day=end_day,
            customer_id=customer_id,
            sub_account_id=sub_account_id,
        )
    if customer_id is None and sub_account_id is None and granularity == "day":
        # All the reseller's sub-accounts: the rollup, a few rows a day (usage.services.rollup),
        # one statement compiled once per process.
        rows = _ROLLUP_DAYS.rows(reseller.pk, first_day, end_day)
        totals = {row["day"]: int(row["total"] or 0) for row in rows}
        return _day_points(totals, first_day=first_day, end_day=end_day)
    if customer_id is None and sub_account_id is None:
        days = ResellerUsageDay.objects.for_reseller(reseller)
    else:
        days = _scoped(
            UsageDay.objects.for_reseller(reseller),
            customer_id=customer_id,
            sub_account_id=sub_account_id,
        )
    days = days.filter(day__gte=first_day, day__lt=end_day)
    if granularity == "day":
        totals = {
            day: int(total or 0)
            for day, total in days.values("day")
            .annotate(total=Sum("bytes"))
            .values_list("day", "total")
        }
        return _day_points(totals, first_day=first_day, end_day=end_day)
    totals = {}
    rows = days.annotate(month=TruncMonth("day")).values("month").annotate(total=Sum("bytes"))
    for month, total in rows.values_list("month", "total"):
        if isinstance(month, dt.datetime):  # some backends return a datetime
            month = month.date()
        totals[month] = int(total or 0)
    points, month = [], _month_start(first_day)
    while month <= last_day:
        points.append(UsagePoint(period=month, bytes=totals.get(month, 0)))
        month = _next_month(month)
    return points


def _hourly(
    *,
    reseller: Reseller,
    first_day: dt.date,
    end_day: dt.date,
    customer_id: int | None,
    sub_account_id: int | None,
) -> list[UsagePoint]:
    tz = reseller.tzinfo
    hour = dt.timedelta(hours=1)
    # The UTC hours that start inside the local days: from the first whole UTC hour at or
    # after local midnight (zones with a :30 offset start mid-hour) to the next midnight.
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    floored = start.replace(minute=0, second=0, microsecond=0)
    start = floored if floored == start else floored + hour
    end = dt.datetime.combine(end_day, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    hours = _scoped(
        UsageHour.objects.for_reseller(reseller).filter(hour_start__gte=start, hour_start__lt=end),
        customer_id=customer_id,
        sub_account_id=sub_account_id,
    )
    totals = {
        moment.astimezone(dt.UTC): int(total or 0)
        for moment, total in hours.values("hour_start")
        .annotate(total=Sum("bytes"))
        .values_list("hour_start", "total")
    }
    points, moment = [], start
    while moment < end:
        points.append(UsagePoint(period=moment.astimezone(tz), bytes=totals.get(moment, 0)))
        moment += hour
    return points


def ledger_latest_snapshot(*, reseller: Reseller, sub_account_id: int) -> LedgerSnapshot | None:
    """The newest BytesFlows snapshot of a sub-account: total/available traffic and balance
    for remaining-traffic display and low-traffic alerts."""
    return (
        LedgerSnapshot.objects.for_reseller(reseller)
        .filter(sub_account_id=sub_account_id)
        .order_by("-taken_at")
        .first()
    )


def upstream_sub_accounts_unassigned(
    *, reseller: Reseller, upstream_account_id: int | None = None
) -> list[UpstreamSubAccount]:
    """Upstream sub-accounts discovered but not yet sold to a customer (not the main one)."""
    qs = UpstreamSubAccount.objects.for_reseller(reseller).filter(
        sub_account__isnull=True, is_main=False
    )
    if upstream_account_id is not None:
        qs = qs.filter(upstream_account_id=upstream_account_id)
    return list(qs.order_by("upstream_account_id", "upstream_id"))


@dataclass(frozen=True)
class CounterCrossCheck:
    """Stored hourly buckets vs the upstream's cumulative counter over the same span."""

    sub_account_id: int
    upstream_id: str
    since: dt.datetime
    until: dt.datetime
    counter_growth_bytes: int
    buckets_bytes: int

    @property
    def difference_bytes(self) -> int:
        return self.buckets_bytes - self.counter_growth_bytes


def usage_counter_cross_check(
    *, reseller: Reseller, upstream_account_id: int | None = None
) -> list[CounterCrossCheck]:
    """For each attached IPFoxy sub-account: growth of `use_flow` between the first and the
    latest discovery vs the sum of stored hours in between (whole hours from the first
    discovery's hour to the latest one's; counters are KB and move mid-hour, so expect a
    small difference, not zero)."""
    qs = UpstreamSubAccount.objects.for_reseller(reseller).filter(sub_account__isnull=False)
    if upstream_account_id is not None:
        qs = qs.filter(upstream_account_id=upstream_account_id)
    results = []
    for row in qs.order_by("upstream_account_id", "upstream_id"):
        since = row.baseline_at.replace(minute=0, second=0, microsecond=0)
        until = row.seen_at.replace(minute=0, second=0, microsecond=0)
        total = (
            UsageHour.objects.for_reseller(reseller)
            .filter(sub_account_id=row.sub_account_id, hour_start__gte=since, hour_start__lt=until)
            .aggregate(total=Sum("bytes"))["total"]
        )
        results.append(
            CounterCrossCheck(
                sub_account_id=row.sub_account_id,
                upstream_id=row.upstream_id,
                since=since,
                until=until,
                counter_growth_bytes=row.used_bytes - row.baseline_used_bytes,
                buckets_bytes=int(total or 0),
            )
        )
    return results


def sync_runs_recent(
    *, reseller: Reseller, sub_account_id: int | None = None, limit: int = 50
) -> list[SyncRun]:
    """The latest sync runs of a reseller (optionally one sub-account), newest first."""
    qs = SyncRun.objects.for_reseller(reseller)
    if sub_account_id is not None:
        qs = qs.filter(sub_account_id=sub_account_id)
    return list(qs.order_by("-started_at", "-pk")[:limit])


def sub_account_traffic_stored(
    *, reseller: Reseller, sub_account_ids: Iterable[int]
) -> dict[int, SubAccountTraffic]:
    """The stored traffic figures of the reseller's sub-accounts among `sub_account_ids`, by
    sub-account id (no upstream request; `usage.services.traffic` keeps them). A
    sub-account never read, or not the reseller's, is absent."""
    qs = SubAccountTraffic.objects.for_reseller(reseller).filter(sub_account_id__in=sub_account_ids)
    return {row.sub_account_id: row for row in qs}
