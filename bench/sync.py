"""Benchmark: sync 10,000 IPFoxy sub-accounts (72 hourly buckets each) from the simulator.

    .venv/bin/python bench/sync.py [--sub-accounts 10000] [--workers 24] [--layout per-thread]
        [--passes 2] [--against 39af6c9 [--rounds 3] | --against '']

The simulator runs in a SEPARATE process (`python -m usage.simulator`) with 50 ms latency per
response and its rate limit off. The database is a temporary SQLite file (WAL), or, when
DATABASE_URL points at PostgreSQL, a temporary database created next to it and dropped after;
var/flowbill.sqlite3 is never touched. Prints sub-accounts/s, rows/s, requests per
sub-account and the total seconds of the sync phase (setup excluded).

Client layouts (`--layout`):
- `per-thread`: one httpx.Client per worker thread (what production uses,
  `usage.services.connectors.thread_http_client`);
- `shared`: one httpx.Client with a 50-connection pool shared by every thread.

Passes (`--passes`, default 2): pass 1 stores every bucket (a new sub-account's first sync);
pass 2 syncs the same window again and the upstream reports the same values (the steady
state of the hourly re-sync of the trailing 72 hours, where nearly every bucket is already
stored and unchanged). Each pass prints the CPU seconds of the sync worker processes per
sub-account.

Comparison (`--against COMMIT`, default 39af6c9, the commit issue 18 measured): the same
workload runs with this tree's code and with that commit's (a `git worktree` under /tmp,
created once), each in its own subprocess on its own temporary database, alternately for
`--rounds` rounds (default 3); the simulator and this driver are this tree's in both. It
prints every run, each round's figures per pass and their ratio, and the medians: on a
machine whose speed drifts over minutes, runs a minute apart compare fairly where runs
ten minutes apart do not. `--against ''` runs this tree once, in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
#: The tree whose code is measured: this one, or a baseline commit's worktree (`--code`).
CODE = ROOT
if "--code" in sys.argv:
    CODE = Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
sys.path.insert(0, str(CODE))
if CODE != ROOT:
    sys.path.insert(1, str(ROOT))  # `bench` itself comes from this tree
#: The environment the driver started with: every run starts from it (`bench_environment`
#: changes the process's own).
ENVIRON = dict(os.environ)
BASELINE = "39af6c9"  # issue 18: 21.9 ms of worker CPU per sub-account, pass 1, PostgreSQL

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(port: int, latency_ms: int, *flags: str) -> subprocess.Popen:
    """`python -m usage.simulator` in its own process, rate limit off; `flags` replace the
    frozen clock at NOW (bench/traffic.py passes its own)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "usage.simulator",
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
            "--no-rate-limit",
            *(flags or ("--now", NOW.isoformat())),
        ],
        cwd=ROOT,  # this tree's simulator, whichever code is measured
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("simulator did not start")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), for the report."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def temp_postgres(url: str) -> tuple[str, str, str]:
    """Create a temporary database next to `url` (named after it); return (new url, admin
    url, name)."""
    import psycopg

    parts = urlsplit(url)
    base = parts.path.strip("/") or "flowbill"
    name = f"{base[:40]}_bench_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), admin, name


