"""Benchmark: the hourly invoice cycle run again for the same hour, as after a worker kill.

    .venv/bin/python bench/cycle.py                  # 460 customers x 10 sub-accounts
    .venv/bin/python bench/cycle.py --customers 2000

A killed worker's cycle message is delivered again with the same `now`. The bench runs the
cycle of one reseller inside the grace period (drafts are created, none finalized), then
runs it again for the same hour (the redelivered message: work done by the first run is
skipped) and once more an hour later (the next hourly pass: every draft re-rated). Each run
prints its wall time and how many drafts it created or re-rated.

Runs on a throwaway database like bench/invoices.py (temporary SQLite, or a temporary
PostgreSQL database next to DATABASE_URL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.invoices import (  # noqa: E402
    _async_commit,
    _load,
    _seed,
    add_seed_arguments,
    temporary_database,
)


def _timed_cycle(reseller, now: dt.datetime) -> tuple[float, int, int]:
    from billing.invoicing.cycle import invoice_cycle_run

    t0 = time.perf_counter()
    result = invoice_cycle_run(reseller=reseller, now=now)
    elapsed = time.perf_counter() - t0
    assert not result.failed, result.failed
    rerated = len(result.generated.refreshed) + len(result.refreshed)
    return elapsed, len(result.generated.created), rerated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_seed_arguments(parser, customers=460)
    args = parser.parse_args()

    with temporary_database():
        import django

        django.setup()
        from django.core.management import call_command
        from django.db.backends.signals import connection_created

        connection_created.connect(_async_commit)
        call_command("migrate", verbosity=0)
        from accounts.models import Reseller
        from usage.models import UsageDay

        period_start = dt.date(2026, 10, 1)
        _seed(args.customers, args.sub_accounts, args.days, period_start)
        if django.db.connection.vendor == "postgresql":
            with django.db.connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        reseller = Reseller.objects.get(slug="bench")
        reseller.grace_period_days = 5  # every run below is inside the grace period
        reseller.save(update_fields=["grace_period_days"])
        now = dt.datetime(2026, 11, 1, 1, 17, tzinfo=dt.UTC)  # 09:17 in Shanghai
        # The usage was synced before the cycle ran (seeded rows carry today's date).
        UsageDay.objects.update(updated_at=now - dt.timedelta(hours=1))
        print(
            f"{args.customers:,} customers x {args.sub_accounts} sub-accounts x {args.days} "
            f"days ({django.db.connection.vendor}); {_load()}"
        )
        runs = [
            ("first run", now),
            ("same hour again (redelivered)", now),
            ("next hour", now + dt.timedelta(hours=1)),
        ]
        for label, at in runs:
            elapsed, created, rerated = _timed_cycle(reseller, at)
            print(f"{label:32s} {elapsed:6.2f} s  created {created:5,}  re-rated {rerated:5,}")


if __name__ == "__main__":
    main()
