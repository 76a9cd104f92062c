"""Benchmark: create, finalize and render N invoices (PDF included); prints invoices/second.

    .venv/bin/python bench/invoices.py                 # 1,000 customers x 10 sub-accounts
    .venv/bin/python bench/invoices.py --customers 10000

Runs on a throwaway database: a temporary SQLite file by default, or, when DATABASE_URL
points at PostgreSQL, a temporary database created next to it and dropped afterwards. PDFs go
to a temporary MEDIA_ROOT. Never touches var/flowbill.sqlite3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GIB = 1_073_741_824


def _setup_environment(tmp: Path) -> str | None:
    """Point Django at a temporary database and media root; returns a PG db to drop."""
    os.environ["FLOWBILL_VAR_DIR"] = str(tmp)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ["CELERY_BROKER_URL"] = ""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        name = f"flowbill_bench_{os.getpid()}"
        base, _, _ = url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = f"{base}/{name}"
        return name
    os.environ.pop("DATABASE_URL", None)  # the SQLite file under the temporary var dir
    return None


def _drop_pg(name: str, url: str) -> None:
    import psycopg

    base, _, _ = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def temporary_database(*, keep: bool = False) -> Iterator[None]:
    """Django pointed at a temporary SQLite file (or PostgreSQL database next to
    DATABASE_URL) and media root, removed afterwards unless `keep`."""
    tmp = Path(tempfile.mkdtemp(prefix="flowbill-bench-"))
    original_url = os.environ.get("DATABASE_URL", "")
    pg_name = _setup_environment(tmp)
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        if pg_name and not keep:
            _drop_pg(pg_name, original_url)
        if keep:
            print(f"kept {tmp}" + (f" and database {pg_name}" if pg_name else ""))
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def add_seed_arguments(parser: argparse.ArgumentParser, *, customers: int) -> None:
    """The size of the world `_seed` creates."""
    parser.add_argument("--customers", type=int, default=customers)
    parser.add_argument("--sub-accounts", type=int, default=10)
    parser.add_argument("--days", type=int, default=30, help="usage days per sub-account")


def _seed(customers: int, sub_accounts: int, days: int, period_start: dt.date) -> None:
    from accounts.models import Customer, Provider, Reseller, SubAccount, UpstreamAccount
    from billing.models import Subscription
    from billing.plans import plan_create
    from usage.models import UsageDay

    reseller = Reseller.objects.create(
        name="Bench Reseller Ltd",
        slug="bench",
        address="1 Bench Street\nShanghai",
        timezone="Asia/Shanghai",
        invoice_prefix="BENCH",
        sender_email="billing@bench.example",
        payment_instructions="Bank transfer, reference: invoice number.",
    )
    plan = plan_create(
        reseller=reseller,
        code="std",
        name="Standard",
        pricing_model="graduated",
        base_fee=Decimal("20"),
        minimum_charge=Decimal("50"),
        tiers=[(Decimal("10"), Decimal("0")), (Decimal("500"), Decimal("3")), (None, Decimal("2"))],
    )
    upstream = UpstreamAccount.objects.create(
        reseller=reseller, provider=Provider.IPFOXY, name="IPFoxy"
    )
    batch = 500
    for offset in range(0, customers, batch):
        rows = Customer.objects.bulk_create(
            Customer(
                reseller=reseller,
                name=_customer_name(n),
                email=f"c{n}@bench.example",
                currency="USD",
                tax_rate=Decimal("6"),
                address_line1=f"{n} Road",
                city="Berlin",
                country="DE",
            )
            for n in range(offset, min(offset + batch, customers))
        )
        Subscription.objects.bulk_create(
            Subscription(customer=c, plan=plan, starts_on=dt.date(2020, 1, 1)) for c in rows
        )
        subs = SubAccount.objects.bulk_create(
            SubAccount(
                customer=c,
                upstream_account=upstream,
                upstream_id=f"S{c.pk:06d}-{i:02d}",
                label=f"sub {c.pk}-{i}",
            )
            for c in rows
            for i in range(sub_accounts)
        )
        UsageDay.objects.bulk_create(
            (
                UsageDay(
                    sub_account=sa,
                    day=period_start + dt.timedelta(days=d),
                    bytes=(sa.pk % 7 + 1) * GIB // 3 + d,
                )
                for sa in subs
                for d in range(days)
            ),
            batch_size=5000,
        )


# Names as resellers' customers write them: a third Chinese or Japanese (each its own glyphs,
# so each PDF embeds its own CJK font subset), a third accented Latin, a third plain ASCII.
_HAN = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "科技网络数据信息云智能电子贸易实业发展有限公司集团上海北京深圳广州杭州成都东京大阪株式会社"
)
_ACCENTED = ("Müller", "Søren", "Łukasz", "José", "Zoë", "Ångström", "Dvořák", "Çelik", "Öztürk")


def _customer_name(n: int) -> str:
    rng = random.Random(n)
    if n % 3 == 0:
        return "".join(rng.choice(_HAN) for _ in range(rng.randint(4, 10)))
    if n % 3 == 1:
        return f"{rng.choice(_ACCENTED)} & {rng.choice(_ACCENTED)} {n:05d} GmbH"
    return f"Customer {n:05d} Ltd"


def _async_commit(sender, connection, **kwargs) -> None:
    """Commits that do not wait for fsync: SQLite in WAL mode with synchronous=NORMAL,
    PostgreSQL with synchronous_commit=off. Both stay consistent after a crash (the last
    few commits may be lost, never half-applied); `--durable` measures with a full fsync."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        elif connection.vendor == "postgresql":
            cursor.execute("SET synchronous_commit TO off")


