"""Concurrency: one sync per sub-account at a time, racing workers, the shared budget, and a
real Celery worker."""

import datetime as dt
import threading
import time

import pytest
from django.db import connection

from tests import factories
from tests.usage.fakes import FakeHistory, utc
from usage.models import SyncRun, UsageDay, UsageHour
from usage.services import usage_sync_sub_account, usage_sync_sub_accounts

START, END = utc(2026, 3, 6), utc(2026, 3, 9)
HOURS = {START + dt.timedelta(hours=i): (i % 7 + 1) * 1_048_576 for i in range(72)}


class SlowHistory(FakeHistory):
    """Holds each fetch long enough for the racing sync to arrive."""

    def fetch_hourly_usage(self, **kwargs):
        time.sleep(0.3)
        return super().fetch_hourly_usage(**kwargs)


def _rows(sub_id):
    hours = list(
        UsageHour.objects.filter(sub_account_id=sub_id)
        .order_by("hour_start")
        .values_list("hour_start", "bytes", "revision")
    )
    days = list(
        UsageDay.objects.filter(sub_account_id=sub_id)
        .order_by("day")
        .values_list("day", "bytes", "revision")
    )
    return hours, days


def _race(sub_id, *, wait_seconds):
    from accounts.models import SubAccount

    results, errors = [], []

    def worker():
        try:
            sub = SubAccount.objects.select_related("upstream_account__reseller").get(pk=sub_id)
            run = usage_sync_sub_account(
                sub_account=sub,
                start=START,
                end=END,
                now=END,
                connector=SlowHistory(HOURS),
                wait_seconds=wait_seconds,
            )
            results.append(run.status)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_syncs_of_one_sub_account_on_postgres_give_the_same_rows():
    sub = factories.SubAccountFactory()
    results, errors = _race(sub.pk, wait_seconds=0)
    assert errors == []
    assert sorted(results) == ["skipped", "succeeded"]
    skip_policy_rows = _rows(sub.pk)
    assert len(skip_policy_rows[0]) == 72
    assert sum(b for _, b, _ in skip_policy_rows[0]) == sum(HOURS.values())

    # Waiting instead of skipping: both run, one after the other, and change nothing.
    results, errors = _race(sub.pk, wait_seconds=10)
    assert errors == []
    assert results == ["succeeded", "succeeded"]
    assert _rows(sub.pk) == skip_policy_rows
    assert {r for _, _, r in skip_policy_rows[0]} == {0}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_four_workers_sharing_a_redis_budget_never_trip_the_upstream_rate_limit(redis_url):
    """Scaled 10x: the simulator's clock runs 10x real time, so its 60-per-minute limit is
    60 per 6 real seconds; the shared Redis budget allows 50 per 6 s (50/min scaled alike).
    70 syncs (one request each) exceed the limit unless the budget spreads them."""
    import redis

    from usage.providers.ratelimit import RedisBudget
    from usage.services.connectors import connector_for_upstream_account
    from usage.simulator import SimulatorConfig, start_simulator

    speed, base = 10.0, utc(2026, 3, 10, 12).timestamp()
    config = SimulatorConfig(seed=3, rate_limit_enabled=True, rate_limit_per_minute=60)
    with start_simulator(port=0, config=config) as sim:
        t0 = time.monotonic()
        sim.app.state.clock.now = lambda: base + (time.monotonic() - t0) * speed
        budget = RedisBudget(redis.Redis.from_url(redis_url), window=60.0 / speed)
        upstream = factories.UpstreamAccountFactory(
            base_url=sim.url,
            credentials={"api_id": "demo-api-id", "api_token": "demo-api-token"},
            requests_per_minute=50,
        )
        customer = factories.CustomerFactory(reseller=upstream.reseller)
        subs = [
            factories.SubAccountFactory(customer=customer, upstream_account=upstream)
            for _ in range(70)
        ]
        now = dt.datetime.fromtimestamp(sim.app.state.clock.now(), dt.UTC)
        started = time.monotonic()
        summary = usage_sync_sub_accounts(
            sub_accounts=subs,
            start=now - dt.timedelta(hours=72),
            end=now,
            now=now,
            workers=4,
            connector_factory=lambda up: connector_for_upstream_account(
                upstream_account=up, budget=budget
            ),
        )
        elapsed = time.monotonic() - started
        stats = sim.stats()
    assert summary.failed == 0, summary.failures[:3]
    assert summary.ok == 70
    assert summary.requests == 70
    assert stats["rate_limit_trips"] == {}
    assert elapsed >= 60.0 / speed  # 70 requests at 50 per window need a second window


def _reset_broker_pools(app):
    """Forget every broker connection and producer pool, the app's and kombu's global ones:
    even eager tasks borrow a producer, and a pool closed here must not be handed out later."""
    from kombu import pools

    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_runs_one_sync_through_redis(redis_url, settings):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from config.celery import app
    from usage.simulator import SimulatorConfig, start_simulator
    from usage.tasks import usage_sync_sub_account_task

    now = utc(2026, 3, 10, 12, 30)
    old = {k: app.conf[k] for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=redis_url, task_always_eager=False)
    _reset_broker_pools(app)  # earlier tests may have built pools for the default broker

    def close_db(**kwargs):
        connection.close()

    task_postrun.connect(close_db, weak=False)
    config = SimulatorConfig(seed=5, now=now, rate_limit_enabled=False)
    try:
        with start_simulator(port=0, config=config) as sim:
            upstream = factories.UpstreamAccountFactory(
                base_url=sim.url,
                credentials={"api_id": "demo-api-id", "api_token": "demo-api-token"},
            )
            customer = factories.CustomerFactory(reseller=upstream.reseller)
            sub = factories.SubAccountFactory(
                customer=customer, upstream_account=upstream, upstream_id="SIM00002"
            )
            with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
                # No result backend needed: the SyncRun row is the task's observable result.
                usage_sync_sub_account_task.delay(
                    sub.pk,
                    (now - dt.timedelta(hours=72)).isoformat(),
                    now.isoformat(),
                    now.isoformat(),
                )
                deadline = time.monotonic() + 15
                while not SyncRun.objects.filter(sub_account=sub).exists():
                    assert time.monotonic() < deadline, "the worker did not run the sync"
                    time.sleep(0.1)
    finally:
        task_postrun.disconnect(close_db)
        app.conf.update(**old)
        _reset_broker_pools(app)
    run = SyncRun.objects.get(sub_account=sub)
    assert (run.status, run.requests) == ("succeeded", 1)
    assert UsageHour.objects.filter(sub_account=sub).count() == 73
