"""Sync on request with a broker that fails: nothing is left `queued` for good.

- A request whose tasks cannot be sent leaves no run behind (those sent before the failure
  stay, each with its message), and the client's retry creates each run once (the API's
  503: tests/usage/test_sync_queued.py).
- The sweep (beat, every 5 minutes) sends the task again for a run still `queued` after 5
  minutes (its message was lost), and closes it as failed after 30.
"""

from __future__ import annotations

import datetime as dt

import pytest
from celery.app.task import Task
from kombu.exceptions import OperationalError as BrokerError

from tests import factories
from tests.usage.fakes import FakeHistory, utc
from usage import tasks
from usage.models import SyncRun
from usage.schedule import BEAT_SCHEDULE
from usage.services import history
from usage.services.requests import (
    QUEUED_GIVE_UP_AFTER,
    QUEUED_REQUEUE_AFTER,
    QueuedSweep,
    sync_runs_queued_sweep,
    usage_sync_request,
)
from webhooks.models import WebhookEvent
from webhooks.services import webhook_endpoint_create

NOW = utc(2026, 3, 10, 12, 5)
HOURS = {utc(2026, 3, 7, 12) + dt.timedelta(hours=i): 1_048_576 for i in range(72)}


@pytest.fixture
def world(db, monkeypatch):
    """A reseller with four active IPFoxy sub-accounts on one upstream account (fake)."""
    reseller = factories.ResellerFactory(timezone="UTC")
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    subs = [
        factories.SubAccountFactory(customer__reseller=reseller, upstream_account=upstream)
        for _ in range(4)
    ]
    fake = FakeHistory(HOURS)
    monkeypatch.setattr(history, "connector_for_upstream_account", lambda **kw: fake)
    return {"reseller": reseller, "upstream": upstream, "subs": subs, "history": fake}


@pytest.fixture
def broker(monkeypatch):
    """The broker as tasks see it: `sent` records each message; `fail_from=n` makes the
    n-th send on (1-based) raise as kombu does when Redis refuses the connection."""

    class Broker:
        sent: list[tuple[str, int]] = []
        fail_from: int | None = None

    def apply_async(self, args=None, kwargs=None, **options):
        if Broker.fail_from is not None and len(Broker.sent) + 1 >= Broker.fail_from:
            raise BrokerError("Error 111 connecting to 10.0.0.6:6379. Connection refused.")
        Broker.sent.append((self.name.rsplit(".", 1)[1], (kwargs or {}).get("sync_run_id")))

    monkeypatch.setattr(Task, "apply_async", apply_async)
    Broker.sent = []
    return Broker


def _request(world, capture):
    with capture(execute=True):
        return usage_sync_request(reseller=world["reseller"], upstream_account=None, now=NOW)


def test_a_request_whose_tasks_cannot_be_sent_leaves_no_run(
    world, broker, django_capture_on_commit_callbacks
):
    broker.fail_from = 1  # the broker is down

    with pytest.raises(BrokerError):
        _request(world, django_capture_on_commit_callbacks)

    assert SyncRun.objects.count() == 0
    # The client retries once the broker is back: each sub-account once, each with a task.
    broker.fail_from = None
    result = _request(world, django_capture_on_commit_callbacks)
    ids = [queued.sync_run_id for queued in result.queued]
    assert sorted(SyncRun.objects.values_list("pk", flat=True)) == sorted(ids)
    assert broker.sent == [("usage_sync_sub_account_task", pk) for pk in ids]


def test_a_broker_failing_midway_keeps_the_runs_sent_and_deletes_the_rest(
    world, broker, django_capture_on_commit_callbacks
):
    broker.fail_from = 3  # two messages go out, the third is refused

    with pytest.raises(BrokerError):
        _request(world, django_capture_on_commit_callbacks)

    sent_ids = [run_id for _, run_id in broker.sent]
    assert len(sent_ids) == 2
    # Every run left has its message; no run waits for one that was never sent.
    assert list(SyncRun.objects.order_by("pk").values_list("pk", "status")) == [
        (run_id, "queued") for run_id in sent_ids
    ]


# --- the sweep ----------------------------------------------------------------------------


def _queued(world, *, minutes_ago: float, sub: int = 0, **fields) -> SyncRun:
    return SyncRun.objects.create(
        upstream_account=world["upstream"],
        sub_account=world["subs"][sub],
        kind="usage",
        status=fields.pop("status", "queued"),
        queued_at=NOW - dt.timedelta(minutes=minutes_ago),
        window_start=utc(2026, 3, 7, 12),
        window_end=utc(2026, 3, 10, 13),
        **fields,
    )


