"""Benchmark: remaining traffic of 10,000 IPFoxy sub-accounts from the sub-account list, and
how long a customer's top-up waits while a sync pass of them runs on the same request budget.

    .venv/bin/python bench/traffic.py [--sub-accounts 10000] [--latency-ms 50]
        [--sync-threads 16] [--topup-seconds 75] [--topup-every 8] [--skip-paced]
        [--baseline] [--refresh-during-sync]

The simulator runs in a SEPARATE process (`python -m usage.simulator`, no configured
sub-accounts, real clock); the database is a temporary SQLite file (WAL), or a temporary
PostgreSQL database when DATABASE_URL points at one (as in bench/sync.py). Setup (timed
apart): the sub-accounts are created upstream through `create-sub-account` (rate limit off,
no latency) and in Flowbill; the simulator's clock then moves a day ahead so they have used
traffic, and every answer gets `--latency-ms`. Then:

1. Full refresh, unthrottled: `sub_account_traffic_refresh` with no rate limit on either
   side: requests, pages and seconds (bound by latency and the database).
2. Full refresh at IPFoxy's rate: the simulator allows 60 requests a minute and the upstream
   account's budget is its `requests_per_minute` (50 by default), of which reads like this
   one get 40: requests and seconds (about two minutes; `--skip-paced` leaves it out).
3. Top-ups during a sync pass: a sync pass of every sub-account (the trailing 72 hours, as the
   hourly job) runs in `--sync-threads` threads on the upstream account's budget, the
   simulator's 60/minute on. Once the pass has taken its share of the window, a top-up every
   `--topup-every` seconds for `--topup-seconds` seconds: `allocation_create` of 1 GiB whose
   send runs at the commit (no broker, as in the embedded setup). Prints each wait (call to
   confirmed) and the part of it spent waiting for the budget. A whole pass of 10,000
   sub-accounts at 40 requests a minute takes over four hours, so only its first minute or
   two are measured, then the pass is stopped.
   Writes may take the whole window but only a fifth of it (10 of 50) is kept from sync: more
   than 10 top-ups in one minute wait for the window (`--topup-every 5` shows it).
4. `--baseline`: step 3 again with no share of the window kept for writes
   (`priority_share=0`: the budget before issue 16).
5. `--refresh-during-sync`: a full refresh started while a sync pass runs (both are reads
   sharing the non-priority part of the budget): list pages received in `--topup-seconds`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync import bench_environment, process_cpu_seconds  # noqa: E402

GIB = 1 << 30
IPFOXY_PER_MINUTE = 60


class PassStopped(BaseException):
    """Ends the sync pass's threads where they wait for the budget (nothing catches it)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sub-accounts", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--sync-threads", type=int, default=16)
    parser.add_argument("--topup-seconds", type=float, default=75.0)
    parser.add_argument("--topup-every", type=float, default=8.0)
    parser.add_argument("--skip-paced", action="store_true", help="leave out step 2")
    parser.add_argument("--baseline", action="store_true", help="add step 4")
    parser.add_argument("--refresh-during-sync", action="store_true", help="add step 5")
    args = parser.parse_args()

    with bench_environment(0, "--sub-accounts", "0", "--pool-mb", str(10**9)) as (url, sim):
        run(args, url)
        print(f"simulator CPU          {process_cpu_seconds(sim.pid):.1f} s (whole run)")


class Simulator:
    """The simulator's control endpoints (`/_sim/...`)."""

    def __init__(self, url: str):
        import httpx

        self.http = httpx.Client(base_url=url, timeout=30)

    def post(self, path: str, body: dict) -> dict:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def rate_limit(self, enabled: bool) -> None:
        self.post("/_sim/rate-limit", {"enabled": enabled, "per_minute": IPFOXY_PER_MINUTE})

    def now(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.http.get("/_sim/clock").json()["now"])

    def stats(self) -> dict:
        return self.http.get("/_sim/stats").json()


