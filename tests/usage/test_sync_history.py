"""IPFoxy sync: replace, never add; skip unchanged; revisions; failures leave usage alone."""

import pytest
from django.db import connection

from tests.usage.fakes import FakeHistory, utc
from usage.locks import sub_account_sync_lock
from usage.models import SyncRun, UsageDay, UsageHour
from usage.providers.base import AuthError, BadResponseError, HourlyUsage, TransientError
from usage.services import usage_sync_sub_account

START, END = utc(2026, 3, 6), utc(2026, 3, 7)


def _snapshot(sub):
    hours = list(
        UsageHour.objects.filter(sub_account=sub)
        .order_by("hour_start")
        .values_list("hour_start", "bytes", "raw_value", "raw_unit", "revision", "updated_at")
    )
    days = list(
        UsageDay.objects.filter(sub_account=sub)
        .order_by("day")
        .values_list("day", "bytes", "revision", "updated_at")
    )
    return hours, days


def _sync(sub, connector):
    return usage_sync_sub_account(
        sub_account=sub, start=START, end=END, now=END, connector=connector
    )


@pytest.mark.django_db
def test_syncing_the_same_window_twice_leaves_identical_rows(sub_account):
    connector = FakeHistory({utc(2026, 3, 6, h): (h + 1) * 1_048_576 for h in range(24)})
    first = _sync(sub_account, connector)
    before = _snapshot(sub_account)
    second = _sync(sub_account, connector)
    assert first.rows_written == 24 + 1
    assert second.status == "succeeded"
    assert second.rows_written == 0
    assert _snapshot(sub_account) == before
    assert UsageDay.objects.get(sub_account=sub_account).bytes == 300 * 1_048_576


@pytest.mark.django_db
def test_resync_replaces_a_changed_bucket_and_bumps_only_its_revision(sub_account):
    hours = {utc(2026, 3, 6, h): 1000 for h in range(24)}
    _sync(sub_account, FakeHistory(hours))
    hours[utc(2026, 3, 6, 5)] = 4000
    run = _sync(sub_account, FakeHistory(hours))
    assert run.rows_written == 2  # one hour, one day
    revisions = dict(
        UsageHour.objects.filter(sub_account=sub_account).values_list("hour_start", "revision")
    )
    assert revisions[utc(2026, 3, 6, 5)] == 1
    assert sum(revisions.values()) == 1
    day = UsageDay.objects.get(sub_account=sub_account)
    assert (day.bytes, day.revision) == (23 * 1000 + 4000, 1)


@pytest.mark.django_db
def test_hour_no_longer_reported_is_set_to_zero(sub_account):
    _sync(sub_account, FakeHistory({utc(2026, 3, 6, 1): 500, utc(2026, 3, 6, 2): 700}))
    _sync(sub_account, FakeHistory({utc(2026, 3, 6, 2): 700}))
    hour = UsageHour.objects.get(sub_account=sub_account, hour_start=utc(2026, 3, 6, 1))
    assert (hour.bytes, hour.revision) == (0, 1)
    assert UsageDay.objects.get(sub_account=sub_account).bytes == 700


class RawTextHistory(FakeHistory):
    """Reports the same bytes as FakeHistory with the raw text written another way."""

    def fetch_hourly_usage(self, *, upstream_id, start, end, now):
        report = super().fetch_hourly_usage(upstream_id=upstream_id, start=start, end=end, now=now)
        hours = tuple(
            HourlyUsage(h.hour_start, h.bytes, h.raw_value + ".00", "MB") for h in report.hours
        )
        return type(report)(report.upstream_id, start, end, hours, 1, 1)


@pytest.mark.django_db
def test_resync_with_only_the_raw_text_changed_rewrites_it_at_the_same_revision(sub_account):
    hours = {utc(2026, 3, 6, h): 2 * 1_048_576 for h in range(3)}
    _sync(sub_account, FakeHistory(hours))
    run = _sync(sub_account, RawTextHistory(hours))
    assert run.rows_written == 3  # three hours; their day's bytes did not change
    stored = UsageHour.objects.filter(sub_account=sub_account).values_list("raw_value", "revision")
    assert sorted(stored) == [("2.00", 0)] * 3
    assert UsageDay.objects.get(sub_account=sub_account).revision == 0