def test_the_sweep_runs_every_five_minutes_and_gives_up_after_thirty():
    entry = BEAT_SCHEDULE["usage-sync-runs-queued-sweep"]
    assert entry["task"] == "usage.tasks.sync_runs_queued_sweep_task"
    assert entry["schedule"].minute == set(range(0, 60, 5))
    assert QUEUED_REQUEUE_AFTER.total_seconds() == 5 * 60
    assert QUEUED_GIVE_UP_AFTER.total_seconds() == 30 * 60


def test_a_run_queued_over_five_minutes_gets_its_task_again_and_is_filled(world):
    """Its message was lost (a broker without persistence restarted): the sweep sends the
    task again (in-process here, so it runs at once) and the run is filled, once."""
    lost = _queued(world, minutes_ago=6)
    recent = _queued(world, minutes_ago=2, sub=1)

    swept = sync_runs_queued_sweep(now=NOW)

    assert (swept.requeued, swept.closed) == ([lost.pk], [])
    lost.refresh_from_db()
    recent.refresh_from_db()
    assert (lost.status, lost.rows_written) == ("succeeded", 76)
    assert recent.status == "queued"  # its message may well be on its way
    assert SyncRun.objects.count() == 2 and world["history"].requests == 1


def test_each_sweep_sends_again_until_thirty_minutes_then_closes_the_run_failed(world, broker):
    run = _queued(world, minutes_ago=0)
    webhook_endpoint_create(
        reseller=world["reseller"],
        url="https://hooks.example.com/flowbill",
        enabled_events=["sync.failed"],
    )

    for minutes in (5, 10, 15, 20, 25):  # every sweep; each message lost again
        swept = sync_runs_queued_sweep(now=NOW + dt.timedelta(minutes=minutes, seconds=1))
        assert swept.requeued == [run.pk] and swept.closed == []
    late = NOW + QUEUED_GIVE_UP_AFTER + dt.timedelta(seconds=1)
    swept = sync_runs_queued_sweep(now=late)

    assert (swept.requeued, swept.closed) == ([], [run.pk])
    assert broker.sent == [("usage_sync_sub_account_task", run.pk)] * 5
    run.refresh_from_db()
    assert (run.status, run.error_code, run.finished_at) == ("failed", "sync_not_started", late)
    assert "request it again" in run.error
    event = WebhookEvent.objects.get(reseller=world["reseller"], type="sync.failed")
    assert (event.data["id"], event.data["status"], event.data["error_code"]) == (
        run.pk,
        "failed",
        "sync_not_started",
    )
    # Nothing more to do: the next sweep leaves it alone.
    assert sync_runs_queued_sweep(now=late) == QueuedSweep(requeued=[], closed=[])


def test_the_sweep_leaves_runs_a_worker_took_or_finished_and_syncs_not_requested(world, broker):
    _queued(world, minutes_ago=40, status="running", started_at=NOW)
    _queued(world, minutes_ago=40, sub=1, status="succeeded", started_at=NOW)
    SyncRun.objects.create(  # beat's syncs are never queued
        upstream_account=world["upstream"], sub_account=world["subs"][2], status="running",
        started_at=NOW - dt.timedelta(hours=2),
    )  # fmt: skip

    assert sync_runs_queued_sweep(now=NOW) == QueuedSweep(requeued=[], closed=[])
    assert broker.sent == []


def test_a_run_closed_failed_is_still_filled_when_its_late_message_comes(world, broker):
    run = _queued(world, minutes_ago=31)
    sync_runs_queued_sweep(now=NOW)
    sub = world["subs"][0]

    tasks.usage_sync_sub_account_task(
        sub.pk, "2026-03-07T12:00:00+00:00", "2026-03-10T13:00:00+00:00", sync_run_id=run.pk
    )

    run.refresh_from_db()
    assert (run.status, run.error_code, run.rows_written) == ("succeeded", "", 76)


def test_a_sweep_with_the_broker_down_changes_nothing_and_the_next_one_sends(world, broker):
    run = _queued(world, minutes_ago=6)
    broker.fail_from = 1

    with pytest.raises(BrokerError):
        sync_runs_queued_sweep(now=NOW)
    run.refresh_from_db()
    assert run.status == "queued"

    broker.fail_from = None
    assert sync_runs_queued_sweep(now=NOW + dt.timedelta(minutes=5)).requeued == [run.pk]


def test_the_sweep_task_reports_what_it_did(world, broker):
    _queued(world, minutes_ago=6)
    _queued(world, minutes_ago=45, sub=1)

    assert tasks.sync_runs_queued_sweep_task(NOW.isoformat()) == {"requeued": 1, "closed": 1}
