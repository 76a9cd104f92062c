"""Sync on request: one `queued` SyncRun per task, created before the task runs, which the
task fills (running -> succeeded/failed/skipped) once, whatever its deliveries and retries."""

import datetime as dt
import threading
import time

import pytest
from django.db import connection
from django.urls import reverse

from accounts.models import Provider, SubAccount
from core.errors import ApplicationError
from tests import factories
from tests.usage.fakes import FakeHistory, FakeLedger, utc
from usage import tasks
from usage.models import SyncRun, UsageHour
from usage.providers.base import TransientError
from usage.services import history, ledger, usage_sync_sub_account
from usage.services.requests import sync_window, usage_sync_request

NOW = utc(2026, 3, 10, 12, 5)
WINDOW_START, WINDOW_END = utc(2026, 3, 7, 12), utc(2026, 3, 10, 13)  # 73 hours
HOURS = {WINDOW_START + dt.timedelta(hours=i): (i % 5 + 1) * 1_048_576 for i in range(72)}
FIELDS = ("status", "kind", "sub_account_id", "window_start", "window_end", "started_at")


@pytest.fixture
def world(db, monkeypatch):
    """A reseller with three active IPFoxy sub-accounts (and a suspended one) and one active
    BytesFlows sub-account; the connectors are fakes."""
    reseller = factories.ResellerFactory(timezone="UTC")
    customer = factories.CustomerFactory(reseller=reseller)
    ipfoxy = factories.UpstreamAccountFactory(reseller=reseller)
    subs = [
        factories.SubAccountFactory(customer=customer, upstream_account=ipfoxy) for _ in range(3)
    ]
    factories.SubAccountFactory(customer=customer, upstream_account=ipfoxy, status="suspended")
    bytesflows = factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    bf_sub = factories.SubAccountFactory(customer=customer, upstream_account=bytesflows)
    fake_history, fake_ledger = FakeHistory(HOURS), FakeLedger()
    fake_ledger.push(NOW, [("g1", 10 * 2**30, 2**30, True, None)])
    monkeypatch.setattr(history, "connector_for_upstream_account", lambda **kw: fake_history)
    monkeypatch.setattr(ledger, "connector_for_upstream_account", lambda **kw: fake_ledger)
    return {
        "reseller": reseller,
        "subs": subs,
        "bf_sub": bf_sub,
        "history": fake_history,
        "ledger": fake_ledger,
    }


def _request(world, django_capture_on_commit_callbacks):
    """Request a sync of everything, holding the tasks back (they are queued on commit)."""
    with django_capture_on_commit_callbacks() as callbacks:
        result = usage_sync_request(reseller=world["reseller"], upstream_account=None, now=NOW)
    return result, callbacks


def test_a_request_creates_one_queued_run_per_task_which_the_task_fills(
    world, django_capture_on_commit_callbacks
):
    result, callbacks = _request(world, django_capture_on_commit_callbacks)
    ids = [queued.sync_run_id for queued in result.queued]
    assert len(ids) == 4 and len(callbacks) == 1  # one callback sends the four tasks
    # Before any task ran: the rows exist, queued, with their kind and window.
    rows = SyncRun.objects.filter(pk__in=ids).order_by("pk")
    assert [tuple(getattr(run, f) for f in FIELDS) for run in rows] == [
        ("queued", "usage", sub.pk, WINDOW_START, WINDOW_END, None) for sub in world["subs"]
    ] + [("queued", "snapshot", world["bf_sub"].pk, None, None, None)]
    assert {run.queued_at for run in rows} == {NOW}
    assert SyncRun.objects.count() == 4

    for callback in callbacks:
        callback()

    rows = SyncRun.objects.filter(pk__in=ids).order_by("pk")
    # 72 hours + 4 UTC days (7th..10th) per IPFoxy sub-account; the first BytesFlows
    # snapshot is a baseline (1 row: the snapshot itself).
    assert [(run.status, run.rows_written, run.error) for run in rows] == [
        ("succeeded", 76, ""),
        ("succeeded", 76, ""),
        ("succeeded", 76, ""),
        ("succeeded", 1, "first snapshot: baseline recorded, no usage derived"),
    ]
    assert all(run.started_at is not None and run.finished_at is not None for run in rows)
    assert [(r.window_start, r.window_end) for r in rows[:3]] == [(WINDOW_START, WINDOW_END)] * 3
    assert SyncRun.objects.count() == 4  # filled in place: no second row per task
    assert UsageHour.objects.filter(sub_account__in=world["subs"]).count() == 3 * 72
    assert (world["history"].requests, world["ledger"].requests) == (3, 2)


