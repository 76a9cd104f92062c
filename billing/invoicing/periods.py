"""Billing periods: calendar months in the reseller's timezone, half-open `[start, end)`.

A period is named by its first local day. Its boundaries as instants come from `zoneinfo`, so
October closes at 2026-10-31T16:00Z for Asia/Shanghai (UTC+8) but at 2026-11-01T04:00Z for
America/New_York (EDT, UTC-4); November in New York runs 04:00Z to 05:00Z (DST ends on
November 1st, so the month is one hour longer).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from core.errors import ApplicationError

_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month: `start` is its first day, `end` the first day of the next month."""

    start: dt.date
    end: dt.date

    @classmethod
    def of_month(cls, year: int, month: int) -> Period:
        start = dt.date(year, month, 1)
        end = dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1)
        return cls(start=start, end=end)

    @classmethod
    def containing(cls, day: dt.date) -> Period:
        return cls.of_month(day.year, day.month)

    @classmethod
    def starting(cls, start: dt.date) -> Period:
        if start.day != 1:
            raise ApplicationError(
                "invalid_period", f"A period starts on the first of a month, not {start}."
            )
        return cls.containing(start)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def previous(self) -> Period:
        return Period.containing(self.start - dt.timedelta(days=1))

    def next(self) -> Period:
        return Period.containing(self.end)


def period_parse(text: str) -> Period:
    """`"2026-10"` -> October 2026; anything else raises `invalid_period`."""
    match = _PERIOD_RE.match(text.strip())
    # Year 1 to 9998: the month after must exist too (periods end on the next month's 1st).
    if not match or not 1 <= int(match.group(2)) <= 12 or not 1 <= int(match.group(1)) <= 9998:
        raise ApplicationError("invalid_period", f"Give the period as YYYY-MM, not {text!r}.")
    return Period.of_month(int(match.group(1)), int(match.group(2)))


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The instant the local `day` begins in `tz` (aware, in `tz`)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz)


def local_date(now: dt.datetime, tz: ZoneInfo) -> dt.date:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(tz).date()


def period_containing(*, tz: ZoneInfo, now: dt.datetime) -> Period:
    """The month, in `tz`, that the instant `now` falls in."""
    return Period.containing(local_date(now, tz))


def period_last_closed(*, tz: ZoneInfo, now: dt.datetime) -> Period:
    """The most recent month that has fully ended in `tz` at `now`."""
    return period_containing(tz=tz, now=now).previous()


def period_bounds(*, period: Period, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The instants `[start, end)` of `period` in `tz`, as aware UTC datetimes."""
    return (
        local_midnight(period.start, tz).astimezone(dt.UTC),
        local_midnight(period.end, tz).astimezone(dt.UTC),
    )


def period_has_ended(*, period: Period, tz: ZoneInfo, now: dt.datetime) -> bool:
    return now >= local_midnight(period.end, tz)


def period_due_at(*, period: Period, tz: ZoneInfo, grace_days: int) -> dt.datetime:
    """When a draft of `period` is finalized: local midnight `grace_days` after it ends."""
    return local_midnight(period.end + dt.timedelta(days=grace_days), tz).astimezone(dt.UTC)
