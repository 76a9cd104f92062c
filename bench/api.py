"""Benchmark: API latency under concurrent load, against a real server process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/api.py
        [--sub-accounts 10000] [--per-customer 5] [--days 90] [--keyed 200]
        [--clients 1,8] [--seconds 20] [--warmup 3] [--workers 2] [--threads 1]
        [--targets reseller-usage-month,invoices] [--db flowbill_bench_api] [--reuse]
        [--baseline e822d51]

1. Loads a dedicated PostgreSQL database (default `flowbill_bench_api`, dropped and created
   next to DATABASE_URL's; `--reuse` keeps a loaded one): one reseller in Asia/Shanghai,
   10,000 sub-accounts (5 per customer) with 90 days of daily usage each (900,000 UsageDay
   rows in one INSERT ... SELECT over generate_series, then the reseller's usage rollup
   rebuilt from them), and for the first `--keyed` customers a subscription, three issued
   monthly invoices and an API key each (plus reseller keys).
2. Starts the server in its own process: `gunicorn config.wsgi -w 2`, DJANGO_DEBUG=0.
3. For each target and each client count, runs the load from ANOTHER process (`bench/api.py
   load`): N threads, each with its own httpx client, in a closed loop for `--seconds` after
   `--warmup`; every request uses the next customer's key (the throttle is 1,200 requests a
   minute per key, and many customers asking at once is the realistic load anyway).
   Prints p50/p95/p99/max latency and requests per second, the machine's load average, and
   the CPU per request of the server processes, PostgreSQL's backends and the load client.
4. With `invoices` among the targets, measures the customer invoice list again against
   `--baseline` (default e822d51, issue 18's reference): that commit's code from a git
   worktree under /tmp, its own migrations and `bench/api.py` loader on database
   `<db>_<commit>` (the keyed customers only: the list reads invoices, not usage days), its
   own gunicorn, the same load process; prints both server CPU figures and their ratio.

Targets (`TARGETS`, easy to extend): `reseller-usage-month` = the reseller-wide series (all
customers) over a month of days, issue 18's p95 target, read from the rollup;
`reseller-usage-all` = the same over all 90 days; `usage` = the customer usage endpoint, a
90-day daily series; `invoices` = the customer invoice list; `customers` = the reseller
customer list (the stand-in when `/api/v1/invoices/` does not answer 200); `reseller-usage`
= a 90-day series of one customer through the reseller endpoint; `me` = `/api/v1/me/`, the
framework's floor (key check, one small query) for comparison.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GIB = 1_073_741_824
FIRST_DAY = dt.date(2026, 7, 1)
INVOICE_MONTHS = [dt.date(2026, 7, 1), dt.date(2026, 8, 1), dt.date(2026, 9, 1)]
INVOICE_NOW = dt.datetime(2026, 10, 5, 12, tzinfo=dt.UTC)
RESELLER_SLUG = "bench-api"
RESELLER_KEYS = 20
#: The invoice list's server CPU per request is compared with this commit's (issue 18).
BASELINE_COMMIT = "e822d51"
SECRET_KEY = "bench-api-secret-key-not-for-production-0123456789abcdefghijklmnop"  # noqa: S105
ENCRYPTION_KEY = "YmVuY2gtYXBpLW9ubHktZmVybmV0LWtleS0wMDAwMDA="


@dataclass(frozen=True)
class Target:
    path: str  # may use {first}, {last}, {customer}
    scope: str  # "customer" or "reseller"
    fallback: str | None = None  # target to measure instead when this one does not answer 200


TARGETS = {
    "usage": Target("/api/v1/usage/?from={first}&to={last}&granularity=day", "customer"),
    "invoices": Target("/api/v1/invoices/", "customer", fallback="customers"),
    "customers": Target("/api/v1/reseller/customers/", "reseller"),
    "reseller-usage": Target(
        "/api/v1/reseller/usage/?from={first}&to={last}&customer={customer}", "reseller"
    ),
    # Baseline: key check, one small query, a small body (the framework's floor).
    "me": Target("/api/v1/me/", "customer"),
    # The whole reseller (all 10,000 sub-accounts), from its rollup (ResellerUsageDay).
    "reseller-usage-all": Target("/api/v1/reseller/usage/?from={first}&to={last}", "reseller"),
    # The same over a month of days (the last 30 of the range): issue 18's target.
    "reseller-usage-month": Target(
        "/api/v1/reseller/usage/?from={month_first}&to={last}", "reseller"
    ),
}


# --- database -------------------------------------------------------------------------------


def _server_env(db_url: str, media_root: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        DATABASE_URL=db_url,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=SECRET_KEY,
        FLOWBILL_ENCRYPTION_KEYS=ENCRYPTION_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DATABASE_CONN_MAX_AGE="600",
        CELERY_BROKER_URL="",
        REDIS_URL="",
        LOG_LEVEL="WARNING",
        MEDIA_ROOT=media_root,
        STATIC_ROOT=media_root,  # no collected static files: the API serves none
    )
    return env


def _recreate_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _database_exists(admin_url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def _progress(label: str, done: int, total: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    rate = done / elapsed if elapsed else 0
    print(f"  {label}: {done:,}/{total:,} ({done * 100 // total}%) {rate:,.0f}/s", flush=True)


def _seed_usage_days(*, reseller, first_day: dt.date, days: int) -> None:
    """`days` daily rows for every sub-account of the reseller in one INSERT ... SELECT over
    generate_series (900,000 rows in seconds): 0.1 - 2.5 GiB a day, varying by sub-account
    and day, some days idle. Written around the sync path, so the rollup is rebuilt after."""
    from django.db import connection

    from accounts.models import Customer, SubAccount
    from usage.models import UsageDay

    qn = connection.ops.quote_name
    sql = (
        f"INSERT INTO {qn(UsageDay._meta.db_table)} "  # noqa: S608
        "(sub_account_id, day, bytes, revision, updated_at) "
        "SELECT s.id, %s::date + n, "
        "CASE WHEN (s.id + n) %% 11 = 0 THEN 0 "
        "ELSE (s.id %% 23 + n %% 7 + 1) * %s::bigint / 10 END, "
        "0, now() "
        f"FROM {qn(SubAccount._meta.db_table)} s "
        f"JOIN {qn(Customer._meta.db_table)} c ON c.id = s.customer_id "
        "CROSS JOIN generate_series(0, %s) AS n WHERE c.reseller_id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [first_day, GIB, days - 1, reseller.pk])


def _load(args) -> None:
    """Seed the benchmark data (Django is set up on the bench database)."""
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Customer, Provider, Reseller, SubAccount, UpstreamAccount
    from billing.invoicing.issuing import invoice_issue
    from billing.models import Subscription
    from billing.plans import plan_create
    from usage.services.rollup import reseller_usage_days_rebuild

    print("migrating...", flush=True)
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")  # loading only; the server is default
    reseller = Reseller.objects.create(
        name="Bench API Reseller Ltd",
        slug=RESELLER_SLUG,
        timezone="Asia/Shanghai",
        invoice_prefix="BAPI",
        sender_email="billing@bench.example",
    )
    upstream = UpstreamAccount.objects.create(
        reseller=reseller,
        provider=Provider.IPFOXY,
        name="IPFoxy",
        credentials={"api_id": "bench", "api_token": "bench-token"},
    )
    n_customers = -(-args.sub_accounts // args.per_customer)
    total_days = args.sub_accounts * args.days
    print(
        f"loading {n_customers:,} customers, {args.sub_accounts:,} sub-accounts, "
        f"{total_days:,} usage days...",
        flush=True,
    )
    started = time.perf_counter()
    customers = Customer.objects.bulk_create(
        [
            Customer(
                reseller=reseller,
                name=f"Customer {n:05d}",
                email=f"c{n}@bench.example",
                currency="USD",
                tax_rate=Decimal("6"),
            )
            for n in range(n_customers)
        ],
        batch_size=2000,
    )
    SubAccount.objects.bulk_create(
        [
            SubAccount(
                customer=customers[n // args.per_customer],
                upstream_account=upstream,
                upstream_id=f"S{n:06d}",
                label=f"sub {n}",
            )
            for n in range(args.sub_accounts)
        ],
        batch_size=2000,
    )
    print(f"  customers and sub-accounts in {time.perf_counter() - started:.1f}s", flush=True)
    started = time.perf_counter()
    _seed_usage_days(reseller=reseller, first_day=FIRST_DAY, days=args.days)
    _progress("usage days", total_days, total_days, started)
    started = time.perf_counter()
    rows = reseller_usage_days_rebuild(reseller=reseller)
    print(f"  rollup: {rows:,} rows in {time.perf_counter() - started:.1f}s", flush=True)

    keyed = customers[: args.keyed]
    plan = plan_create(
        reseller=reseller,
        code="std",
        name="Standard",
        pricing_model="graduated",
        base_fee=Decimal("20"),
        tiers=[(Decimal("100"), Decimal("3")), (None, Decimal("2"))],
    )
    Subscription.objects.bulk_create(
        Subscription(customer=c, plan=plan, starts_on=dt.date(2026, 1, 1)) for c in keyed
    )
    started = time.perf_counter()
    total = len(keyed) * len(INVOICE_MONTHS)
    print(f"issuing {total:,} invoices (PDF included) for the keyed customers...", flush=True)
    issued = 0
    for customer in Customer.objects.filter(pk__in=[c.pk for c in keyed]).select_related(
        "reseller"
    ):
        for month in INVOICE_MONTHS:
            invoice_issue(customer=customer, period_start=month, now=INVOICE_NOW, send_email=False)
            issued += 1
            if issued % max(total // 5, 1) == 0:
                _progress("invoices", issued, total, started)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print("loaded.", flush=True)


def _keys(args) -> dict:
    """Fresh API keys for the keyed customers and the reseller (keys are shown only once)."""
    from accounts.api_keys import api_key_create
    from accounts.models import ApiKey, Customer, Reseller

    reseller = Reseller.objects.get(slug=RESELLER_SLUG)
    ApiKey.objects.filter(reseller=reseller).delete()
    customers = list(
        Customer.objects.filter(reseller=reseller, subscriptions__isnull=False)
        .order_by("pk")
        .distinct()[: args.keyed]
    )
    return {
        "customer": [
            (c.pk, api_key_create(reseller=reseller, customer=c, name="bench")[1])
            for c in customers
        ],
        "reseller": [
            api_key_create(reseller=reseller, name=f"bench-{n}")[1] for n in range(RESELLER_KEYS)
        ],
    }


def _requests_for(target: Target, keys: dict, days: int) -> list[tuple[str, str]]:
    last = FIRST_DAY + dt.timedelta(days=days - 1)
    month_first = max(FIRST_DAY, last - dt.timedelta(days=29))
    out = []
    for n, (customer_id, customer_key) in enumerate(keys["customer"]):
        path = target.path.format(
            first=FIRST_DAY, last=last, month_first=month_first, customer=customer_id
        )
        key = customer_key if target.scope == "customer" else keys["reseller"][n % RESELLER_KEYS]
        out.append((path, key))
    return out


# --- server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(
    env: dict, workers: int, threads: int, cwd: Path = ROOT
) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "config.wsgi",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--backlog",
        "256",
    ]
    if threads > 1:
        cmd += ["-k", "gthread", "--threads", str(threads)]
    server = subprocess.Popen(cmd, cwd=cwd, env=env)
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.terminate()
    raise SystemExit("the server did not answer /healthz within 60 s")


# --- load (runs in its own process) ---------------------------------------------------------


def _load_main(argv: list[str]) -> None:
    import httpx

    parser = argparse.ArgumentParser(prog="bench/api.py load")
    parser.add_argument("--plan", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=float, required=True)
    args = parser.parse_args(argv)
    plan = json.loads(Path(args.plan).read_text())
    base, requests = plan["base"], plan["requests"]
    cpu_start = time.process_time()
    lock = threading.Lock()
    counter = iter(range(10**12))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = [0]
    start = time.perf_counter()
    measure_from = start + args.warmup
    stop_at = measure_from + args.seconds

    def client() -> None:
        own: list[float] = []
        codes: dict[int, int] = {}
        count = 0
        with httpx.Client(base_url=base, timeout=30) as http:
            while True:
                with lock:
                    path, key = requests[next(counter) % len(requests)]
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    break
                response = http.get(
                    path, headers={"Authorization": f"Api-Key {key}", "Accept": "application/json"}
                )
                t1 = time.perf_counter()
                count += 1
                if t0 >= measure_from:
                    own.append(t1 - t0)
                    codes[response.status_code] = codes.get(response.status_code, 0) + 1
        with lock:
            sent[0] += count
            latencies.extend(own)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(
        json.dumps(
            {
                "requests": len(latencies),
                "statuses": statuses,
                "rps": len(latencies) / args.seconds,
                "p50": pct(0.50),
                "p95": pct(0.95),
                "p99": pct(0.99),
                "max": latencies[-1] * 1000,
                "mean": statistics.fmean(latencies) * 1000,
                "sent": sent[0],  # warm-up included
                "client_cpu_ms": (time.process_time() - cpu_start) * 1000,
            }
        )
    )


# --- main -----------------------------------------------------------------------------------


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _cpu_ms(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc), in ms."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def _server_pids(master: int) -> list[int]:
    pids = [master]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return pids


def _db_pids(admin_url: str, name: str) -> list[int]:
    """The PostgreSQL backends serving the bench database (the server keeps its
    connections open: DATABASE_CONN_MAX_AGE)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [name])
        return [pid for (pid,) in rows.fetchall()]