def stoppable_budget(stop: threading.Event, **options):
    """The process's request budget for one step: sync-class requests raise `PassStopped`
    once `stop` is set (also while they wait); records each grant and each write's wait."""
    from usage.providers.ratelimit import InProcessBudget

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise PassStopped

    class Budget(InProcessBudget):
        def __init__(self):
            super().__init__(sleep=sleep, **options)
            self.grants = {True: 0, False: 0}  # priority -> requests admitted
            self.write_waits: list[float] = []

        def acquire(self, key, *, per_minute, timeout, priority=False):
            if stop.is_set() and not priority:
                raise PassStopped
            started = time.monotonic()
            super().acquire(key, per_minute=per_minute, timeout=timeout, priority=priority)
            self.grants[priority] += 1
            if priority:
                self.write_waits.append(time.monotonic() - started)

    return Budget()


def use_budget(budget) -> None:
    """Make `budget` the one every connector of this process takes (no Redis here)."""
    from usage.services import connectors

    connectors._process_budget = budget


def run(args, sim_url: str) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.backends.signals import connection_created

    import usage.tasks  # noqa: F401 - the allocation's send task, run at the commit
    from accounts.models import Customer, Reseller, SubAccount, UpstreamAccount
    from usage.providers.ratelimit import UnlimitedBudget
    from usage.services.connectors import connector_for_upstream_account

    def fast_commits(sender, connection, **kwargs):
        """A throwaway database: commits need not wait for the disk."""
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            elif connection.vendor == "postgresql":
                cursor.execute("SET synchronous_commit TO off")

    connection_created.connect(fast_commits)
    sim = Simulator(sim_url)
    n = args.sub_accounts

    t0 = time.monotonic()
    call_command("migrate", verbosity=0)
    reseller = Reseller.objects.create(name="Bench Ltd", slug="bench", timezone="Asia/Shanghai")
    customer = Customer.objects.create(
        reseller=reseller, name="Bench", email="b@example.com", currency=reseller.currency
    )
    upstream = UpstreamAccount.objects.create(
        reseller=reseller,
        provider="ipfoxy",
        name="IPFoxy bench",
        base_url=sim_url,
        credentials={"api_id": "demo-api-id", "api_token": "demo-api-token"},
    )
    names = [f"FBBENCH{i:06d}" for i in range(n)]

    def create(i: int) -> None:
        connector_for_upstream_account(
            upstream_account=upstream, budget=UnlimitedBudget()
        ).create_sub_account(
            account=names[i], password=f"Bench{i:06d}xY", flow_mb=512 + 256 * (i % 8),
            idempotency_key=f"bench-create-{i:06d}",
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, range(n)))
    SubAccount.objects.bulk_create(
        [
            SubAccount(customer=customer, upstream_account=upstream, upstream_id=name, label=name)
            for name in names
        ],
        batch_size=2000,
    )
    sim.post("/_sim/clock", {"advance_seconds": 86400})  # a day of use
    sim.post("/_sim/faults", {"latency_ms": args.latency_ms})
    setup = time.monotonic() - t0
    print(f"database               {connection.vendor}")
    print(f"setup                  {setup:.1f} s ({n} sub-accounts created upstream and here)")
    print(f"latency                {args.latency_ms} ms per upstream answer")

    refresh_unthrottled(sim, upstream, n)
    if not args.skip_paced:
        refresh_paced(sim, upstream)
    topups_during_sync(args, sim, upstream, priority_share=None)
    if args.baseline:
        topups_during_sync(args, sim, upstream, priority_share=0.0)
    if args.refresh_during_sync:
        refresh_during_sync(args, sim, upstream)


def _list_requests(sim: Simulator) -> int:
    return sim.stats()["requests_by_endpoint"].get("ipfoxy.sub_accounts", 0)


def _print_refresh(label: str, result, seconds: float, upstream_requests: int) -> None:
    print(f"{label}")
    print(f"  requests             {result.requests} ({upstream_requests} seen by the upstream)")
    print(f"  pages / rows         {result.pages} / {result.listed}")
    print(f"  stored               {result.stored} sub-accounts, {len(result.missing)} missing")
    print(f"  error                {result.error_code or 'none'}")
    print(f"  seconds              {seconds:.1f}")


