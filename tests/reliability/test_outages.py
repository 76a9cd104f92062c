"""The database or the broker briefly unavailable.

- Web: every kind of page answers 503 with a clear error and a Retry-After while the
  database (or the broker) cannot be reached, never a stack trace or the driver's message,
  stores nothing, and answers normally again once the service is back.
- Workers (real ones, behind a TCP proxy the drill cuts): tasks that meet the outage fail
  without taking the worker down, and the work converges once the service is back.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import OperationalError, connections
from kombu.exceptions import OperationalError as BrokerError

from accounts.api_keys import api_key_create
from accounts.models import Customer
from tests import factories
from tests.reliability import tally
from tests.reliability.conftest import IPFOXY_CREDENTIALS, start_sim
from tests.reliability.tcp_proxy import TcpProxy
from tests.reliability.test_worker_crashes import CLOSE_AT, _all_sent, _billing_world, _sync_world
from tests.reliability.workers import BROKER_URL, Producer, drill_database_url, wait_until
from usage.models import SyncRun, UsageHour

# What the drivers say when the service is gone: host, port and user name must not leak.
DB_DOWN = 'connection to server at "10.0.0.5", port 5432 failed: FATAL: role "flowbill-prod"'
BROKER_DOWN = "Error 111 connecting to 10.0.0.6:6379. Connection refused."
LEAKS = ("10.0.0.5", "10.0.0.6", "flowbill-prod", "Traceback", "OperationalError", "psycopg")


@pytest.fixture
def tenant(db, client):
    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller)
    staff = factories.StaffUserFactory(reseller=reseller)
    client.force_login(staff)
    return {
        "reseller": reseller,
        "reseller_key": api_key_create(reseller=reseller, name="drill")[1],
        "customer_key": api_key_create(reseller=reseller, customer=customer, name="c")[1],
        "staff_client": client,
    }


def _requests(tenant):
    """(label, client method, path, body, key): one of each kind of page."""
    reseller_key, customer_key = tenant["reseller_key"], tenant["customer_key"]
    new_customer = {"name": "Outage Ltd", "email": "outage@example.com"}
    return [
        ("reseller list", "get", "/api/v1/reseller/customers/", None, reseller_key),
        ("reseller create", "post", "/api/v1/reseller/customers/", new_customer, reseller_key),
        ("reseller invoices", "get", "/api/v1/reseller/invoices/", None, reseller_key),
        ("sync on request", "post", "/api/v1/reseller/sync/", {}, reseller_key),
        ("customer me", "get", "/api/v1/me/", None, customer_key),
        ("customer usage", "get", "/api/v1/usage/current/", None, customer_key),
        ("admin index", "get", "/admin/", None, None),
        ("admin list", "get", "/admin/accounts/customer/", None, None),
        ("health check", "get", "/healthz", None, None),
    ]


def _send(tenant, method, path, body, key):
    from rest_framework.test import APIClient

    if key is None:
        client = tenant["staff_client"]
        return getattr(client, method)(path)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return getattr(api, method)(path, body, format="json")


def _assert_clear_503(response, service: str):
    text = response.content.decode()
    assert response.status_code == 503, text[:500]
    assert not any(leak in text for leak in LEAKS), text[:500]
    if response["Content-Type"].startswith("application/json"):
        body = response.json()
        if "code" in body:  # the API's error shape (the health check has its own)
            assert body["code"] == "service_unavailable"
            assert body["extra"]["service"] == service
            assert "try again" in body["message"]
    else:
        assert "temporarily unavailable" in text
    return text


def test_every_page_answers_503_while_the_database_is_down_then_recovers(tenant, monkeypatch):
    db = connections["default"]
    requests = _requests(tenant)
    customers_before = Customer.objects.count()

    def down(*args, **kwargs):
        raise db.Database.OperationalError(DB_DOWN)

    with monkeypatch.context() as outage:
        outage.setattr(db, "create_cursor", down)
        for label, method, path, body, key in requests:
            response = _send(tenant, method, path, body, key)
            _assert_clear_503(response, "database")
            if label != "health check":
                assert response["Retry-After"] == "30", label
            tally.add("outages")
    assert Customer.objects.count() == customers_before  # nothing stored

    for label, method, path, body, key in requests:
        assert _send(tenant, method, path, body, key).status_code < 400, label
    assert Customer.objects.count() == customers_before + 1  # the create went through now


def test_a_database_error_raised_inside_middleware_is_a_503_too(tenant, monkeypatch):
    """A session write fails in SessionMiddleware, after the view: no view can catch it."""

    def down(self, request, response):
        raise OperationalError(DB_DOWN)  # as Django's cursor wrapper raises it

    monkeypatch.setattr(
        "django.contrib.sessions.middleware.SessionMiddleware.process_response", down
    )
    client = tenant["staff_client"]
    client.raise_request_exception = False  # see the response a browser would get
    _assert_clear_503(client.get("/admin/"), "database")


@pytest.mark.django_db(transaction=True)
def test_sync_on_request_answers_503_when_the_broker_is_down(monkeypatch):
    """Committed for real (the tasks are queued once the request's transaction commits)."""
    from celery.app.task import Task

    reseller = factories.ResellerFactory()
    key = api_key_create(reseller=reseller, name="drill")[1]
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    factories.SubAccountFactory(
        customer=factories.CustomerFactory(reseller=reseller), upstream_account=upstream
    )

    def down(self, *args, **kwargs):
        raise BrokerError(BROKER_DOWN)

    monkeypatch.setattr(Task, "apply_async", down)
    response = _send({}, "post", "/api/v1/reseller/sync/", {}, key)
    _assert_clear_503(response, "task broker")
    assert response["Retry-After"] == "30"
    tally.add("outages")


def test_a_bug_is_still_a_500_not_a_503(tenant, monkeypatch):
    """Only unreachable services become 503: a programming error must stay visible."""
    from django.test import Client

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("accounts.api.views.MeView.get", bug)
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Api-Key {tenant['customer_key']}")
    assert response.status_code == 500


# --------------------------------------------------------------------------- real workers

SYNC_NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
NAMES = ["SIM00001", "SIM00002", "SIM00003"]


def _db_proxy():
    db = connections["default"].settings_dict
    return TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))


