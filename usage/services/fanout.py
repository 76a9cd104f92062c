"""Syncing many sub-accounts at once: a thread pool with one httpx client per thread.

Why threads and one client each: the work is waiting on the upstream (50 ms+ a request)
plus short database writes; threads overlap the waits, and a client per thread avoids the
stalls of one big shared connection pool (httpx issue 3215). Each thread keeps its own
database connection and closes it when the pool drains. Figures: `bench/sync.py`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import connection

from accounts.models import SubAccount, UpstreamAccount
from accounts.selectors import sub_accounts_syncable
from usage.models import SyncRun
from usage.services.connectors import connector_for_upstream_account
from usage.services.followups import usage_followups_batched
from usage.services.history import usage_sync_sub_account
from usage.services.ledger import usage_snapshot_bytesflows
from usage.services.requests import sync_kind

ConnectorFactory = Callable[[UpstreamAccount], object]


@dataclass
class SyncSummary:
    """Totals of a batch of syncs, for the command's summary and the benchmark."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    rows_written: int = 0
    requests: int = 0
    pages: int = 0
    failures: list[tuple[int, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, run: SyncRun) -> None:
        with self._lock:
            if run.status == SyncRun.Status.SUCCEEDED:
                self.ok += 1
            elif run.status == SyncRun.Status.SKIPPED:
                self.skipped += 1
            else:
                self.failed += 1
                self.failures.append((run.sub_account_id or 0, run.error_code, run.error))
            self.rows_written += run.rows_written
            self.requests += run.requests
            self.pages += run.pages


def sync_one(
    *,
    sub_account: SubAccount,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    connector=None,
    wait_seconds: float = 0.0,
) -> SyncRun:
    """History providers sync the window; ledger providers take a snapshot at `now`
    (`sync_kind`, as sync requests and the beat decide)."""
    if sync_kind(sub_account.upstream_account.provider) == SyncRun.Kind.SNAPSHOT:
        return usage_snapshot_bytesflows(
            sub_account=sub_account, now=now, connector=connector, wait_seconds=wait_seconds
        )
    return usage_sync_sub_account(
        sub_account=sub_account,
        start=start,
        end=end,
        now=now,
        connector=connector,
        wait_seconds=wait_seconds,
    )


@usage_followups_batched()  # one draft refresh and alert check per customer, at the end
def usage_sync_sub_accounts(
    *,
    sub_accounts: Sequence[SubAccount],
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    workers: int = 1,
    wait_seconds: float = 0.0,
    connector_factory: ConnectorFactory | None = None,
    on_done: Callable[[SyncRun], None] | None = None,
) -> SyncSummary:
    """Sync every given sub-account (window for IPFoxy, a snapshot for BytesFlows).

    With `workers > 1` the syncs run in that many threads, each with its own connectors
    (and so its own httpx client) and database connection. Every upstream request still
    takes a token from the upstream account's shared budget.
    """
    summary = SyncSummary()
    factory = connector_factory or (
        lambda upstream: connector_for_upstream_account(upstream_account=upstream)
    )

    def run_one(sub_account: SubAccount, connectors: dict[int, object]) -> None:
        upstream = sub_account.upstream_account
        if upstream.pk not in connectors:
            connectors[upstream.pk] = factory(upstream)
        run = sync_one(
            sub_account=sub_account,
            start=start,
            end=end,
            now=now,
            connector=connectors[upstream.pk],
            wait_seconds=wait_seconds,
        )
        summary.add(run)
        if on_done:
            on_done(run)

    if workers <= 1:
        connectors: dict[int, object] = {}
        for sub_account in sub_accounts:
            run_one(sub_account, connectors)
        return summary

    work: queue.SimpleQueue = queue.SimpleQueue()
    for sub_account in sub_accounts:
        work.put(sub_account)
    errors: list[BaseException] = []

    def worker() -> None:
        own: dict[int, object] = {}
        try:
            while True:
                try:
                    sub_account = work.get_nowait()
                except queue.Empty:
                    return
                run_one(sub_account, own)
        except BaseException as exc:  # surfaced after the pool drains
            errors.append(exc)
        finally:
            connection.close()

    # Each thread runs in a copy of this context: their syncs note into the same batch.
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(worker,), daemon=True)
        for _ in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return summary


def syncable_sub_accounts(*, upstream_account: UpstreamAccount, start: dt.datetime):
    """The sub-accounts of `upstream_account` whose usage from `start` on is synced: active
    ones, and closed ones until their last day ends (`sub_accounts_syncable`)."""
    return (
        sub_accounts_syncable(
            SubAccount.objects.filter(upstream_account=upstream_account), start=start
        )
        .select_related("upstream_account__reseller")
        .order_by("pk")
    )


def usage_sync_upstream_account(
    *,
    upstream_account: UpstreamAccount,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    workers: int = 1,
    wait_seconds: float = 0.0,
    connector_factory: ConnectorFactory | None = None,
) -> SyncSummary:
    """Sync every synced sub-account of one upstream account (`syncable_sub_accounts`; see
    `usage_sync_sub_accounts`)."""
    return usage_sync_sub_accounts(
        sub_accounts=list(syncable_sub_accounts(upstream_account=upstream_account, start=start)),
        start=start,
        end=end,
        now=now,
        workers=workers,
        wait_seconds=wait_seconds,
        connector_factory=connector_factory,
    )