def drop_postgres(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def bench_environment(latency_ms: int, *simulator_args: str):
    """A temporary world for one benchmark: settings on embedded defaults (tasks in-process,
    the in-process request budget), a temporary SQLite file or PostgreSQL database (next to
    DATABASE_URL), and the simulator in its own process. Yields (its URL, its process)."""
    tmp = tempfile.TemporaryDirectory(prefix="flowbill-bench-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["DJANGO_DEBUG"] = "1"
    os.environ["FLOWBILL_VAR_DIR"] = tmp.name
    os.environ.pop("CELERY_BROKER_URL", None)  # tasks run in-process, at the commit
    os.environ.pop("REDIS_URL", None)  # the in-process request budget
    pg = None
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        new_url, admin, name = temp_postgres(os.environ["DATABASE_URL"])
        os.environ["DATABASE_URL"] = new_url
        pg = (admin, name)
    else:
        os.environ.pop("DATABASE_URL", None)

    port = free_port()
    sim = start_simulator(port, latency_ms, *simulator_args)
    try:
        yield f"http://127.0.0.1:{port}", sim
    finally:
        sim.terminate()
        sim.wait(10)
        if pg:
            from django.db import connections

            connections.close_all()
            drop_postgres(*pg)
        tmp.cleanup()


def baseline_tree(commit: str) -> Path:
    """A detached worktree of `commit` under /tmp (created once, reused by later runs)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short=7", commit],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    tree = Path(tempfile.gettempdir()) / f"flowbill-{sha}"
    if not (tree / "manage.py").exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), sha],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
    return tree


PASS_LINE = re.compile(r"pass (\d+) workers CPU .*\(([0-9.]+) ms/sub-account\)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sub-accounts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=24, help="threads per process")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--layout", choices=["per-thread", "shared"], default="per-thread")
    parser.add_argument("--passes", type=int, default=2, choices=[1, 2])
    parser.add_argument("--against", default=BASELINE, help="commit to compare with ('' to skip)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of both trees (--against)"
    )
    parser.add_argument("--code", default=str(ROOT), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.against:
        print(f"code                {describe(CODE)}")
        with bench_environment(args.latency_ms) as (url, sim):
            run(args, url)
            print(f"simulator CPU       {process_cpu_seconds(sim.pid):.1f} s (whole run)")
        return
    compare(args)


def compare(args) -> None:
    """`args.rounds` rounds, each this tree then the baseline, every run in its own
    subprocess on its own database: the machine's speed drifts over minutes (other work,
    a shared host), so each round's ratio compares runs a minute apart, and the median
    of the rounds is the figure."""
    trees = {"this tree": ROOT, args.against: baseline_tree(args.against)}
    figures: dict[str, list[dict[int, float]]] = {name: [] for name in trees}
    for number in range(1, args.rounds + 1):
        for name, tree in trees.items():
            print(f"\n--- round {number}: {name} ({tree}) ---", flush=True)
            output = _run_tree(tree, args)
            print(output, end="", flush=True)
            figures[name].append({int(n): float(ms) for n, ms in PASS_LINE.findall(output)})
    mine, theirs = figures["this tree"], figures[args.against]
    print(f"\n--- worker CPU per sub-account, this tree vs {args.against}, by round ---")
    for number in range(1, args.passes + 1):
        ratios = [m[number] / t[number] for m, t in zip(mine, theirs, strict=True)]
        rounds = ", ".join(
            f"{m[number]:.2f} vs {t[number]:.2f} ({r:.2f}x)"
            for m, t, r in zip(mine, theirs, ratios, strict=True)
        )
        print(f"pass {number}              {rounds}")
        ms, theirs_ms = _median([m[number] for m in mine]), _median([t[number] for t in theirs])
        print(
            f"pass {number} median       {ms:.2f} ms vs {theirs_ms:.2f} ms; median ratio "
            f"{_median(ratios):.2f}x ({1 / _median(ratios):.1f} times less)"
        )


def _run_tree(tree: Path, args) -> str:
    """One run of the workload with `tree`'s code, in a subprocess; its output."""
    command = [sys.executable, str(Path(__file__).resolve()), "--code", str(tree), "--against", ""]
    for name in ("sub_accounts", "workers", "processes", "latency_ms", "layout", "passes"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return subprocess.run(
        command, cwd=tree, env=ENVIRON, check=True, capture_output=True, text=True
    ).stdout


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def describe(tree: Path) -> str:
    head = subprocess.run(
        ["git", "log", "-1", "--format=%h %s"], cwd=tree, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=tree, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    return f"{tree} at {head[:60]}{' (+ uncommitted changes)' if dirty else ''}"


def run(args, sim_url: str) -> dict[int, float]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.db.backends.signals import connection_created

    from accounts.models import Customer, Reseller, SubAccount, UpstreamAccount

    def fast_commits(sender, connection, **kwargs):
        """A throwaway database: commits need not wait for the disk (WAL/NORMAL on SQLite,
        synchronous_commit off on PostgreSQL); the work per commit is unchanged."""
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            elif connection.vendor == "postgresql":
                cursor.execute("SET synchronous_commit TO off")

    connection_created.connect(fast_commits)
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
    SubAccount.objects.bulk_create(
        [
            SubAccount(customer=customer, upstream_account=upstream, upstream_id=f"BENCH{i:06d}")
            for i in range(args.sub_accounts)
        ],
        batch_size=2000,
    )
    subs = list(SubAccount.objects.select_related("upstream_account__reseller").order_by("pk"))
    setup = time.monotonic() - t0

    end = NOW.replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(hours=72)
    ids = [sub.pk for sub in subs]
    slices = [ids[i :: args.processes] for i in range(args.processes)]
    n = len(subs)
    print(f"database            {connection.vendor}")
    print(
        f"layout              {args.layout} httpx client, {args.processes} processes x "
        f"{args.workers} threads"
    )
    print(f"setup               {setup:.1f} s (migrate + {n} sub-accounts)")
    figures: dict[int, float] = {}
    for number in range(1, args.passes + 1):
        connections.close_all()
        figures[number] = sync_pass(number, slices, start, end, args, n)
    return figures


def sync_pass(number, slices, start, end, args, n) -> float:
    """One pass over every sub-account in `args.processes` forked processes; prints its
    figures and returns the workers' CPU milliseconds per sub-account."""
    from usage.models import UsageHour
    from usage.services import SyncSummary

    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    before = os.times()
    t1 = time.monotonic()
    procs = [
        ctx.Process(target=sync_slice, args=(chunk, start, end, args, results)) for chunk in slices
    ]
    for proc in procs:
        proc.start()
    totals = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.monotonic() - t1
    after = os.times()
    user = after.children_user - before.children_user
    system = after.children_system - before.children_system
    cpu_children = user + system
    summary = SyncSummary()
    for part in totals:
        for name in ("ok", "failed", "rows_written", "requests"):
            setattr(summary, name, getattr(summary, name) + part[name])
        summary.failures.extend(part["failures"])
    hours = UsageHour.objects.count()
    what = "every bucket new" if number == 1 else "same window again, nothing changed upstream"
    print(f"--- pass {number}: {what}")
    print(f"sub-accounts        {n} ({summary.ok} ok, {summary.failed} failed)")
    print(f"hour rows stored    {hours}")
    print(f"rows written        {summary.rows_written} (hours + days)")
    print(f"total seconds       {elapsed:.1f}")
    print(f"sub-accounts/s      {n / elapsed:.0f}")
    print(f"rows/s              {summary.rows_written / elapsed:.0f}")
    print(f"requests/sub-acct   {summary.requests / n:.3f}")
    per_sub = cpu_children / n * 1000
    print(f"pass {number} workers CPU  {cpu_children:.1f} s ({per_sub:.2f} ms/sub-account)")
    print(f"  user / system     {user / n * 1000:.2f} / {system / n * 1000:.2f} ms/sub-account")
    if summary.failures:
        print("first failure:", summary.failures[0])
    return per_sub


def sync_slice(ids, start, end, args, results) -> None:
    """One worker process: its share of the sub-accounts, `args.workers` threads."""
    import httpx
    from django.db import connections

    from accounts.models import SubAccount
    from usage.providers.ratelimit import UnlimitedBudget
    from usage.services import usage_sync_sub_accounts
    from usage.services.connectors import connector_for_upstream_account

    connections.close_all()
    budget = UnlimitedBudget()  # the simulator's rate limit is off for this benchmark
    shared = httpx.Client(limits=httpx.Limits(max_connections=50, max_keepalive_connections=50))

    def factory(upstream_account):
        client = shared if args.layout == "shared" else None  # None: this thread's own client
        return connector_for_upstream_account(
            upstream_account=upstream_account, client=client, budget=budget
        )

    subs = list(
        SubAccount.objects.select_related("upstream_account__reseller")
        .filter(pk__in=ids)
        .order_by("pk")
    )
    summary = usage_sync_sub_accounts(
        sub_accounts=subs,
        start=start,
        end=end,
        now=NOW,
        workers=args.workers,
        connector_factory=factory,
    )
    shared.close()
    connections.close_all()
    results.put(
        {
            "ok": summary.ok,
            "failed": summary.failed,
            "rows_written": summary.rows_written,
            "requests": summary.requests,
            "failures": summary.failures[:3],
        }
    )


if __name__ == "__main__":
    main()