def test_a_duplicate_delivery_of_a_finished_run_neither_syncs_nor_writes(
    world, django_capture_on_commit_callbacks, monkeypatch
):
    result, callbacks = _request(world, django_capture_on_commit_callbacks)
    for callback in callbacks:
        callback()
    before = list(SyncRun.objects.order_by("pk").values())
    hours_before = list(UsageHour.objects.order_by("pk").values())

    def no_connector(**kwargs):
        raise AssertionError("a finished run was synced again")

    monkeypatch.setattr(history, "connector_for_upstream_account", no_connector)
    monkeypatch.setattr(ledger, "connector_for_upstream_account", no_connector)
    first, snapshot = result.queued[0], result.queued[3]
    start, end = WINDOW_START.isoformat(), WINDOW_END.isoformat()
    assert (
        tasks.usage_sync_sub_account_task(
            first.sub_account_id, start, end, sync_run_id=first.sync_run_id
        )
        == first.sync_run_id
    )
    assert (
        tasks.usage_snapshot_bytesflows_task(
            snapshot.sub_account_id, sync_run_id=snapshot.sync_run_id
        )
        == snapshot.sync_run_id
    )
    assert list(SyncRun.objects.order_by("pk").values()) == before
    assert list(UsageHour.objects.order_by("pk").values()) == hours_before


def test_a_retried_task_fills_the_same_run(world, django_capture_on_commit_callbacks):
    """The upstream is down on the first attempt: the run fails (retryable, so the task
    raises for Celery to retry); the retry, same arguments, syncs into the same row."""
    result, _ = _request(world, django_capture_on_commit_callbacks)
    world["history"].error = TransientError("503 from upstream")
    first = result.queued[0]
    start, end = WINDOW_START.isoformat(), WINDOW_END.isoformat()
    with pytest.raises(tasks.RetryableSyncError):
        tasks.usage_sync_sub_account_task(
            first.sub_account_id, start, end, sync_run_id=first.sync_run_id
        )
    run = SyncRun.objects.get(pk=first.sync_run_id)
    assert (run.status, run.error_code, run.rows_written) == ("failed", "upstream_unavailable", 0)

    world["history"].error = None
    assert (
        tasks.usage_sync_sub_account_task(
            first.sub_account_id, start, end, sync_run_id=first.sync_run_id
        )
        == first.sync_run_id
    )
    run.refresh_from_db()
    assert (run.status, run.error_code, run.error, run.rows_written) == ("succeeded", "", "", 76)
    assert SyncRun.objects.count() == 4
    assert SyncRun.objects.filter(status="queued").count() == 3  # the others never ran


def test_eager_retry_through_celery_updates_one_row(world, django_capture_on_commit_callbacks):
    """Through Celery's own retry (autoretry_for, eager here): fail twice, then succeed."""
    result, _ = _request(world, django_capture_on_commit_callbacks)
    fake = world["history"]
    original = fake.fetch_hourly_usage

    def flaky(**kwargs):
        if fake.requests < 2:
            fake.requests += 1
            raise TransientError("503 from upstream")
        return original(**kwargs)

    fake.fetch_hourly_usage = flaky
    first = result.queued[0]
    outcome = tasks.usage_sync_sub_account_task.apply(
        args=[first.sub_account_id, WINDOW_START.isoformat(), WINDOW_END.isoformat()],
        kwargs={"sync_run_id": first.sync_run_id},
    )
    assert outcome.get() == first.sync_run_id
    assert fake.requests == 3
    run = SyncRun.objects.get(pk=first.sync_run_id)
    assert (run.status, run.rows_written) == ("succeeded", 76)
    assert SyncRun.objects.filter(sub_account_id=first.sub_account_id).count() == 1


