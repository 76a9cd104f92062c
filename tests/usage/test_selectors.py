"""Reads of stored usage: sums per period, tenant scoping, discovery and ledger views."""

import datetime as dt
from decimal import Decimal

import pytest

from tests import factories
from tests.usage.fakes import FakeHistory, utc
from usage.models import LedgerSnapshot, UpstreamSubAccount, UsageDay, UsageHour
from usage.providers.base import DiscoveredSubAccount
from usage.selectors import (
    ledger_latest_snapshot,
    upstream_sub_accounts_unassigned,
    usage_bytes_by_sub_account,
    usage_counter_cross_check,
    usage_daily_series,
    usage_hourly_series,
    usage_monthly_totals,
)
from usage.services import usage_discover_sub_accounts


def _day(sub, day, nbytes):
    UsageDay.objects.create(sub_account=sub, day=day, bytes=nbytes)


@pytest.mark.django_db
def test_usage_bytes_by_sub_account_sums_the_half_open_period_of_one_reseller(sub_account):
    other = factories.SubAccountFactory()  # another reseller
    _day(sub_account, dt.date(2026, 2, 28), 1)
    _day(sub_account, dt.date(2026, 3, 1), 100)
    _day(sub_account, dt.date(2026, 3, 31), 20)
    _day(sub_account, dt.date(2026, 4, 1), 5000)
    _day(other, dt.date(2026, 3, 2), 7)
    reseller = sub_account.customer.reseller
    result = usage_bytes_by_sub_account(
        reseller=reseller, start_day=dt.date(2026, 3, 1), end_day=dt.date(2026, 4, 1)
    )
    assert result == {sub_account.pk: 120}


@pytest.mark.django_db
def test_daily_monthly_and_hourly_series(sub_account):
    reseller = sub_account.customer.reseller
    _day(sub_account, dt.date(2026, 3, 30), 10)
    _day(sub_account, dt.date(2026, 3, 31), 20)
    _day(sub_account, dt.date(2026, 4, 1), 30)
    start, end = dt.date(2026, 3, 1), dt.date(2026, 5, 1)
    assert usage_daily_series(reseller=reseller, start_day=start, end_day=end) == {
        sub_account.pk: [
            (dt.date(2026, 3, 30), 10),
            (dt.date(2026, 3, 31), 20),
            (dt.date(2026, 4, 1), 30),
        ]
    }
    assert usage_monthly_totals(reseller=reseller, start_day=start, end_day=end) == {
        sub_account.pk: [(dt.date(2026, 3, 1), 30), (dt.date(2026, 4, 1), 30)]
    }
    UsageHour.objects.create(sub_account=sub_account, hour_start=utc(2026, 3, 30, 1), bytes=4)
    assert usage_hourly_series(
        reseller=reseller,
        sub_account_id=sub_account.pk,
        start=utc(2026, 3, 30),
        end=utc(2026, 3, 31),
    ) == [(utc(2026, 3, 30, 1), 4)]
    stranger = factories.ResellerFactory()
    assert (
        usage_hourly_series(
            reseller=stranger,
            sub_account_id=sub_account.pk,
            start=utc(2026, 3, 30),
            end=utc(2026, 4, 1),
        )
        == []
    )


def _listed(upstream_id, used, *, is_main=False):
    return DiscoveredSubAccount(upstream_id, True, is_main, used, 10**12, None, None)


@pytest.mark.django_db
def test_discovery_keeps_the_baseline_and_cross_check_compares_growth_with_hours(sub_account):
    reseller = sub_account.customer.reseller
    upstream = sub_account.upstream_account
    connector = FakeHistory()
    connector.listed = [
        _listed(sub_account.upstream_id, 5_000_000),
        _listed("NEW1", 0),
        _listed("MAIN", 9, is_main=True),
    ]
    usage_discover_sub_accounts(
        upstream_account=upstream, now=utc(2026, 3, 6, 10, 20), connector=connector
    )
    connector.listed[0] = _listed(sub_account.upstream_id, 5_003_000)
    run = usage_discover_sub_accounts(
        upstream_account=upstream, now=utc(2026, 3, 6, 12, 20), connector=connector
    )
    assert (run.status, run.rows_written, run.kind) == ("succeeded", 3, "discovery")
    row = UpstreamSubAccount.objects.get(upstream_id=sub_account.upstream_id)
    assert (row.baseline_used_bytes, row.used_bytes) == (5_000_000, 5_003_000)
    assert [u.upstream_id for u in upstream_sub_accounts_unassigned(reseller=reseller)] == ["NEW1"]

    for hour, nbytes in ((10, 1000), (11, 1900), (12, 77)):
        UsageHour.objects.create(
            sub_account=sub_account, hour_start=utc(2026, 3, 6, hour), bytes=nbytes
        )
    (check,) = usage_counter_cross_check(reseller=reseller)
    assert (check.counter_growth_bytes, check.buckets_bytes) == (3000, 2900)
    assert check.difference_bytes == -100


@pytest.mark.django_db
def test_latest_ledger_snapshot_is_scoped_to_the_reseller(sub_account):
    for hour, available in ((9, 500), (10, 400)):
        LedgerSnapshot.objects.create(
            sub_account=sub_account,
            taken_at=utc(2026, 3, 6, hour),
            total_traffic=1000,
            available_traffic=available,
            balance=Decimal("1.5"),
        )
    latest = ledger_latest_snapshot(
        reseller=sub_account.customer.reseller, sub_account_id=sub_account.pk
    )
    assert latest.available_traffic == 400
    stranger = factories.ResellerFactory()
    assert ledger_latest_snapshot(reseller=stranger, sub_account_id=sub_account.pk) is None