def _measure(name: str, *, base: str, keys: dict, server_pid: int, db: tuple[str, str], args):
    """Every client count of one target against a running server: prints and returns the
    figures (latency percentiles; server, PostgreSQL and client CPU per request)."""
    import httpx

    target, measured = TARGETS[name], name
    requests = _requests_for(target, keys, args.days)
    path, key = requests[0]
    probe = httpx.get(base + path, headers={"Authorization": f"Api-Key {key}"}, timeout=30)
    if probe.status_code != 200 and target.fallback:
        print(
            f"{name}: {path} answers {probe.status_code}; measuring {target.fallback} instead",
            flush=True,
        )
        measured = target.fallback
        requests = _requests_for(TARGETS[measured], keys, args.days)
        path, key = requests[0]
        probe = httpx.get(base + path, headers={"Authorization": f"Api-Key {key}"}, timeout=30)
    if probe.status_code != 200:
        print(f"{measured}: {path} answers {probe.status_code}: {probe.text[:300]}")
        return []
    body = probe.json()
    shape = (
        f"{len(body['results'])} results" if isinstance(body, dict) and "results" in body else "?"
    )
    print(f"{measured}: GET {path} -> 200, {len(probe.content):,} bytes, {shape}")
    results = []
    for clients in [int(c) for c in args.clients.split(",")]:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as plan:
            json.dump({"base": base, "requests": requests}, plan)
        before = _loadavg()
        server_pids = _server_pids(server_pid)
        db_pids = _db_pids(*db)
        server_cpu, db_cpu = _cpu_ms(server_pids), _cpu_ms(db_pids)
        out = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "load",
                "--plan",
                plan.name,
                "--clients",
                str(clients),
                "--seconds",
                str(args.seconds),
                "--warmup",
                str(args.warmup),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        os.unlink(plan.name)
        stats = json.loads(out.stdout.strip().splitlines()[-1])
        stats.update(target=measured, clients=clients, load_before=before)
        stats["load_after"] = _loadavg()
        # New backends (a worker's first request) are missed: warm-up covers that.
        stats["server_ms"] = (_cpu_ms(server_pids) - server_cpu) / stats["sent"]
        stats["db_ms"] = (_cpu_ms(db_pids) - db_cpu) / stats["sent"]
        client_ms = stats["client_cpu_ms"] / stats["sent"]
        results.append(stats)
        print(
            f"  {clients:>2} clients: p50 {stats['p50']:6.1f} ms  p95 {stats['p95']:6.1f} "
            f"ms  p99 {stats['p99']:6.1f} ms  max {stats['max']:6.1f} ms  "
            f"{stats['rps']:6.1f} req/s  statuses {stats['statuses']}",
            flush=True,
        )
        print(
            f"      CPU per request: server {stats['server_ms']:.1f} ms, PostgreSQL "
            f"{stats['db_ms']:.1f} ms, load client {client_ms:.1f} ms; load avg {before} -> "
            f"{stats['load_after']}",
            flush=True,
        )
    return results


