"""Writes go first: sync leaves a share of every budget window to priority requests, in both
budget implementations, so a write never waits behind a sync pass."""

import datetime as dt
import threading
import time

import httpx
import pytest
import redis

from usage.providers import build_connector
from usage.providers.base import BudgetExhaustedError
from usage.providers.ratelimit import InProcessBudget, RedisBudget, reserved_for_priority
from usage.providers.transport import RetryPolicy
from usage.simulator import SimulatorConfig, start_simulator

from .test_ratelimit import FakeClock, max_in_any_window

NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=dt.UTC)


@pytest.fixture
def redis_db(redis_url):
    """A client of the test Redis (this xdist worker's own db, flushed before and after)."""
    return redis.Redis.from_url(redis_url)


@pytest.mark.parametrize(
    ("per_minute", "reserved"), [(1, 0), (4, 0), (5, 1), (10, 2), (50, 10), (60, 12)]
)
def test_a_fifth_of_the_window_is_reserved_for_priority(per_minute, reserved):
    assert reserved_for_priority(per_minute) == reserved


def test_priority_share_is_validated():
    with pytest.raises(ValueError, match="priority_share"):
        InProcessBudget(priority_share=1.0)


def _fill_then_write(budget, clock_advance):
    """Sync takes what it may, then writes take the reserve; returns what was granted."""
    sync = 0
    while True:
        try:
            budget.acquire("upstream:1", per_minute=10, timeout=0)
        except BudgetExhaustedError as exc:
            sync_wait = exc.retry_after
            break
        sync += 1
    writes = 0
    for _ in range(2):
        budget.acquire("upstream:1", per_minute=10, timeout=0, priority=True)
        writes += 1
    with pytest.raises(BudgetExhaustedError):
        budget.acquire("upstream:1", per_minute=10, timeout=0, priority=True)
    clock_advance()
    budget.acquire("upstream:1", per_minute=10, timeout=0)  # a new window: sync again
    return sync, writes, sync_wait


def test_in_process_sync_stops_at_eight_of_ten_and_writes_take_the_last_two():
    clock = FakeClock()
    budget = InProcessBudget(clock=clock, sleep=clock.sleep)

    sync, writes, sync_wait = _fill_then_write(budget, lambda: setattr(clock, "now", 1060.0))

    assert (sync, writes, sync_wait) == (8, 2, 60.0)
    assert clock.sleeps == []


@pytest.mark.redis
def test_redis_sync_stops_at_eight_of_ten_and_writes_take_the_last_two(redis_db):
    budget = RedisBudget(redis_db, window=0.5)

    sync, writes, sync_wait = _fill_then_write(budget, lambda: time.sleep(0.55))

    assert (sync, writes) == (8, 2)
    assert 0.4 < sync_wait <= 0.5


def test_a_long_sync_pass_never_delays_a_write():
    """1,000 sync requests at 50/min; a write every 37th: none of them waits at all."""
    clock = FakeClock()
    grants = []
    budget = InProcessBudget(clock=clock, sleep=clock.sleep, on_grant=lambda k, t: grants.append(t))
    write_waits = []
    for i in range(1000):
        budget.acquire("upstream:1", per_minute=50, timeout=120)
        if i % 37 == 0:
            before = clock.now
            budget.acquire("upstream:1", per_minute=50, timeout=0, priority=True)
            write_waits.append(clock.now - before)

    assert len(write_waits) == 28 and set(write_waits) == {0.0}
    assert max_in_any_window(grants, 60.0) <= 50  # the upstream's promise still holds


@pytest.mark.redis
def test_redis_priority_is_shared_across_clients(redis_db):
    sync_budget = RedisBudget(redis_db, window=5.0)
    write_budget = RedisBudget(redis.Redis(connection_pool=redis_db.connection_pool), window=5.0)
    for _ in range(8):
        sync_budget.acquire("upstream:7", per_minute=10, timeout=0)

    with pytest.raises(BudgetExhaustedError):
        sync_budget.acquire("upstream:7", per_minute=10, timeout=0)
    write_budget.acquire("upstream:7", per_minute=10, timeout=0, priority=True)
    write_budget.acquire("upstream:7", per_minute=10, timeout=0, priority=True)
    with pytest.raises(BudgetExhaustedError):
        write_budget.acquire("upstream:7", per_minute=10, timeout=0, priority=True)


@pytest.mark.slow
def test_a_write_is_not_queued_behind_a_running_sync_pass_against_the_simulator():
    config = SimulatorConfig(now=NOW, ipfoxy_sub_account_count=500, rate_limit_enabled=False)
    grants = []
    budget = InProcessBudget(window=1.0, on_grant=lambda key, t: grants.append(t))

    def connector(client):
        return build_connector(
            provider="ipfoxy",
            base_url=sim.url,
            credentials={"api_id": "demo-api-id", "api_token": "demo-api-token"},
            client=client,
            budget=budget,
            budget_key="upstream:1",
            retry=RetryPolicy(max_attempts=1, budget_timeout=30),
            requests_per_minute=10,  # per 1-second window here: 8 for sync, 2 kept for writes
        )

    with start_simulator(config=config) as sim:
        stop = threading.Event()
        sync_pages = []

        def sync_pass():
            with httpx.Client() as client:
                sync = connector(client)
                while not stop.is_set():
                    sync.sub_accounts_page(page=len(sync_pages) % 50 + 1, page_size=10)
                    sync_pages.append(time.monotonic())

        thread = threading.Thread(target=sync_pass)
        thread.start()
        time.sleep(1.5)  # the sync pass is saturating its share and waiting for slots
        with httpx.Client() as client:
            writer = connector(client)
            started = time.monotonic()
            writer.allocate_flow(account="SIM00001", flow_mb=10, idempotency_key="alloc-first-1")
            writer.allocate_flow(account="SIM00002", flow_mb=10, idempotency_key="alloc-first-2")
            write_seconds = time.monotonic() - started
        stop.set()
        thread.join(timeout=10)
        pool = sim.pool()

    assert write_seconds < 0.5  # two writes, no budget wait (a full window is 1 s)
    assert len(sync_pages) >= 8
    assert max_in_any_window(sync_pages, 1.0) <= 8 + 1  # the sync share (+1: time of append)
    assert max_in_any_window(grants, 1.0) <= 10
    assert pool["allocated_mb"] == "20"