def _synced_exactly(sim, subs, *, hours: int = 73) -> bool:
    for sub in subs:
        stored = dict(
            UsageHour.objects.filter(sub_account=sub).values_list("hour_start", "raw_value")
        )
        start = SYNC_NOW.replace(minute=0) - dt.timedelta(hours=hours - 1)
        expected = sim.expected_hourly_flows(
            account=sub.upstream_id, start=start, end=start + dt.timedelta(hours=hours)
        )
        if stored != expected:
            return False
    return True


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_worker_survives_a_database_outage_and_the_next_beat_converges(drill):
    proxy = _db_proxy()
    try:
        with start_sim(SYNC_NOW) as sim:
            subs = _sync_world(sim, NAMES)
            drill.set_clock(SYNC_NOW)
            worker = drill.worker(DATABASE_URL=drill_database_url(port=proxy.port))
            proxy.cut()
            tally.add("outages")
            drill.send("usage.tasks.usage_sync_all_task", now=SYNC_NOW.isoformat())
            wait_until(
                lambda: worker.log_count("usage_sync_all_task[") >= 2,  # received, retry
                timeout=30,
                what="the fan-out task to meet the database outage",
            )
            # Scheduled for a retry with backoff, not failed for good (nor a dead worker).
            assert worker.log_count("Retry in") >= 1
            assert worker.log_count("raised unexpected: OperationalError") == 0
            assert worker.alive
            assert proxy.refused > 0
            assert not SyncRun.objects.exists() and not UsageHour.objects.exists()

            proxy.restore()
            drill.send("usage.tasks.usage_sync_all_task", now=SYNC_NOW.isoformat())
            wait_until(
                lambda: SyncRun.objects.filter(status="succeeded").count() == len(subs),
                timeout=60,
                what="the next beat to sync every sub-account",
            )
            assert _synced_exactly(sim, subs)
    finally:
        proxy.close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_tasks_that_meet_a_database_outage_retry_until_it_is_back(drill):
    proxy = _db_proxy()
    try:
        with start_sim(SYNC_NOW) as sim:
            subs = _sync_world(sim, NAMES)
            reseller, _ = _billing_world(1)
            drill.set_clock(SYNC_NOW)
            worker = drill.worker(
                DATABASE_URL=drill_database_url(port=proxy.port), DRILL_FAST_RETRY="1"
            )
            proxy.cut()
            tally.add("outages")
            end = SYNC_NOW.replace(minute=0) + dt.timedelta(hours=1)
            start = end - dt.timedelta(hours=73)
            for sub in subs:
                drill.send(
                    "usage.tasks.usage_sync_sub_account_task",
                    sub.pk,
                    start.isoformat(),
                    end.isoformat(),
                )
            drill.send(
                "billing.tasks.invoice_cycle_reseller_task", reseller.pk, CLOSE_AT.isoformat()
            )
            wait_until(
                lambda: worker.log_count("OperationalError") >= 1,  # raised, or retrying
                timeout=30,
                what="a sync task to meet the outage",
            )
            proxy.restore()
            wait_until(
                lambda: SyncRun.objects.filter(status="succeeded").count() == len(subs),
                timeout=12,
                what="the sync tasks to retry and succeed once the database is back",
            )
            assert _synced_exactly(sim, subs)
            wait_until(
                lambda: _all_sent(reseller, 1),
                timeout=12,
                what="the invoice cycle to retry, finalize and mail the invoice",
            )
    finally:
        proxy.close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_worker_reconnects_after_a_broker_outage_and_the_work_converges(drill):
    """Redis (broker, locks and request budget alike) goes away while a sync is in flight
    and two more wait in the queue; the worker reconnects when it is back and every
    sub-account ends with exactly the upstream's usage."""
    redis_proxy = TcpProxy("127.0.0.1", int(BROKER_URL.rsplit(":", 1)[1].split("/")[0]))
    db_number = BROKER_URL.rsplit("/", 1)[1]
    via_proxy = f"redis://127.0.0.1:{redis_proxy.port}/{db_number}"
    try:
        with start_sim(SYNC_NOW) as sim:
            subs = _sync_world(sim, NAMES)
            sim.set_faults(slow={"next": 1, "account": "SIM00001"}, slow_seconds=3)
            drill.set_clock(SYNC_NOW)
            worker = drill.worker(CELERY_BROKER_URL=via_proxy, REDIS_URL=via_proxy)
            drill.send("usage.tasks.usage_sync_all_task", now=SYNC_NOW.isoformat())
            wait_until(
                lambda: sim.stats()["faults_injected"].get("slow"),
                timeout=30,
                what="the first sync to be in flight",
            )
            redis_proxy.cut()
            tally.add("outages")
            # Meanwhile nothing can be queued through that broker (the API answers 503).
            producer = Producer(via_proxy)
            with pytest.raises(BrokerError):
                producer.send("usage.tasks.usage_sync_all_task", now=SYNC_NOW.isoformat())
            producer.close()
            wait_until(
                lambda: (
                    worker.log_count("Cannot connect to redis")
                    or worker.log_count("Connection to broker lost")
                ),
                timeout=30,
                what="the worker to notice the outage",
            )
            assert worker.alive
            redis_proxy.restore()
            wait_until(
                lambda: _synced_exactly(sim, subs) and drill.broker_idle(),
                timeout=90,
                what="every sub-account synced once the broker is back",
            )
            assert worker.alive
    finally:
        redis_proxy.close()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_dropping_after_the_write_committed_leaves_one_succeeded_run(
    redis_url, settings, customer
):
    from tests.reliability.test_upstream_faults import _connector
    from usage.services import usage_sync_sub_account

    host_port, db_number = redis_url.split("//", 1)[1].rsplit("/", 1)
    proxy = TcpProxy(host_port.split(":")[0], int(host_port.split(":")[1]))
    settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/{db_number}"
    try:
        with start_sim(SYNC_NOW) as sim:
            upstream = factories.UpstreamAccountFactory(
                reseller=customer.reseller, base_url=sim.url, credentials=IPFOXY_CREDENTIALS
            )
            sub = factories.SubAccountFactory(
                customer=customer, upstream_account=upstream, upstream_id="SIM00001"
            )

            def cut_after_fetch(response):  # the upstream answered; now Redis goes away
                response.read()
                proxy.cut()

            connector = _connector("ipfoxy", sim.url)
            connector.transport.client.event_hooks["response"] = [cut_after_fetch]
            tally.add("outages")
            run = usage_sync_sub_account(
                sub_account=sub,
                start=SYNC_NOW - dt.timedelta(hours=24),
                end=SYNC_NOW,
                now=SYNC_NOW,
                connector=connector,
            )
            assert run.status == "succeeded"
            assert list(SyncRun.objects.values_list("status", flat=True)) == ["succeeded"]
            assert UsageHour.objects.filter(sub_account=sub).count() == 25
    finally:
        proxy.close()
