"""Benchmark: one hourly sync pass over a fleet of IPFoxy sub-accounts, the production way.

    DATABASE_URL=postgres://... .venv/bin/python bench/sync_fleet.py \\
        [--sub-accounts 100000] [--upstream-accounts 1000] [--concurrency 4] \\
        [--redis-url redis://127.0.0.1:6379/14] [--broker-url redis://127.0.0.1:6379/8]

What runs: PostgreSQL (a temporary database next to DATABASE_URL, dropped after), Redis
(the request budget and sync locks on `--redis-url`, the Celery broker on `--broker-url`;
both databases are FLUSHED first), the simulator in its own process with IPFoxy's rate
limit on (60 requests per rolling minute per api-id, `--latency-ms` per answer), and one
Celery worker (`-P prefork --concurrency 4`: 4 worker processes) started by this script.
Each upstream account has its own api-id, `requests_per_minute` 50 (the default), so sync
takes at most 40 a minute from each (a fifth is kept for writes, `ratelimit.py`).

The pass is the beat task's fan-out (`usage.tasks.usage_sync_all_task`): every
sub-account's trailing 72 hours, queued in the order the fan-out's countdowns would run
them (upstream accounts interleaved), without waiting for the countdowns: the request
budget alone paces each upstream account, so the pass takes as long as the workers need.
Sub-accounts already hold the hours of the previous pass (`--warm`, the default: one pass
is run first and not measured, which is what an hourly pass finds), so the measured pass
is the steady state: nearly every bucket unchanged, the current hour grown.

Printed: sub-accounts synced, requests per sub-account, the most requests any api-id got
in a rolling minute and the simulator's rate-limit refusals (the budget never exceeded:
at most 40, and 0 refusals), wall time from the fan-out to the last sync, and how the
workers' time splits: CPU (user + system of the 4 worker processes, from /proc), waiting
on the upstream (inside httpcore's connection pool), the database (inside Django's cursor
and `core.rawsql`: round trips and the server's work), the request budget (Redis), per
sub-account.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sync import drop_postgres, free_port, temp_postgres  # noqa: E402

PROBE_KEY = "flowbill:bench:fleet:probe"
PER_MINUTE = 50  # each upstream account's budget (the default); sync may take four fifths
SYNC_PER_MINUTE = 40


# --- the worker: the production Celery worker, timed --------------------------------------


def worker_main() -> None:
    """`python bench/sync_fleet.py worker`: the production worker (prefork, 4 processes),
    each process timing what its tasks spend in httpcore, the database and Redis and adding it
    to a hash in Redis after every task."""
    import django

    django.setup()
    import httpcore
    import redis
    from celery.signals import task_postrun, task_prerun, worker_process_init
    from django.conf import settings
    from django.db.backends.signals import connection_created

    from config.celery import app
    from core import rawsql
    from usage.providers import ratelimit

    if os.environ.get("FLEET_FOLLOW_UPS") != "1":
        settings.FLOWBILL_AFTER_SYNC_TASKS = []  # measured apart: see --follow-ups

    totals: dict[str, float] = {}
    clock = time.perf_counter

    def add(name: str, seconds: float) -> None:
        totals[name] = totals.get(name, 0.0) + seconds

    def timed(name: str, function):
        def wrapper(*args, **kwargs):
            started = clock()
            try:
                return function(*args, **kwargs)
            finally:
                add(name, clock() - started)

        return wrapper

    # The connection pool's send: under `Client.send` and under the direct GET from the pool
    # of `usage.providers.transport`, so both are timed (httpcore's own CPU included).
    pool = httpcore.ConnectionPool
    pool.handle_request = timed("upstream", pool.handle_request)
    ratelimit.RedisBudget.acquire = timed("budget", ratelimit.RedisBudget.acquire)
    # The statements a sync sends past Django's cursor (`core.rawsql`): the database too.
    rawsql.fetchone = timed("database", rawsql.fetchone)

    def database(execute, sql, params, many, context):
        started = clock()
        try:
            return execute(sql, params, many, context)
        finally:
            add("database", clock() - started)

    def on_connection(sender, connection, **kwargs):
        if database not in connection.execute_wrappers:  # the wrapper outlives a reconnect
            connection.execute_wrappers.append(database)

    connection_created.connect(on_connection, weak=False)
    probe = {}

    def on_init(**kwargs):
        probe["redis"] = redis.Redis.from_url(os.environ["REDIS_URL"])

    def on_prerun(task=None, **kwargs):
        totals.clear()
        probe["started"] = (clock(), time.process_time())

    def on_postrun(task=None, **kwargs):
        wall, cpu = probe.pop("started", (clock(), time.process_time()))
        add("task", clock() - wall)
        add("cpu", time.process_time() - cpu)
        kind = (
            "sync" if task is not None and task.name.endswith("sync_sub_account_task") else "other"
        )
        pipe = probe["redis"].pipeline(transaction=False)
        for name, seconds in totals.items():
            pipe.hincrbyfloat(PROBE_KEY, f"{kind}:{name}", seconds)
        pipe.hincrby(PROBE_KEY, f"{kind}:tasks", 1)
        pipe.execute()

    worker_process_init.connect(on_init, weak=False)
    task_prerun.connect(on_prerun, weak=False)
    task_postrun.connect(on_postrun, weak=False)
    concurrency = os.environ.get("FLEET_CONCURRENCY", "4")
    app.worker_main(
        ["worker", "-P", "prefork", "--concurrency", concurrency, "-Q", "celery",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
    )  # fmt: skip


# --- the driver ------------------------------------------------------------------------------


def bench_fernet_key() -> str:
    """A throwaway key for this run's temporary database (credentials at rest)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def start_simulator(port: int, upstreams: int, latency_ms: int) -> subprocess.Popen:
    """The simulator with one api-id per upstream account, rate limit on, real clock."""
    code = (
        "from usage.simulator.config import SimulatorConfig\n"
        "from usage.simulator.server import serve_forever\n"
        f"keys = {{f'fleet-{{i}}': f'token-{{i}}' for i in range({upstreams})}}\n"
        "from usage.simulator.faults import FaultSettings\n"
        "faults = FaultSettings()\n"
        f"faults.apply({{'latency_ms': {latency_ms}}})\n"
        "config = SimulatorConfig(ipfoxy_keys=keys, rate_limit_enabled=True,\n"
        "    rate_limit_per_minute=60, ipfoxy_sub_account_count=0, faults=faults)\n"
        f"serve_forever(host='127.0.0.1', port={port}, config=config)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            sim_get(url, "/_sim/stats")
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"simulator did not start: {proc.stderr.read().decode()[-2000:]}")


