import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from billing.invoicing.periods import (
    Period,
    period_bounds,
    period_containing,
    period_due_at,
    period_has_ended,
    period_last_closed,
    period_parse,
)
from core.errors import ApplicationError

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
OCTOBER = Period.of_month(2026, 10)


def test_october_closes_at_different_instants_in_shanghai_and_new_york():
    assert period_bounds(period=OCTOBER, tz=SHANGHAI) == (
        dt.datetime(2026, 9, 30, 16, tzinfo=UTC),
        dt.datetime(2026, 10, 31, 16, tzinfo=UTC),
    )
    assert period_bounds(period=OCTOBER, tz=NEW_YORK) == (
        dt.datetime(2026, 10, 1, 4, tzinfo=UTC),
        dt.datetime(2026, 11, 1, 4, tzinfo=UTC),
    )


def test_november_in_new_york_spans_the_dst_change_and_lasts_one_hour_longer():
    start, end = period_bounds(period=Period.of_month(2026, 11), tz=NEW_YORK)
    assert start == dt.datetime(2026, 11, 1, 4, tzinfo=UTC)  # EDT
    assert end == dt.datetime(2026, 12, 1, 5, tzinfo=UTC)  # EST
    assert end - start == dt.timedelta(days=30, hours=1)


def test_march_in_new_york_is_one_hour_shorter():
    start, end = period_bounds(period=Period.of_month(2026, 3), tz=NEW_YORK)
    assert end - start == dt.timedelta(days=31) - dt.timedelta(hours=1)


def test_the_same_instant_is_october_in_new_york_but_november_in_shanghai():
    now = dt.datetime(2026, 10, 31, 20, tzinfo=UTC)
    assert period_containing(tz=NEW_YORK, now=now) == OCTOBER
    assert period_containing(tz=SHANGHAI, now=now) == Period.of_month(2026, 11)
    assert period_has_ended(period=OCTOBER, tz=SHANGHAI, now=now)
    assert not period_has_ended(period=OCTOBER, tz=NEW_YORK, now=now)
    assert period_last_closed(tz=SHANGHAI, now=now) == OCTOBER


def test_due_instant_adds_the_grace_days_at_local_midnight():
    assert period_due_at(period=OCTOBER, tz=NEW_YORK, grace_days=2) == dt.datetime(
        2026, 11, 3, 5, tzinfo=UTC
    )


def test_december_period_ends_on_new_year():
    december = period_parse("2026-12")
    assert (december.start, december.end, december.days) == (
        dt.date(2026, 12, 1),
        dt.date(2027, 1, 1),
        31,
    )


@pytest.mark.parametrize("text", ["2026-13", "2026/10", "Oct", "", "0000-01", "9999-12"])
def test_bad_period_text_is_refused(text):
    with pytest.raises(ApplicationError) as exc:
        period_parse(text)
    assert exc.value.code == "invalid_period"


def test_a_period_must_start_on_the_first():
    with pytest.raises(ApplicationError):
        Period.starting(dt.date(2026, 10, 2))
