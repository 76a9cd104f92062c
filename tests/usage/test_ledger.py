"""BytesFlows metering from grant-ledger snapshots."""

import pytest

from accounts.models import Provider
from tests import factories
from tests.usage.fakes import FakeLedger, utc
from usage.models import LedgerRecordState, LedgerSnapshot, UsageAnomaly, UsageDay, UsageHour
from usage.providers.base import AuthError
from usage.services import usage_snapshot_bytesflows

GIB = 2**30


@pytest.fixture
def bf_sub(reseller, customer):
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    return factories.SubAccountFactory(
        customer=customer, upstream_account=upstream, credentials={"token": "bf-secret"}
    )


def _take(sub, ledger, now):
    return usage_snapshot_bytesflows(sub_account=sub, now=now, connector=ledger)


def _hours(sub):
    return dict(UsageHour.objects.filter(sub_account=sub).values_list("hour_start", "bytes"))


@pytest.mark.django_db
def test_first_snapshot_is_a_baseline_and_later_increase_is_usage(bf_sub):
    ledger = FakeLedger()
    ledger.push(utc(2026, 3, 6, 10), [("r1", GIB, 5000, True, utc(2026, 3, 1))])
    ledger.push(utc(2026, 3, 6, 11), [("r1", GIB, 8000, True, utc(2026, 3, 1))])
    first = _take(bf_sub, ledger, utc(2026, 3, 6, 10))
    second = _take(bf_sub, ledger, utc(2026, 3, 6, 11))
    assert first.status == second.status == "succeeded"
    assert "baseline" in first.error
    assert _hours(bf_sub) == {utc(2026, 3, 6, 10): 3000}
    assert UsageDay.objects.get(sub_account=bf_sub).bytes == 3000
    snaps = list(LedgerSnapshot.objects.filter(sub_account=bf_sub).order_by("taken_at"))
    assert [(s.is_baseline, s.usage_bytes) for s in snaps] == [(True, 0), (False, 3000)]


@pytest.mark.django_db
def test_new_record_counts_from_zero_since_its_creation(bf_sub):
    ledger = FakeLedger()
    ledger.push(utc(2026, 3, 6, 10), [("r1", GIB, 0, True, utc(2026, 3, 1))])
    # r2 appears, created at 11:30, already 600 bytes used by 12:00
    ledger.push(
        utc(2026, 3, 6, 12),
        [("r1", GIB, 0, True, utc(2026, 3, 1)), ("r2", GIB, 600, True, utc(2026, 3, 6, 11, 30))],
    )
    _take(bf_sub, ledger, utc(2026, 3, 6, 10))
    _take(bf_sub, ledger, utc(2026, 3, 6, 12))
    assert _hours(bf_sub) == {utc(2026, 3, 6, 11): 600}


@pytest.mark.django_db
def test_usage_spreads_over_the_hours_between_snapshots_with_exact_sum(bf_sub):
    ledger = FakeLedger()
    ledger.push(utc(2026, 3, 6, 9), [("r1", GIB, 0, True, None)])
    ledger.push(utc(2026, 3, 6, 12), [("r1", GIB, 1000, True, None)])
    _take(bf_sub, ledger, utc(2026, 3, 6, 9))
    _take(bf_sub, ledger, utc(2026, 3, 6, 12))
    hours = _hours(bf_sub)
    assert hours == {utc(2026, 3, 6, 9): 334, utc(2026, 3, 6, 10): 333, utc(2026, 3, 6, 11): 333}
    assert sum(hours.values()) == 1000