def sim_get(url: str, path: str) -> dict:
    with urllib.request.urlopen(url + path, timeout=10) as answer:  # noqa: S310 - local
        return json.loads(answer.read())


def sim_post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - local
        url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - local
        return json.loads(answer.read())


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live children (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sub-accounts", type=int, default=100_000)
    parser.add_argument("--upstream-accounts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--no-warm", dest="warm", action="store_false")
    parser.add_argument(
        "--stop-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="end the measured pass after this long even if unfinished and print the "
        "figures of the syncs done so far, marked PARTIAL (the queued rest is dropped)",
    )
    parser.add_argument(
        "--follow-ups",
        action="store_true",
        help="keep the after-sync tasks (draft refresh, alert check per customer whose usage "
        "changed); off by default, so the pass is the syncs alone",
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("DATABASE_URL must point at PostgreSQL (a temporary database is made)")

    import redis

    for url in (args.redis_url, args.broker_url):
        redis.Redis.from_url(url).flushdb()
    db_url, admin, name = temp_postgres(os.environ["DATABASE_URL"])
    sim_port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-not-secret",
        "FLOWBILL_ENCRYPTION_KEYS": bench_fernet_key(),
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": db_url,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.broker_url,
        "FLOWBILL_UPSTREAM_ALLOWED_HOSTS_IPFOXY": f"127.0.0.1:{sim_port}",
        "FLEET_CONCURRENCY": str(args.concurrency),
        "FLEET_FOLLOW_UPS": "1" if args.follow_ups else "0",
    }
    os.environ.update(env)
    sim = start_simulator(sim_port, args.upstream_accounts, args.latency_ms)
    worker = None
    try:
        import django

        django.setup()
        setup_world(args, f"http://127.0.0.1:{sim_port}")
        worker = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "worker"], cwd=ROOT, env=env
        )
        time.sleep(3)
        if args.warm:
            print("warm-up pass (the previous hour's sync; not measured) ...", flush=True)
            one_pass(args, f"http://127.0.0.1:{sim_port}", worker, report=False)
        one_pass(args, f"http://127.0.0.1:{sim_port}", worker, report=True)
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
        sim.terminate()
        sim.wait(10)
        from django.db import connections

        connections.close_all()
        drop_postgres(admin, name)