def _work(
    customer_ids: list[int],
    period_start: dt.date,
    now: dt.datetime,
    profile: str | None,
    two_step: bool,
    pdf_processes: int = 0,
) -> tuple[float, float]:
    """One worker: invoice its share of the customers (number, freeze, PDF): in one step
    (`invoices_issue_for_period`, closing a month at once, as `generate_invoices --finalize`
    does) or as the hourly cycle does, a draft first and its finalization later
    (`--two-step`, rated twice)."""
    from django.db import connections

    from accounts.models import Customer
    from billing.invoicing.cycle import invoices_generate_for_period
    from billing.invoicing.finalizing import invoices_finalize
    from billing.invoicing.issuing import invoices_issue_for_period
    from billing.models import Invoice

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    customers = list(
        Customer.objects.filter(pk__in=customer_ids).select_related("reseller").order_by("pk")
    )
    if not two_step:
        invoices_issue_for_period(
            reseller=customers[0].reseller,
            period_start=period_start,
            now=now,
            customers=customers,
            send_email=False,
            pdf_processes=pdf_processes,
        )
        t1 = t2 = time.perf_counter()
    else:
        # The hourly cycle's two passes, for this worker's share of the customers.
        generated = invoices_generate_for_period(
            reseller=customers[0].reseller,
            period_start=period_start,
            now=now,
            customers=customers,
        )
        t1 = time.perf_counter()
        drafts = list(Invoice.objects.filter(pk__in=generated.created).order_by("customer_id"))
        invoices_finalize(invoices=drafts, now=now, send_email=False, pdf_processes=pdf_processes)
        t2 = time.perf_counter()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    connections.close_all()
    return t1 - t0, t2 - t1


def _load() -> str:
    """The machine's load average: figures from a shared machine mean little without it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_seed_arguments(parser, customers=1000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--two-step",
        action="store_true",
        help="draft every invoice, then finalize the drafts (the hourly cycle's and "
        "finalize_due_invoices' path: rated twice)",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the timed part (1 worker)")
    parser.add_argument(
        "--workers",
        type=int,
        help="processes, like Celery workers (default: 2 on PostgreSQL, 1 on SQLite, whose "
        "single writer makes a second process wait on its lock)",
    )
    parser.add_argument(
        "--pdf-processes",
        type=int,
        help="processes rendering PDFs beside each worker (default: the CPUs with one worker, "
        "else 0)",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="wait for fsync on every commit (SQLite rollback journal, PG synchronous_commit)",
    )
    args = parser.parse_args()

    with temporary_database(keep=args.keep):
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections
        from django.db.backends.signals import connection_created

        if not args.durable:
            connection_created.connect(_async_commit)
        call_command("migrate", verbosity=0)
        from accounts.models import Customer, Reseller
        from billing.models import Invoice

        period_start = dt.date(2026, 10, 1)
        now = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)
        t0 = time.perf_counter()
        _seed(args.customers, args.sub_accounts, args.days, period_start)
        if django.db.connection.vendor == "postgresql":
            with django.db.connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # fresh statistics, as autovacuum keeps them live
        seeded = time.perf_counter() - t0
        print(
            f"seeded {args.customers:,} customers x {args.sub_accounts} sub-accounts x "
            f"{args.days} usage days in {seeded:.1f}s "
            f"({django.db.connection.vendor}, {'durable' if args.durable else 'async'} commits)"
        )
        reseller = Reseller.objects.get(slug="bench")

        ids = list(Customer.objects.filter(reseller=reseller).values_list("pk", flat=True))
        connections.close_all()
        workers = args.workers or (2 if django.db.connection.vendor == "postgresql" else 1)
        from billing.invoicing.pdf_pool import default_pdf_processes

        pdf_processes = args.pdf_processes
        if pdf_processes is None:
            # Pool workers are daemonic processes, which cannot start processes of their own.
            pdf_processes = default_pdf_processes() if workers == 1 else 0
        shares = [ids[i::workers] for i in range(workers)]
        print(f"{workers} worker(s), {pdf_processes} PDF process(es) each; {_load()}")
        t1 = time.perf_counter()
        cpu0 = time.process_time()
        if workers == 1:
            drafts_s, final_s = _work(
                shares[0], period_start, now, args.profile, args.two_step, pdf_processes
            )
        else:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(workers) as pool:
                timings = pool.starmap(
                    _work, [(share, period_start, now, None, args.two_step) for share in shares]
                )
            drafts_s = max(t[0] for t in timings)
            final_s = max(t[1] for t in timings)
        t3 = time.perf_counter()
        cpu = time.process_time() - cpu0
        n = len(ids)
        issued = Invoice.objects.exclude(pdf="").filter(status="finalized").count()
        assert issued == n, f"{issued} of {n} invoices finalized with a PDF"
        total = t3 - t1
        if args.two_step:
            print(f"drafts:   {n:,} in {drafts_s:.1f}s (slowest of {workers} worker(s))")
            print(f"finalize: {n:,} in {final_s:.1f}s (PDF included, slowest worker)")
        else:
            print(
                f"issue:    {n:,} in {drafts_s:.1f}s (rated once, PDF included, "
                f"{workers} worker(s))"
            )
        print(f"TOTAL:    {n:,} invoices in {total:.1f}s = {n / total:.1f} invoices/s")
        if workers == 1:
            # CPU time does not depend on what else the machine runs (wall time does).
            what = "issuing only, PDFs elsewhere" if pdf_processes else "all the work"
            print(f"CPU:      {1000 * cpu / n:.2f} ms per invoice in this process ({what})")
        print(f"after: {_load()}")


if __name__ == "__main__":
    main()