@pytest.mark.django_db
def test_hours_absent_and_changed_in_one_resync_are_written_together(sub_account):
    _sync(sub_account, FakeHistory({utc(2026, 3, 6, h): 1000 for h in range(4)}))
    run = _sync(sub_account, FakeHistory({utc(2026, 3, 6, 0): 1000, utc(2026, 3, 6, 1): 3000}))
    assert run.rows_written == 3  # hour 1 changed, hours 2 and 3 zeroed; the day sums the same
    stored = dict(
        UsageHour.objects.filter(sub_account=sub_account).values_list("hour_start", "bytes")
    )
    assert [stored[utc(2026, 3, 6, h)] for h in range(4)] == [1000, 3000, 0, 0]
    day = UsageDay.objects.get(sub_account=sub_account)
    assert (day.bytes, day.revision) == (4000, 0)


class HostileHistory(FakeHistory):
    def fetch_hourly_usage(self, *, upstream_id, start, end, now):
        report = super().fetch_hourly_usage(upstream_id=upstream_id, start=start, end=end, now=now)
        bad = HourlyUsage(utc(2026, 3, 6, 3), -5, "-0.0", "MB")
        return type(report)(report.upstream_id, start, end, (*report.hours, bad), 1, 1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "connector",
    [
        FakeHistory(error=BadResponseError("HTML instead of JSON", context={"page": 1})),
        FakeHistory(error=TransientError("HTTP 503", context={"page": 2})),
        HostileHistory({utc(2026, 3, 6, 4): 9999}),
    ],
    ids=["html", "unavailable", "negative-flow"],
)
def test_hostile_data_fails_the_sync_and_leaves_stored_usage_untouched(sub_account, connector):
    _sync(sub_account, FakeHistory({utc(2026, 3, 6, 4): 1234}))
    before = _snapshot(sub_account)
    run = _sync(sub_account, connector)
    assert run.status == "failed"
    assert run.error_code in {"upstream_bad_response", "upstream_unavailable"}
    assert run.error
    assert _snapshot(sub_account) == before


@pytest.mark.django_db
def test_rows_of_another_account_fail_the_sync(sub_account):
    connector = FakeHistory({utc(2026, 3, 6, 4): 1})
    connector.upstream_id_override = "SOMEONE-ELSE"
    run = _sync(sub_account, connector)
    assert (run.status, run.error_code) == ("failed", "upstream_bad_response")
    assert not UsageHour.objects.filter(sub_account=sub_account).exists()


@pytest.mark.django_db
def test_auth_failure_is_recorded_without_credentials(sub_account):
    run = _sync(sub_account, FakeHistory(error=AuthError("IPFoxy authentication failed")))
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error_code == "upstream_auth_failed"
    assert "authentication failed" in run.error
    assert "tok-secret-1" not in run.error


@pytest.mark.django_db
def test_sync_run_records_window_requests_and_duration(sub_account):
    run = _sync(sub_account, FakeHistory({utc(2026, 3, 6, 4): 1}))
    run.refresh_from_db()
    assert (run.window_start, run.window_end) == (START, END)
    assert run.upstream_account_id == sub_account.upstream_account_id
    assert (run.kind, run.pages, run.requests, run.rows_written) == ("usage", 1, 1, 2)
    assert run.duration_ms is not None
    assert run.finished_at >= run.started_at


@pytest.mark.django_db
def test_second_sync_while_one_runs_is_skipped(sub_account):
    if connection.vendor == "postgresql":
        pytest.skip("same-session advisory locks are re-entrant; see test_concurrency_pg")
    with sub_account_sync_lock(sub_account_id=sub_account.pk) as held:
        assert held
        run = _sync(sub_account, FakeHistory({utc(2026, 3, 6, 4): 1}))
    assert (run.status, run.error_code) == ("skipped", "sync_already_running")
    assert not UsageHour.objects.exists()
    assert SyncRun.objects.filter(status="skipped").count() == 1


@pytest.mark.django_db
def test_window_is_cut_at_the_current_hour(sub_account):
    run = usage_sync_sub_account(
        sub_account=sub_account,
        start=START,
        end=utc(2026, 3, 9),
        now=utc(2026, 3, 6, 10, 20),
        connector=FakeHistory({}),
    )
    assert run.window_end == utc(2026, 3, 6, 11)