def test_tasks_without_a_run_id_still_create_their_own_run(world):
    """Beat's fan-out and staff's "sync now" pass no run id: a new row each, as before."""
    sub = world["subs"][0]
    start, end = WINDOW_START.isoformat(), WINDOW_END.isoformat()
    first = tasks.usage_sync_sub_account_task(sub.pk, start, end, NOW.isoformat())
    second = tasks.usage_sync_sub_account_task(sub.pk, start, end, NOW.isoformat())
    assert first != second
    assert list(
        SyncRun.objects.order_by("pk").values_list("status", "started_at", "queued_at")
    ) == [("succeeded", NOW, None), ("succeeded", NOW, None)]


def test_a_run_id_of_another_sub_account_or_kind_is_refused(
    world, django_capture_on_commit_callbacks
):
    result, _ = _request(world, django_capture_on_commit_callbacks)
    usage_run, snapshot_run = result.queued[0], result.queued[3]
    sub = SubAccount.objects.select_related("upstream_account__reseller")
    with pytest.raises(SyncRun.DoesNotExist):
        usage_sync_sub_account(
            sub_account=sub.get(pk=world["subs"][1].pk),
            start=WINDOW_START,
            end=WINDOW_END,
            now=NOW,
            sync_run_id=usage_run.sync_run_id,
        )
    with pytest.raises(SyncRun.DoesNotExist):
        usage_sync_sub_account(
            sub_account=sub.get(pk=world["bf_sub"].pk),
            start=WINDOW_START,
            end=WINDOW_END,
            now=NOW,
            connector=FakeHistory(HOURS),
            sync_run_id=snapshot_run.sync_run_id,
        )
    assert set(SyncRun.objects.values_list("status", flat=True)) == {"queued"}
    assert world["history"].requests == 0


def test_staff_see_a_run_whose_task_never_ran_as_queued(
    world, django_capture_on_commit_callbacks, client
):
    result, _ = _request(world, django_capture_on_commit_callbacks)  # tasks never run
    staff = factories.StaffUserFactory(reseller=world["reseller"])
    client.force_login(staff)
    url = reverse("admin:usage_syncrun_changelist")
    listing = client.get(url, {"status__exact": "queued"})
    assert listing.status_code == 200
    shown = [run.pk for run in listing.context["cl"].result_list]
    assert shown == sorted((q.sync_run_id for q in result.queued), reverse=True)
    assert "Queued" in listing.content.decode()


# --- PostgreSQL: two deliveries of one queued run at once --------------------------------