def refresh_unthrottled(sim: Simulator, upstream, n: int) -> None:
    from usage.models import SubAccountTraffic
    from usage.providers.ratelimit import UnlimitedBudget
    from usage.services.connectors import connector_for_upstream_account
    from usage.services.traffic import sub_account_traffic_refresh

    sim.rate_limit(False)
    before = _list_requests(sim)
    connector = connector_for_upstream_account(upstream_account=upstream, budget=UnlimitedBudget())
    t0 = time.monotonic()
    result = sub_account_traffic_refresh(
        upstream_account=upstream, now=sim.now(), connector=connector
    )
    seconds = time.monotonic() - t0
    _print_refresh("1. full refresh, no rate limit", result, seconds, _list_requests(sim) - before)
    stored = SubAccountTraffic.objects.filter(sub_account__upstream_account=upstream)
    dry = stored.filter(remaining_bytes=0).count()
    used = sum(stored.values_list("used_bytes", flat=True))
    print(f"  per 1,000            {seconds / n * 1000:.2f} s")
    print(f"  figures              {dry} of {stored.count()} ran dry, {used / GIB:.1f} GiB used")


def refresh_paced(sim: Simulator, upstream) -> None:
    from usage.providers.ratelimit import reserved_for_priority
    from usage.services.traffic import sub_account_traffic_refresh

    sim.rate_limit(True)
    use_budget(stoppable_budget(threading.Event()))
    before = _list_requests(sim)
    t0 = time.monotonic()
    result = sub_account_traffic_refresh(upstream_account=upstream, now=sim.now())
    seconds = time.monotonic() - t0
    rpm = upstream.requests_per_minute
    label = (
        f"2. full refresh at IPFoxy's {IPFOXY_PER_MINUTE}/min (budget {rpm}/min, "
        f"{rpm - reserved_for_priority(rpm)} for reads like this)"
    )
    _print_refresh(label, result, seconds, _list_requests(sim) - before)
    print(f"  refused by upstream  {sim.stats()['rate_limit_trips_total']} (code 50000, total)")


@dataclass
class SyncPass:
    """A sync pass running in the background (see `sync_pass_running`)."""

    budget: object
    share: int  # sync-class requests admitted per window
    saturated: float = 0.0  # seconds until it had taken them
    synced: int = 0  # sub-accounts synced when it was stopped
    stopped: bool = False


@contextmanager
def sync_pass_running(args, sim: Simulator, upstream, *, priority_share: float | None):
    """Run a sync pass of every sub-account in `--sync-threads` threads on a fresh budget
    (the simulator's 60/minute on) and yield once it has taken its share of the window;
    stop it on exit."""
    from django.db import connections

    from accounts.models import SubAccount
    from usage.models import SyncRun
    from usage.providers.ratelimit import DEFAULT_PRIORITY_SHARE, reserved_for_priority
    from usage.services import usage_sync_sub_accounts

    sim.rate_limit(True)  # also clears the simulator's window
    stop = threading.Event()
    share = DEFAULT_PRIORITY_SHARE if priority_share is None else priority_share
    budget = stoppable_budget(stop, priority_share=share)
    use_budget(budget)
    rpm = upstream.requests_per_minute
    state = SyncPass(budget=budget, share=rpm - reserved_for_priority(rpm, share))
    subs = list(
        SubAccount.objects.filter(upstream_account=upstream)
        .select_related("upstream_account__reseller")
        .order_by("pk")
    )
    now = sim.now()
    end = now.replace(minute=0, second=0, microsecond=0)
    runs_before = SyncRun.objects.filter(status="succeeded").count()

    def sync_pass() -> None:
        try:
            usage_sync_sub_accounts(
                sub_accounts=subs, start=end - dt.timedelta(hours=72), end=end, now=now,
                workers=args.sync_threads,
            )  # fmt: skip
        except PassStopped:
            state.stopped = True
        finally:
            connections.close_all()

    syncing = threading.Thread(target=sync_pass, daemon=True)
    started = time.monotonic()
    syncing.start()
    while budget.grants[False] < state.share and time.monotonic() < started + 30:
        time.sleep(0.05)
    state.saturated = time.monotonic() - started
    try:
        yield state
    finally:
        stop.set()
        syncing.join(120)
        state.synced = SyncRun.objects.filter(status="succeeded").count() - runs_before


