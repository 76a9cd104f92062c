"""`manage.py sync_usage`: backfill or catch up usage, with a progress bar and a summary.

    manage.py sync_usage [--upstream-account ID] [--sub-account ID]
                         [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--workers N]

Dates are calendar days in each sub-account's reseller timezone, both inclusive: the window
is `[since 00:00, until + 1 day 00:00)` local, cut at the current hour. Defaults: the last
3 days up to today. IPFoxy looks back at most 90 days; older days are clamped (the run
says so). BytesFlows has no history: its sub-accounts get one ledger snapshot now.
A sub-account already syncing is waited for (up to 5 minutes), not skipped. A closed
sub-account is synced up to the end of its last day, never after.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from accounts.models import SubAccount
from accounts.selectors import sub_account_synced_until, sub_accounts_syncable
from usage.services import SyncSummary, usage_sync_sub_accounts

DEFAULT_DAYS = 3


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--{name} must be a date like 2026-03-01, not {value!r}") from None


def _closed_before(sub: SubAccount, start: dt.datetime) -> bool:
    """Closed, and its last day ended by `start`: nothing of the window is its usage."""
    until = sub_account_synced_until(sub_account=sub)
    return until is not None and until <= start


class Command(BaseCommand):
    help = "Sync usage from the upstreams for a date range (backfill and catch-up)."

    def add_arguments(self, parser):
        parser.add_argument("--upstream-account", type=int, help="Only this upstream account")
        parser.add_argument("--sub-account", type=int, help="Only this sub-account")
        parser.add_argument("--since", help="First day (YYYY-MM-DD, reseller timezone)")
        parser.add_argument("--until", help="Last day, inclusive (default: today)")
        parser.add_argument("--workers", type=int, default=4, help="Parallel syncs (default 4)")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar")
        parser.add_argument(
            "--now", help="Pretend the current time is this ISO datetime (tests, replays)"
        )

    def handle(self, *args, **options):
        now = timezone.now()
        if options["now"]:
            try:
                now = dt.datetime.fromisoformat(options["now"])
            except ValueError:
                raise CommandError("--now must be an ISO datetime with an offset") from None
            if now.tzinfo is None:
                raise CommandError("--now must be an ISO datetime with an offset")
        since = _date(options["since"], "since") if options["since"] else None
        until = _date(options["until"], "until") if options["until"] else None
        if since and until and until < since:
            raise CommandError("--until must not be before --since")
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1")

        subs = SubAccount.objects.select_related("upstream_account__reseller").filter(
            upstream_account__is_active=True
        )
        if options["sub_account"]:
            subs = subs.filter(pk=options["sub_account"])
            if not subs.exists():
                raise CommandError(f"No sub-account with id {options['sub_account']}")
        else:  # active ones, and closed ones up to their last day (to the day: see below)
            first_day = since or ((until or now.date()) - dt.timedelta(days=DEFAULT_DAYS))
            loose = dt.datetime.combine(first_day - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
            subs = sub_accounts_syncable(subs, start=loose)
        if options["upstream_account"]:
            subs = subs.filter(upstream_account_id=options["upstream_account"])
            if not subs.exists():
                raise CommandError(
                    f"No active sub-account on upstream account {options['upstream_account']}"
                )
        # The window depends on the reseller's timezone: group sub-accounts by it.
        groups: dict[str, list[SubAccount]] = {}
        for sub in subs.order_by("pk"):
            groups.setdefault(sub.upstream_account.reseller.timezone, []).append(sub)

        total = SyncSummary()
        count = sum(len(group) for group in groups.values())
        bar = tqdm(total=count, unit="sub", disable=options["no_progress"], file=self.stderr)
        for tz_name, group in groups.items():
            tz = group[0].upstream_account.reseller.tzinfo
            today = now.astimezone(tz).date()
            last = until or today
            first = since or (last - dt.timedelta(days=DEFAULT_DAYS - 1))
            start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
            end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=tz)
            if start >= now:
                raise CommandError(f"--since is in the future in {tz_name}")
            ended = [sub for sub in group if _closed_before(sub, start)]
            for sub in ended:
                self.stderr.write(
                    f"sub-account {sub.pk}: closed, its last day {sub.active_to} is before "
                    f"{first}; not synced"
                )
                bar.update(1)
            group = [sub for sub in group if sub not in ended]
            if not group:
                continue
            summary = usage_sync_sub_accounts(
                sub_accounts=group,
                start=start,
                end=min(end, now),
                now=now,
                workers=min(options["workers"], len(group)),
                wait_seconds=300.0,
                on_done=lambda run: bar.update(1),
            )
            for name in ("ok", "failed", "skipped", "rows_written", "requests", "pages"):
                setattr(total, name, getattr(total, name) + getattr(summary, name))
            total.failures.extend(summary.failures)
        bar.close()

        for sub_id, code, message in total.failures:
            self.stderr.write(f"sub-account {sub_id}: {code}: {message}")
        self.stdout.write(
            f"Sub-accounts: {total.ok} ok, {total.failed} failed, {total.skipped} skipped; "
            f"rows written: {total.rows_written}; requests: {total.requests}"
        )