# --- the baseline commit --------------------------------------------------------------------

#: Runs in the baseline worktree (its own code on its own database): seeds with that
#: commit's `bench/api.py` loader when asked, then prints fresh keys as JSON.
_BASELINE_SETUP = """
import argparse, json, sys
import django
django.setup()
from bench import api
args = argparse.Namespace(**json.loads(sys.argv[1]))
if args.fresh:
    api._load(args)
print(json.dumps(api._keys(args)))
"""


def _worktree(commit: str) -> Path:
    """A detached git worktree of `commit` under /tmp (created once, then reused)."""
    path = Path(tempfile.gettempdir()) / f"flowbill-{commit}"
    if not (path / "manage.py").exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
            check=True,
        )
    return path


def _baseline(args, *, base_url: str, media_root: str) -> dict[str, list[dict]]:
    """The invoice list (and `me`, the floor) against `--baseline`'s code: its worktree, its
    migrations and loader
    on database `<db>_<commit>` (only the keyed customers' sub-accounts: the list reads
    invoices, not usage days), its server; measured by the same load process."""
    commit = args.baseline
    tree = _worktree(commit)
    name = f"{args.db}_{commit}"
    fresh = not (args.reuse and _database_exists(f"{base_url}/postgres", name))
    if fresh:
        print(f"(re)creating database {name} for {commit}", flush=True)
        _recreate_database(f"{base_url}/postgres", name)
    env = _server_env(f"{base_url}/{name}", media_root)
    env["PYTHONPATH"] = str(tree)
    options = {
        "fresh": fresh,
        "sub_accounts": args.keyed * args.per_customer,
        "per_customer": args.per_customer,
        "days": args.days,
        "keyed": args.keyed,
    }
    setup = subprocess.run(
        [sys.executable, "-c", _BASELINE_SETUP, json.dumps(options)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if setup.returncode != 0:
        raise SystemExit(f"baseline setup failed:\n{setup.stdout[-2000:]}\n{setup.stderr[-3000:]}")
    keys = json.loads(setup.stdout.strip().splitlines()[-1])
    server, base = _start_server(env, args.workers, args.threads, cwd=tree)
    try:
        print(f"baseline {commit}: gunicorn -w {args.workers} at {base} ({tree})", flush=True)
        return {
            target: _measure(
                target,
                base=base,
                keys=keys,
                server_pid=server.pid,
                db=(f"{base_url}/postgres", name),
                args=args,
            )
            for target in ("invoices", "me")
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        _load_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sub-accounts", type=int, default=10_000)
    parser.add_argument("--per-customer", type=int, default=5, help="sub-accounts per customer")
    parser.add_argument("--days", type=int, default=90, help="usage days per sub-account")
    parser.add_argument("--keyed", type=int, default=200, help="customers with keys, invoices")
    parser.add_argument("--clients", default="1,8", help="concurrent clients, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    parser.add_argument(
        "--targets",
        default="reseller-usage-month,invoices",
        help=f"of {', '.join(TARGETS)}",
    )
    parser.add_argument("--db", default="flowbill_bench_api", help="database to (re)create")
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    parser.add_argument(
        "--baseline",
        default=BASELINE_COMMIT,
        help="commit whose invoice list CPU the `invoices` target is compared with ('' skips)",
    )
    args = parser.parse_args()
    targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    unknown = [name for name in targets if name not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {list(TARGETS)}")

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not url.startswith(("postgres://", "postgresql://")):
        parser.error("DATABASE_URL must point at PostgreSQL (the database is created next to it)")
    base_url, _, _ = url.rpartition("/")
    db_url = f"{base_url}/{args.db}"
    media_root = tempfile.mkdtemp(prefix="flowbill-bench-api-")
    env = _server_env(db_url, media_root)
    os.environ.update(env)

    fresh = not (args.reuse and _database_exists(f"{base_url}/postgres", args.db))
    if fresh:
        print(f"(re)creating database {args.db}", flush=True)
        _recreate_database(f"{base_url}/postgres", args.db)
    import django

    django.setup()
    if fresh:
        t0 = time.perf_counter()
        _load(args)
        print(f"load took {time.perf_counter() - t0:.0f}s", flush=True)
    else:
        print(f"reusing database {args.db}", flush=True)
    keys = _keys(args)
    from django.db import connections

    from usage.models import UsageDay

    rows = UsageDay.objects.count()
    connections.close_all()

    server, base = _start_server(env, args.workers, args.threads)
    results: dict[str, list[dict]] = {}
    try:
        print(
            f"server: gunicorn -w {args.workers}"
            + (f" --threads {args.threads}" if args.threads > 1 else "")
            + f" at {base}; {rows:,} usage days; {len(keys['customer'])} customer keys",
            flush=True,
        )
        for name in targets:
            results[name] = _measure(
                name,
                base=base,
                keys=keys,
                server_pid=server.pid,
                db=(f"{base_url}/postgres", args.db),
                args=args,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    if args.baseline and results.get("invoices"):
        then = _baseline(args, base_url=base_url, media_root=media_root)
        print(f"invoice list, server CPU per request: this tree vs {args.baseline}")
        for now, old in zip(results["invoices"], then["invoices"], strict=False):
            print(
                f"  {now['clients']:>2} clients: {now['server_ms']:.2f} ms vs "
                f"{old['server_ms']:.2f} ms = {now['server_ms'] / old['server_ms']:.2f} "
                f"(target <= 0.50); p50 {now['p50']:.1f} vs {old['p50']:.1f} ms"
            )
        floors = zip(results.get("me", []), then["me"], strict=False)
        for (now, old), (floor_now, floor_then) in zip(
            zip(results["invoices"], then["invoices"], strict=False), floors, strict=False
        ):
            above_now = now["server_ms"] - floor_now["server_ms"]
            above_then = old["server_ms"] - floor_then["server_ms"]
            print(
                f"  {now['clients']:>2} clients, above the `me` floor ({floor_now['server_ms']:.2f}"
                f" vs {floor_then['server_ms']:.2f} ms): {above_now:.2f} vs {above_then:.2f} ms"
            )
    print(f"cpus: {os.cpu_count()}; target p95 < 50 ms (reseller-usage-month, 8 clients)")


if __name__ == "__main__":
    main()