def _print_pass(args, upstream, state: SyncPass) -> None:
    print(f"  sync threads         {args.sync_threads}, budget {upstream.requests_per_minute}/min")
    print(
        f"  pass saturated       its {state.share} requests of a window in {state.saturated:.1f} s"
    )


def topups_during_sync(args, sim: Simulator, upstream, *, priority_share: float | None) -> None:
    from django.utils import timezone

    from accounts.models import SubAccount
    from usage.models import Allocation
    from usage.services.allocations import allocation_create

    # The end of the list: not reached by the pass while this runs.
    subs = SubAccount.objects.filter(upstream_account=upstream).select_related(
        "customer", "upstream_account"
    )
    subs = list(subs.order_by("-pk")[:1000])
    waits, statuses = [], []
    with sync_pass_running(args, sim, upstream, priority_share=priority_share) as state:
        sync_grants_at_start = state.budget.grants[False]
        started = time.monotonic()
        while True:  # one every --topup-every seconds; a slow one delays the next
            t0 = time.monotonic()
            allocation = allocation_create(
                sub_account=subs[len(waits)], bytes=GIB, actor="system", now=timezone.now()
            )
            waits.append(time.monotonic() - t0)
            allocation.refresh_from_db()
            statuses.append((allocation.status, allocation.attempts))
            next_at = started + len(waits) * args.topup_every
            if max(next_at, time.monotonic()) >= started + args.topup_seconds:
                break
            time.sleep(max(0.0, next_at - time.monotonic()))
        measured = time.monotonic() - started
        sync_requests = state.budget.grants[False] - sync_grants_at_start

    title = "3. top-ups during a sync pass" if priority_share is None else (
        f"4. baseline: top-ups during a sync pass, priority_share={priority_share} "
        "(no share kept for writes)"
    )  # fmt: skip
    confirmed = sum(1 for status, _ in statuses if status == Allocation.Status.CONFIRMED)
    resent = sum(1 for _, attempts in statuses if attempts > 1)
    write_waits = state.budget.write_waits
    print(title)
    _print_pass(args, upstream, state)
    print(
        f"  while topping up     {measured:.0f} s: {sync_requests} sync requests, "
        f"{len(waits)} top-ups every {args.topup_every:g} s ({confirmed} confirmed, "
        f"{resent} sent more than once)"
    )
    print(f"  sub-accounts synced  {state.synced} when the pass was stopped")
    print(
        f"  top-up wait          median {statistics.median(waits) * 1000:.0f} ms, "
        f"max {max(waits) * 1000:.0f} ms"
    )
    print(
        f"  of which budget      median {statistics.median(write_waits) * 1000:.0f} ms, "
        f"max {max(write_waits) * 1000:.0f} ms"
    )
    print("  each (ms)            " + " ".join(f"{w * 1000:.0f}" for w in waits))
    print(f"  refused by upstream  {sim.stats()['rate_limit_trips_total']} (code 50000, total)")


def refresh_during_sync(args, sim: Simulator, upstream) -> None:
    from django.db import connections

    from usage.services.traffic import sub_account_traffic_refresh

    def refresh() -> None:
        try:
            sub_account_traffic_refresh(upstream_account=upstream, now=sim.now())
        except PassStopped:
            pass
        finally:
            connections.close_all()

    with sync_pass_running(args, sim, upstream, priority_share=None) as state:
        before = _list_requests(sim)
        refreshing = threading.Thread(target=refresh, daemon=True)
        refreshing.start()
        time.sleep(args.topup_seconds)
        pages = _list_requests(sim) - before
    refreshing.join(120)
    print("5. a full refresh during a sync pass (both reads, same budget)")
    _print_pass(args, upstream, state)
    per_minute = pages / args.topup_seconds * 60
    whole = f"{101 / per_minute:.0f} minutes" if per_minute else "never"
    print(
        f"  refresh pages        {pages} in {args.topup_seconds:g} s ({per_minute:.1f}/min: "
        f"a whole list of 101 pages would take {whole})"
    )


if __name__ == "__main__":
    main()
