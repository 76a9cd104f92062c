"""Tasks stay thin: ids and ISO strings in, one service call, retry only transient errors."""

import pytest
from django.db import InterfaceError, OperationalError

from accounts.models import Provider
from tests import factories
from tests.usage.fakes import utc
from usage import tasks
from usage.models import SyncRun
from usage.schedule import BEAT_SCHEDULE


@pytest.mark.django_db
def test_sync_all_spreads_each_upstream_accounts_sub_accounts_over_the_hour_in_waves(
    monkeypatch, reseller
):
    """Eight sub-accounts: one every 7.5 minutes over the hour, queued in four 15-minute
    waves, so no countdown is longer than a wave (a message waiting for its countdown is
    held unacknowledged by a worker, within the broker's visibility timeout)."""
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    customer = factories.CustomerFactory(reseller=reseller)
    subs = [
        factories.SubAccountFactory(customer=customer, upstream_account=upstream) for _ in range(8)
    ]
    factories.SubAccountFactory(customer=customer, upstream_account=upstream, status="suspended")
    bf = factories.UpstreamAccountFactory(reseller=reseller, provider=Provider.BYTESFLOWS)
    factories.SubAccountFactory(customer=customer, upstream_account=bf)
    queued, waves = [], []
    monkeypatch.setattr(
        tasks.usage_sync_sub_account_task,
        "apply_async",
        lambda args, countdown: queued.append((args, countdown)),
    )
    monkeypatch.setattr(
        tasks.usage_sync_all_task,
        "apply_async",
        lambda kwargs, countdown: waves.append((kwargs, countdown)),
    )
    now = "2026-03-10T12:05:00+00:00"

    assert [tasks.usage_sync_all_task(now, wave=wave) for wave in range(4)] == [2, 2, 2, 2]

    assert [args[0] for args, _ in queued] == [s.pk for s in subs]
    assert [countdown for _, countdown in queued] == [0, 450] * 4
    # Each wave queues the next, 15 minutes later, with the same `now`; the last one none.
    assert waves == [({"now": now, "wave": wave}, 900) for wave in (1, 2, 3)]
    args = queued[0][0]
    assert (args[1], args[2]) == ("2026-03-07T12:00:00+00:00", "2026-03-10T13:00:00+00:00")


@pytest.mark.django_db
def test_sync_all_queues_no_next_wave_when_every_sync_is_due_now(monkeypatch, reseller):
    """One sub-account per upstream account: all due at once, nothing left for later."""
    for _ in range(2):
        factories.SubAccountFactory(
            customer__reseller=reseller,
            upstream_account=factories.UpstreamAccountFactory(reseller=reseller),
        )
    queued, waves = [], []
    monkeypatch.setattr(
        tasks.usage_sync_sub_account_task, "apply_async", lambda **kw: queued.append(kw)
    )
    monkeypatch.setattr(tasks.usage_sync_all_task, "apply_async", lambda **kw: waves.append(kw))

    assert tasks.usage_sync_all_task("2026-03-10T12:05:00+00:00") == 2
    assert [kw["countdown"] for kw in queued] == [0, 0] and waves == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("upstream_unavailable", tasks.RetryableSyncError),
        ("upstream_rate_limited", tasks.RetryableSyncError),
        ("upstream_auth_failed", tasks.SyncFailedError),
        ("upstream_bad_parameter", tasks.SyncFailedError),
        ("upstream_bad_response", tasks.SyncFailedError),
    ],
)
def test_only_transient_failures_are_retried(sub_account, code, expected):
    run = SyncRun.objects.create(
        upstream_account=sub_account.upstream_account,
        sub_account=sub_account,
        status="failed",
        error_code=code,
        started_at=utc(2026, 3, 1),
    )
    with pytest.raises(expected):
        tasks._check(run)
    # Transient upstream errors and a database that is briefly away; never a SyncFailedError.
    assert tasks.usage_sync_sub_account_task.autoretry_for == (
        tasks.RetryableSyncError,
        OperationalError,
        InterfaceError,
    )
    assert tasks.usage_sync_sub_account_task.acks_late


def test_beat_schedule_runs_the_three_hourly_jobs_the_three_sweeps_and_the_traffic_refresh():
    assert {entry["task"] for entry in BEAT_SCHEDULE.values()} == {
        "usage.tasks.usage_sync_all_task",
        "usage.tasks.usage_snapshot_bytesflows_all_task",
        "usage.tasks.usage_discover_sub_accounts_all_task",
        "usage.tasks.sync_runs_queued_sweep_task",
        "usage.tasks.upstream_writes_resend_pending_task",
        "usage.tasks.sub_account_traffic_refresh_all_task",
        "usage.tasks.usage_alert_emails_recover_task",
    }


def test_naive_iso_strings_are_refused():
    with pytest.raises(ValueError, match="naive"):
        tasks._parse("2026-03-10T12:00:00")
