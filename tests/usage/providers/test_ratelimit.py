import multiprocessing
import random
import threading
import time

import pytest
import redis

from usage.providers.base import BudgetExhaustedError, RateLimitedError
from usage.providers.ratelimit import InProcessBudget, RedisBudget, RequestBudget


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def max_in_any_window(times, window):
    """The most grants inside any half-open window [t, t + window)."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_in_process_budget_admits_per_minute_then_waits_for_the_oldest_to_leave():
    clock = FakeClock()
    budget = InProcessBudget(clock=clock, sleep=clock.sleep)
    grants = []
    for _ in range(7):
        budget.acquire("ipfoxy:1", per_minute=3, timeout=300)
        grants.append(clock.now - 1000)
    assert grants == [0, 0, 0, 60, 60, 60, 120]
    assert isinstance(budget, RequestBudget)


def test_in_process_budget_never_exceeds_the_limit_for_random_arrivals():
    clock = FakeClock()
    budget = InProcessBudget(clock=clock, sleep=clock.sleep)
    rnd = random.Random(3)
    grants = []
    for _ in range(400):
        clock.now += rnd.choice([0, 0, 0.1, 0.5, 2, 7])
        budget.acquire("k", per_minute=50, timeout=600)
        grants.append(clock.now)
    assert max_in_any_window(grants, 60.0) == 40  # a fifth of the window is left for writes


def test_in_process_budget_times_out_with_a_typed_error_and_no_sleep():
    clock = FakeClock()
    budget = InProcessBudget(clock=clock, sleep=clock.sleep)
    budget.acquire("k", per_minute=1, timeout=1)
    with pytest.raises(BudgetExhaustedError) as info:
        budget.acquire("k", per_minute=1, timeout=10)
    assert isinstance(info.value, RateLimitedError)
    assert info.value.retry_after == 60.0 and clock.sleeps == []
    budget.acquire("other", per_minute=1, timeout=0)  # keys are independent


def test_in_process_budget_is_thread_safe():
    grants = []
    budget = InProcessBudget(window=0.3, on_grant=lambda key, t: grants.append(t))

    def work():
        deadline = time.monotonic() + 0.8
        while time.monotonic() < deadline:
            budget.acquire("k", per_minute=5, timeout=1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max_in_any_window(grants, 0.3) <= 5
    assert len(grants) >= 10


@pytest.mark.redis
def test_redis_budget_admits_per_minute_then_reports_the_wait(redis_url):
    client = redis.Redis.from_url(redis_url)
    sleeps = []
    budget = RedisBudget(client, sleep=sleeps.append)
    for _ in range(3):
        budget.acquire("ipfoxy:1", per_minute=3, timeout=0)
    with pytest.raises(BudgetExhaustedError) as info:
        budget.acquire("ipfoxy:1", per_minute=3, timeout=5)
    assert 59.0 < info.value.retry_after <= 60.0 and sleeps == []
    ttl = client.pttl("flowbill:budget:ipfoxy:1")
    assert 59_000 < ttl <= 61_000  # the log expires by itself


def _redis_worker(url, window, limit, seconds, out):
    grants = []
    budget = RedisBudget(
        redis.Redis.from_url(url), window=window, on_grant=lambda key, t: grants.append(t)
    )
    deadline = time.time() + seconds
    while time.time() < deadline:
        budget.acquire("shared", per_minute=limit, timeout=5)
    out.put(grants)


@pytest.mark.redis
def test_redis_budget_is_shared_by_threads(redis_url):
    grants = []  # Redis's own time of each grant (list.append is atomic)
    budget = RedisBudget(
        redis.Redis.from_url(redis_url), window=0.3, on_grant=lambda key, t: grants.append(t)
    )

    def work():
        deadline = time.monotonic() + 0.8
        while time.monotonic() < deadline:
            budget.acquire("shared", per_minute=4, timeout=2)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max_in_any_window(grants, 0.3) <= 4
    assert len(grants) >= 8


@pytest.mark.redis
def test_redis_budget_holds_across_processes(redis_url):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_redis_worker, args=(redis_url, 0.4, 5, 1.3, out)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    grants = [t for _ in procs for t in out.get(timeout=20)]
    for p in procs:
        p.join(timeout=10)
    assert max_in_any_window(grants, 0.4) <= 5
    assert len(grants) >= 15  # the four processes together kept the budget busy