def setup_world(args, sim_url: str) -> None:
    from django.core.management import call_command

    from accounts.models import Customer, Reseller, SubAccount, UpstreamAccount

    t0 = time.monotonic()
    call_command("migrate", verbosity=0)
    reseller = Reseller.objects.create(name="Fleet Ltd", slug="fleet", timezone="Asia/Shanghai")
    customers = Customer.objects.bulk_create(
        [
            Customer(
                reseller=reseller,
                name=f"Customer {i}",
                email=f"c{i}@example.com",
                currency=reseller.currency,
            )
            for i in range(max(args.sub_accounts // 100, 1))
        ]
    )
    upstreams = UpstreamAccount.objects.bulk_create(
        [
            UpstreamAccount(
                reseller=reseller, provider="ipfoxy", name=f"IPFoxy {i}", base_url=sim_url,
                credentials={"api_id": f"fleet-{i}", "api_token": f"token-{i}"},
                requests_per_minute=PER_MINUTE,
            )
            for i in range(args.upstream_accounts)
        ]
    )  # fmt: skip
    SubAccount.objects.bulk_create(
        [
            SubAccount(
                customer=customers[i % len(customers)],
                upstream_account=upstreams[i % len(upstreams)],
                upstream_id=f"FLEET{i:07d}",
            )
            for i in range(args.sub_accounts)
        ],
        batch_size=5000,
    )
    print(
        f"setup               {time.monotonic() - t0:.0f} s: {args.sub_accounts} sub-accounts, "
        f"{args.upstream_accounts} upstream accounts ({PER_MINUTE}/min each), "
        f"{len(customers)} customers"
    )


def one_pass(args, sim_url: str, worker: subprocess.Popen, *, report: bool) -> None:
    import redis
    from django.utils import timezone

    from usage.models import SyncRun

    probe = redis.Redis.from_url(args.redis_url)
    probe.delete(PROBE_KEY)
    sim_post(sim_url, "/_sim/stats/reset", {})
    before = SyncRun.objects.count()
    cpu_before = process_tree_cpu(worker.pid)
    started = time.monotonic()
    queued = fan_out(timezone.now())
    print(f"queued              {queued} syncs in {time.monotonic() - started:.0f} s", flush=True)
    stop_at = None if args.stop_after is None or not report else started + args.stop_after
    done = before
    while done < before + queued:
        time.sleep(2)
        done = SyncRun.objects.count()
        if worker.poll() is not None:
            raise SystemExit("the worker died")
        if stop_at is not None and time.monotonic() >= stop_at:
            break
    wall = time.monotonic() - started
    partial = done < before + queued
    if partial:  # what the workers finished so far; the probes count the same syncs
        time.sleep(1)
        figures_at_stop = probe.hgetall(PROBE_KEY)
        done = SyncRun.objects.count()
    else:
        settle(probe, args.broker_url)  # the follow-up tasks the syncs queued
    cpu = process_tree_cpu(worker.pid) - cpu_before
    if not report:
        return
    stats = sim_get(sim_url, "/_sim/stats")
    n = done - before
    runs = list(SyncRun.objects.order_by("-pk").values_list("status", "requests")[:n])
    failed = sum(1 for status, _ in runs if status != SyncRun.Status.SUCCEEDED)
    requests = sum(k for _, k in runs)
    figures = {
        k.decode(): float(v)
        for k, v in (figures_at_stop if partial else probe.hgetall(PROBE_KEY)).items()
    }
    peak = max(stats["max_requests_per_60s"].values() or [0])
    trips = stats["rate_limit_trips_total"]
    if partial:
        print(
            f"PARTIAL             stopped after {wall:.0f} s (--stop-after): {n} of {queued} "
            f"synced; the figures below are of those {n}; at this rate the pass would take "
            f"{queued / max(n, 1) * wall:.0f} s"
        )
    print(f"sub-accounts synced {n} ({failed} not succeeded)")
    print(f"requests/sub-acct   {requests / n:.3f} ({requests} requests)")
    print(
        f"budget              most requests to one api-id in any rolling minute: {peak} "
        f"(budget {PER_MINUTE}, sync's share {SYNC_PER_MINUTE}); rate-limit refusals: {trips}"
    )
    print(f"wall time           {wall:.0f} s ({n / wall:.0f} sub-accounts/s)")
    print(
        f"worker CPU          {cpu:.0f} s in the 4 processes and their parent "
        f"({cpu / n * 1000:.2f} ms/sub-account, follow-up tasks included)"
    )
    syncs = max(figures.get("sync:tasks", 0), 1)
    for name, what in (
        ("task", "wall time inside sync tasks"),
        ("cpu", "CPU inside sync tasks"),
        ("upstream", "waiting on the upstream (inside httpcore's connection pool)"),
        ("database", "in the database (inside cursor execute: round trips + server)"),
        ("budget", "taking request-budget tokens (Redis, waits included)"),
    ):
        seconds = figures.get(f"sync:{name}", 0.0)
        print(f"sync {name:<14} {seconds:7.0f} s {seconds / syncs * 1000:6.2f} ms/sync  {what}")
    others = figures.get("other:tasks", 0)
    print(
        f"follow-up tasks     {others:.0f} (draft refresh, alert check per customer): "
        f"{figures.get('other:cpu', 0.0):.0f} s CPU, {figures.get('other:task', 0.0):.0f} s wall"
    )
    print(f"load average        {os.getloadavg()[0]:.1f} (machine: {os.cpu_count()} CPUs)")


def fan_out(now) -> int:
    """Queue the syncs of the beat task's fan-out (`usage.tasks.usage_sync_all_task`: every
    syncable IPFoxy sub-account, the trailing 72 hours and the current one, sent through
    `sync_task_send`) in the order of the offsets it spreads them over the hour with
    (upstream accounts interleaved), but without waiting for those offsets: the request
    budget alone paces each upstream account. Returns how many were queued."""
    from accounts.models import Provider, SubAccount, UpstreamAccount
    from accounts.selectors import sub_accounts_syncable
    from usage import tasks
    from usage.models import SyncRun
    from usage.services.requests import sync_task_send, sync_window

    start, end = sync_window(now=now)
    order = []
    upstreams = UpstreamAccount.objects.filter(is_active=True, provider=Provider.IPFOXY)
    for upstream in upstreams.order_by("pk"):
        subs = SubAccount.objects.filter(upstream_account=upstream)
        ids = list(
            sub_accounts_syncable(subs, start=start).order_by("pk").values_list("pk", flat=True)
        )
        step = tasks.SPREAD_SECONDS / max(len(ids), 1)
        order += [(index * step, upstream.pk, pk) for index, pk in enumerate(ids)]
    order.sort()
    for _, _, sub_account_id in order:
        sync_task_send(sub_account_id=sub_account_id, kind=SyncRun.Kind.USAGE, window=(start, end))
    return len(order)


def settle(probe, broker_url: str) -> None:
    """Wait until the broker's queue is empty and no task finished for 3 seconds."""
    import redis

    broker = redis.Redis.from_url(broker_url)
    last, quiet = None, 0
    while quiet < 3:
        time.sleep(1)
        count = sum(int(v) for k, v in probe.hgetall(PROBE_KEY).items() if k.endswith(b":tasks"))
        busy = broker.llen("celery") or count != last
        quiet = 0 if busy else quiet + 1
        last = count


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker_main()
    else:
        main()