@pytest.mark.django_db
def test_decrease_is_an_anomaly_not_negative_usage_and_recovery_is_not_recounted(bf_sub):
    ledger = FakeLedger()
    ledger.push(utc(2026, 3, 6, 9), [("r1", GIB, 5000, True, None)])
    ledger.push(utc(2026, 3, 6, 10), [("r1", GIB, 4000, True, None)])
    ledger.push(utc(2026, 3, 6, 11), [("r1", GIB, 5500, True, None)])
    for hour in (9, 10, 11):
        run = _take(bf_sub, ledger, utc(2026, 3, 6, hour))
        assert run.status == "succeeded"
    anomaly = UsageAnomaly.objects.get(sub_account=bf_sub)
    assert (anomaly.kind, anomaly.record_id) == ("counter_decreased", "r1")
    assert (anomaly.previous_value, anomaly.current_value) == (5000, 4000)
    assert _hours(bf_sub) == {utc(2026, 3, 6, 10): 500}  # 5500 - peak 5000
    assert LedgerRecordState.objects.get(sub_account=bf_sub).traffic_used == 5500


@pytest.mark.django_db
def test_expiry_forfeits_unused_traffic_without_counting_it_as_usage(bf_sub):
    ledger = FakeLedger()
    ledger.push(utc(2026, 3, 6, 9), [("r1", 10_000, 2000, True, None)])
    ledger.push(utc(2026, 3, 6, 10), [("r1", 10_000, 2500, False, None)])
    _take(bf_sub, ledger, utc(2026, 3, 6, 9))
    _take(bf_sub, ledger, utc(2026, 3, 6, 10))
    assert _hours(bf_sub) == {utc(2026, 3, 6, 9): 500}
    snap = LedgerSnapshot.objects.get(sub_account=bf_sub, taken_at=utc(2026, 3, 6, 10))
    assert (snap.usage_bytes, snap.forfeited_bytes) == (500, 7500)
    state = LedgerRecordState.objects.get(sub_account=bf_sub)
    assert (state.active, state.forfeited_bytes) == (False, 7500)


@pytest.mark.django_db
def test_same_snapshot_twice_is_attributed_once(bf_sub):
    ledger = FakeLedger()
    ledger.push(utc(2026, 3, 6, 9), [("r1", GIB, 0, True, None)])
    ledger.push(utc(2026, 3, 6, 10), [("r1", GIB, 700, True, None)])
    ledger.push(utc(2026, 3, 6, 10), [("r1", GIB, 700, True, None)])
    for hour in (9, 10, 10):
        _take(bf_sub, ledger, utc(2026, 3, 6, hour))
    assert _hours(bf_sub) == {utc(2026, 3, 6, 9): 700}
    assert LedgerSnapshot.objects.filter(sub_account=bf_sub).count() == 2


@pytest.mark.django_db
def test_hours_accumulate_across_snapshots_within_one_hour(bf_sub):
    ledger = FakeLedger()
    ledger.push(utc(2026, 3, 6, 9, 0), [("r1", GIB, 0, True, None)])
    ledger.push(utc(2026, 3, 6, 9, 20), [("r1", GIB, 100, True, None)])
    ledger.push(utc(2026, 3, 6, 9, 40), [("r1", GIB, 250, True, None)])
    for minute in (0, 20, 40):
        _take(bf_sub, ledger, utc(2026, 3, 6, 9, minute))
    assert _hours(bf_sub) == {utc(2026, 3, 6, 9): 250}
    assert UsageDay.objects.get(sub_account=bf_sub).bytes == 250


@pytest.mark.django_db
def test_expired_token_shows_token_expired_to_staff_and_stores_nothing(bf_sub):
    ledger = FakeLedger()
    ledger.error = AuthError("BytesFlows refused the token", context={"path": "/api/v1/x"})
    run = _take(bf_sub, ledger, utc(2026, 3, 6, 9))
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "upstream_auth_failed")
    assert run.error.startswith("token expired")
    assert "bf-secret" not in run.error
    assert not LedgerSnapshot.objects.exists()


@pytest.mark.django_db
def test_negative_counter_fails_cleanly(bf_sub):
    ledger = FakeLedger()
    ledger.push(utc(2026, 3, 6, 9), [("r1", GIB, -1, True, None)])
    run = _take(bf_sub, ledger, utc(2026, 3, 6, 9))
    assert (run.status, run.error_code) == ("failed", "upstream_bad_response")
    assert not LedgerSnapshot.objects.exists()