class SlowHistory(FakeHistory):
    def fetch_hourly_usage(self, **kwargs):
        time.sleep(0.3)
        return super().fetch_hourly_usage(**kwargs)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_queued_run_at_once_fill_one_row_on_postgres():
    reseller = factories.ResellerFactory(timezone="UTC")
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    sub = factories.SubAccountFactory(customer__reseller=reseller, upstream_account=upstream)
    run_id = SyncRun.objects.create(
        upstream_account=upstream,
        sub_account=sub,
        kind="usage",
        status="queued",
        queued_at=NOW,
        window_start=WINDOW_START,
        window_end=WINDOW_END,
    ).pk
    statuses, errors = [], []

    def delivery():
        try:
            fresh = SubAccount.objects.select_related("upstream_account__reseller").get(pk=sub.pk)
            run = usage_sync_sub_account(
                sub_account=fresh,
                start=WINDOW_START,
                end=WINDOW_END,
                now=NOW,
                connector=SlowHistory(HOURS),
                sync_run_id=run_id,
            )
            statuses.append(run.status)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=delivery) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(statuses) == ["skipped", "succeeded"]
    assert list(SyncRun.objects.values_list("pk", "status", "rows_written")) == [
        (run_id, "succeeded", 76)
    ]
    assert UsageHour.objects.filter(sub_account=sub).count() == 72


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_request_answers_503_and_leaves_no_run(monkeypatch):
    """The runs commit before the tasks are sent (on commit): a broker that refuses them
    gets the runs it has no message for deleted, and the client is told to retry (see
    tests/usage/test_sync_queued_recovery.py for a broker failing midway and the sweep)."""
    from celery.app.task import Task
    from kombu.exceptions import OperationalError as BrokerError
    from rest_framework.test import APIClient

    from accounts.api_keys import api_key_create

    reseller = factories.ResellerFactory()
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    for _ in range(2):
        factories.SubAccountFactory(customer__reseller=reseller, upstream_account=upstream)

    def down(self, *args, **kwargs):
        raise BrokerError("Connection refused.")

    monkeypatch.setattr(Task, "apply_async", down)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(reseller=reseller, name='r')[1]}")
    response = api.post("/api/v1/reseller/sync/", {}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert SyncRun.objects.count() == 0


# --- one sync-now path: the API, the admin's buttons and the beat share it ------------------


def test_a_request_for_one_sub_account_queues_only_it_over_the_same_window(
    world, django_capture_on_commit_callbacks
):
    sub = world["subs"][1]
    with django_capture_on_commit_callbacks() as callbacks:
        result = usage_sync_request(
            reseller=world["reseller"],
            upstream_account=sub.upstream_account,
            sub_account=sub,
            now=NOW,
        )
    assert [(q.sub_account_id, q.kind) for q in result.queued] == [(sub.pk, "usage")]
    assert (result.window_start, result.window_end) == sync_window(now=NOW)
    assert sync_window(now=NOW) == (WINDOW_START, WINDOW_END)  # the beat's window too
    for callback in callbacks:
        callback()
    run = SyncRun.objects.get(pk=result.queued[0].sync_run_id)
    assert (run.status, run.sub_account_id) == ("succeeded", sub.pk)


def test_a_sub_account_of_another_upstream_account_or_an_inactive_one_is_refused(world):
    sub = world["subs"][0]
    other = world["bf_sub"].upstream_account
    with pytest.raises(ApplicationError) as foreign:
        usage_sync_request(
            reseller=world["reseller"], upstream_account=other, sub_account=sub, now=NOW
        )
    sub.upstream_account.is_active = False
    sub.upstream_account.save(update_fields=["is_active"])
    with pytest.raises(ApplicationError) as inactive:
        usage_sync_request(
            reseller=world["reseller"],
            upstream_account=sub.upstream_account,
            sub_account=sub,
            now=NOW,
        )
    assert (foreign.value.code, inactive.value.code) == ("not_found", "upstream_account_inactive")
    assert not SyncRun.objects.exists()


def test_discover_refreshes_the_ipfoxy_sub_account_lists_after_the_syncs(
    world, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        tasks.usage_discover_sub_accounts_task, "delay", lambda *args: sent.append(args)
    )
    monkeypatch.setattr(
        tasks.usage_sync_sub_account_task, "apply_async", lambda **kw: sent.append("sync")
    )
    monkeypatch.setattr(
        tasks.usage_snapshot_bytesflows_task, "apply_async", lambda **kw: sent.append("snapshot")
    )
    ipfoxy = world["subs"][0].upstream_account
    with django_capture_on_commit_callbacks(execute=True):
        usage_sync_request(reseller=world["reseller"], upstream_account=None, now=NOW)
        usage_sync_request(
            reseller=world["reseller"], upstream_account=None, now=NOW, discover=True
        )
    # Without `discover` (the API): syncs only; with it (the admin): the IPFoxy list after.
    assert sent == ["sync"] * 3 + ["snapshot"] + ["sync"] * 3 + ["snapshot"] + [
        (ipfoxy.pk, NOW.isoformat())
    ]
