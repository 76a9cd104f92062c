"""Days are the sum of the UTC hours starting inside each reseller-local day."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests import factories
from tests.usage.fakes import FakeHistory, utc
from usage.models import UsageDay, UsageHour
from usage.services import storage_pg, usage_sync_sub_account
from usage.services.storage import day_bounds, spread_over_hours, window_days

HOUR = dt.timedelta(hours=1)


def _sub_account(tz: str):
    reseller = factories.ResellerFactory(timezone=tz)
    customer = factories.CustomerFactory(reseller=reseller)
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    return factories.SubAccountFactory(customer=customer, upstream_account=upstream)


def _hours(start: dt.datetime, end: dt.datetime, nbytes=lambda i: 1000):
    out, hour, i = {}, start, 0
    while hour < end:
        out[hour] = nbytes(i)
        hour += HOUR
        i += 1
    return out


def _sync(sub, hours, start, end):
    return usage_sync_sub_account(
        sub_account=sub, start=start, end=end, now=end, connector=FakeHistory(hours)
    )


def _assert_days_equal_hours(sub, tz):
    zone = ZoneInfo(tz)
    expected: dict[dt.date, int] = {}
    for hour, nbytes in UsageHour.objects.filter(sub_account=sub).values_list(
        "hour_start", "bytes"
    ):
        day = hour.astimezone(zone).date()
        expected[day] = expected.get(day, 0) + nbytes
    stored = dict(UsageDay.objects.filter(sub_account=sub).values_list("day", "bytes"))
    assert stored == expected


@pytest.mark.django_db
def test_new_york_spring_forward_day_has_23_hours_and_fall_back_day_25():
    sub = _sub_account("America/New_York")
    start, end = utc(2026, 3, 6), utc(2026, 3, 11)
    run = _sync(sub, _hours(start, end), start, end)
    assert run.status == "succeeded"
    days = dict(UsageDay.objects.filter(sub_account=sub).values_list("day", "bytes"))
    assert days[dt.date(2026, 3, 7)] == 24_000
    assert days[dt.date(2026, 3, 8)] == 23_000
    assert days[dt.date(2026, 3, 9)] == 24_000
    _assert_days_equal_hours(sub, "America/New_York")

    start, end = utc(2026, 10, 30), utc(2026, 11, 4)
    _sync(sub, _hours(start, end), start, end)
    days = dict(UsageDay.objects.filter(sub_account=sub).values_list("day", "bytes"))
    assert days[dt.date(2026, 10, 31)] == 24_000
    assert days[dt.date(2026, 11, 1)] == 25_000
    assert days[dt.date(2026, 11, 2)] == 24_000
    _assert_days_equal_hours(sub, "America/New_York")


@pytest.mark.django_db
def test_shanghai_day_runs_from_16_utc_to_16_utc():
    sub = _sub_account("Asia/Shanghai")
    start, end = utc(2026, 3, 6, 16), utc(2026, 3, 8, 16)
    # hour i carries i+1 bytes, so the split point is visible in the totals
    _sync(sub, _hours(start, end, lambda i: i + 1), start, end)
    days = dict(UsageDay.objects.filter(sub_account=sub).values_list("day", "bytes"))
    assert days == {dt.date(2026, 3, 7): sum(range(1, 25)), dt.date(2026, 3, 8): sum(range(25, 49))}


@pytest.mark.django_db
def test_utc_days_are_the_utc_calendar_days():
    sub = _sub_account("UTC")
    start, end = utc(2026, 3, 6, 12), utc(2026, 3, 8, 6)
    _sync(sub, _hours(start, end), start, end)
    days = dict(UsageDay.objects.filter(sub_account=sub).values_list("day", "bytes"))
    assert days == {
        dt.date(2026, 3, 6): 12_000,
        dt.date(2026, 3, 7): 24_000,
        dt.date(2026, 3, 8): 6_000,
    }


@pytest.mark.django_db
def test_half_hour_zone_hour_belongs_to_the_day_it_starts_in():
    sub = _sub_account("Asia/Kolkata")
    # 18:00Z = 23:30 local on the 6th; 18:30Z would be the 7th, but the hour starts on the 6th
    _sync(sub, {utc(2026, 3, 6, 18): 7, utc(2026, 3, 6, 19): 11}, utc(2026, 3, 6), utc(2026, 3, 7))
    days = dict(UsageDay.objects.filter(sub_account=sub).values_list("day", "bytes"))
    assert days == {dt.date(2026, 3, 6): 7, dt.date(2026, 3, 7): 11}


def test_spread_splits_evenly_in_time_with_exact_integer_sum():
    shares = spread_over_hours(start=utc(2026, 3, 6, 10), end=utc(2026, 3, 6, 13), total=1000)
    assert shares == {utc(2026, 3, 6, 10): 334, utc(2026, 3, 6, 11): 333, utc(2026, 3, 6, 12): 333}


def test_spread_weighs_partial_hours_by_time_spent():
    start = utc(2026, 3, 6, 10, 30)
    end = utc(2026, 3, 6, 12, 0)
    assert spread_over_hours(start=start, end=end, total=300) == {
        utc(2026, 3, 6, 10): 100,
        utc(2026, 3, 6, 11): 200,
    }


def test_spread_within_one_hour_puts_everything_there():
    shares = spread_over_hours(start=utc(2026, 3, 6, 10, 5), end=utc(2026, 3, 6, 10, 55), total=7)
    assert shares == {utc(2026, 3, 6, 10): 7}


@pytest.mark.parametrize(
    ("tz", "start", "hours", "days"),
    [
        ("Asia/Shanghai", utc(2026, 3, 7, 12), 72, 4),  # the hourly pass: 4 local days
        ("America/New_York", utc(2026, 3, 7, 5), 47, 2),  # 7 and 8 March (23 hours)
        ("Asia/Kolkata", utc(2026, 3, 6, 18), 1, 1),  # 23:30 local: the 7th
        ("UTC", utc(2026, 3, 6), 24, 1),
    ],
)
def test_window_days_are_the_local_days_its_hours_start_in_with_their_bounds(
    tz, start, hours, days
):
    zone = ZoneInfo(tz)
    end = start + hours * HOUR
    expected = sorted({(start + n * HOUR).astimezone(zone).date() for n in range(hours)})
    got = window_days(start, end, zone)
    assert [day for day, _, _ in got] == expected and len(got) == days
    for day, lo, hi in got:
        assert (lo, hi) == day_bounds(day, zone)
        assert lo.astimezone(zone).date() == day and (hi - HOUR).astimezone(zone).date() == day
    assert window_days(start, end, zone) is got  # the cache: a pass syncs one window
    # the write's day parameters: the cached tuple's are those of the same days as a list
    assert storage_pg._bounds_params(got) == storage_pg._bounds_params(list(got))
