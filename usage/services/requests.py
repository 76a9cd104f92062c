"""Sync now: the one path for the API's `POST /api/v1/reseller/sync/` and the admin's "Sync
now" buttons (an upstream account, one sub-account): queue one task per sub-account.

What is queued is what the hourly beat jobs queue, without their spreading over the hour,
and through the same two functions: `sync_window` (IPFoxy sub-accounts re-sync the trailing
72 hours up to the current hour, `usage_sync_sub_account_task`) and `sync_task_send`
(BytesFlows sub-accounts take a ledger snapshot, `usage_snapshot_bytesflows_task`). Only
active sub-accounts of active upstream accounts.
Every request still takes a token from its upstream account's shared request budget, so a
burst is paced there (a task short of tokens fails as retryable and retries with backoff).

One `SyncRun` per queued sync is created here, `queued`, in one transaction; once that
commits, one callback sends every run's task with its run's id, and the task fills that
row (running, then succeeded, failed or skipped) instead of inserting its own. So the
caller gets the run ids at once. Task ids are chosen here too. With no broker the tasks
run in-process at the commit, before this returns.

Every queued run has exactly one message, so every run is filled by its task once:
- **Publishing fails** (the broker is down): the runs whose message was not sent are
  deleted (those still `queued`) and the broker's error goes on to the caller, a 503. The
  runs sent before the failure stay and run. A run is never left behind without a message,
  and a message never names a deleted run (unless the broker raised for a message it had in
  fact taken: its task then finds no run and fails loudly).
- **A message is lost after it was sent** (a broker without persistence restarted, a
  worker killed with its prefetched messages): `sync_runs_queued_sweep`, every 5 minutes,
  sends the task again for each run still `queued` after `QUEUED_REQUEUE_AFTER`, and closes
  as `failed` (`sync_not_started`, with the `sync.failed` event) a run still `queued` after
  `QUEUED_GIVE_UP_AFTER` (about five sends unanswered). A second message for a run whose
  first is merely late is harmless: the first delivery to take the run fills it, the other
  finds it done (or running) and does nothing more (see `usage.services.runs.run_claim`).
  A run closed as failed whose message still comes fills it after all.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db import transaction

from accounts.models import Provider, Reseller, SubAccount, UpstreamAccount
from accounts.selectors import sub_accounts_syncable
from core.enqueue import task_named
from core.errors import ApplicationError, NotFoundError
from usage.models import SyncRun
from usage.services.runs import sync_run_failed_notify
from usage.services.storage import floor_hour

#: Every sync re-reads the hours up to the current one this far back (late and corrected
#: buckets): the request's window, the hourly beat's, the admin's.
TRAILING_HOURS = 72
#: A run still `queued` this long after its request gets its task again, from every sweep.
QUEUED_REQUEUE_AFTER = dt.timedelta(minutes=5)
#: A run still `queued` this long is closed as failed: its task was sent about five times.
QUEUED_GIVE_UP_AFTER = dt.timedelta(minutes=30)
NOT_STARTED_CODE = "sync_not_started"


@dataclass(frozen=True)
class QueuedSync:
    task_id: str
    sync_run_id: int
    kind: str  # SyncRun.Kind.USAGE (history window) or SyncRun.Kind.SNAPSHOT (ledger)
    upstream_account_id: int
    sub_account_id: int


@dataclass(frozen=True)
class SyncRequest:
    accepted_at: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime
    upstream_account_ids: list[int]
    queued: list[QueuedSync]


def sync_window(*, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The window `[start, end)` a usage sync at `now` covers: the current hour and the
    `TRAILING_HOURS` before it."""
    end = floor_hour(now) + dt.timedelta(hours=1)
    return end - dt.timedelta(hours=TRAILING_HOURS + 1), end


def sync_task_send(
    *,
    sub_account_id: int,
    kind: str,
    window: tuple[dt.datetime, dt.datetime] | None = None,
    sync_run_id: int | None = None,
    task_id: str | None = None,
    countdown: int | None = None,
) -> None:
    """Send the task that syncs one sub-account: a usage sync of `window` (`SyncRun.Kind.USAGE`,
    IPFoxy) or a ledger snapshot (`SNAPSHOT`, BytesFlows), filling the queued `sync_run_id`
    when given. Sync now and the hourly beat both send through here."""
    if kind == SyncRun.Kind.SNAPSHOT:
        name, args = "usage_snapshot_bytesflows_task", [sub_account_id]
    else:
        start, end = window
        name = "usage_sync_sub_account_task"
        args = [sub_account_id, start.isoformat(), end.isoformat()]
    task = task_named(f"usage.tasks.{name}")
    options: dict = {}
    if sync_run_id is not None:
        options["kwargs"] = {"sync_run_id": sync_run_id}
    if task_id is not None:
        options["task_id"] = task_id
    if countdown is not None:
        options["countdown"] = countdown
    task.apply_async(args=args, **options)


def sync_kind(provider: str) -> str:
    """What syncing a sub-account of `provider` means: a ledger snapshot (BytesFlows) or a
    usage history window (IPFoxy)."""
    return SyncRun.Kind.SNAPSHOT if provider == Provider.BYTESFLOWS else SyncRun.Kind.USAGE


def usage_sync_request(
    *,
    reseller: Reseller,
    upstream_account: UpstreamAccount | None,
    now: dt.datetime,
    sub_account: SubAccount | None = None,
    discover: bool = False,
) -> SyncRequest:
    """Queue a sync of every active sub-account (and closed one until its last day ends:
    `sub_accounts_syncable`) of one upstream account of `reseller`, or of all its active
    upstream accounts (`upstream_account=None`), or of just `sub_account` (of
    `upstream_account`). With `discover`, the IPFoxy upstream accounts' sub-account lists
    are refreshed too (the admin's button), after the syncs are sent.

    Creates one queued `SyncRun` per sub-account and queues its task when that commits.
    Raises `upstream_account_inactive` for an explicitly named inactive upstream account,
    and `not_found` for one (or a sub-account) of another reseller.
    """
    if now.tzinfo is None:
        raise ApplicationError("naive_datetime", "`now` must be an aware datetime.")
    named = getattr(upstream_account, "pk", None)
    if sub_account is not None and sub_account.upstream_account_id != named:
        raise NotFoundError()
    upstreams = UpstreamAccount.objects.for_reseller(reseller)
    if upstream_account is not None:
        if upstream_account.reseller_id != reseller.pk:
            raise NotFoundError()
        if not upstream_account.is_active:
            raise ApplicationError(
                "upstream_account_inactive",
                "This upstream account is inactive; activate it before syncing.",
            )
        upstreams = upstreams.filter(pk=upstream_account.pk)
    else:
        upstreams = upstreams.filter(is_active=True)
    upstream_ids = list(upstreams.order_by("pk").values_list("pk", flat=True))

    window_start, window_end = sync_window(now=now)
    scope = SubAccount.objects.for_reseller(reseller).filter(upstream_account_id__in=upstream_ids)
    if sub_account is not None:
        scope = scope.filter(pk=sub_account.pk)
    subs = (
        sub_accounts_syncable(scope, start=window_start)
        .order_by("upstream_account_id", "pk")
        .values_list("pk", "upstream_account_id", "upstream_account__provider")
    )
    rows = []
    for sub_id, upstream_id, provider in subs:
        run = SyncRun(
            upstream_account_id=upstream_id,
            sub_account_id=sub_id,
            status=SyncRun.Status.QUEUED,
            queued_at=now,
            kind=sync_kind(provider),
        )
        if run.kind == SyncRun.Kind.USAGE:  # a snapshot's time is when its task takes it
            run.window_start, run.window_end = window_start, window_end
        rows.append(run)
    discovered = (
        list(
            upstreams.filter(pk__in=upstream_ids, provider=Provider.IPFOXY)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if discover
        else []
    )
    with transaction.atomic():
        runs = SyncRun.objects.bulk_create(rows)
        queued = [
            QueuedSync(
                task_id=str(uuid.uuid4()),
                sync_run_id=run.pk,
                kind=run.kind,
                upstream_account_id=run.upstream_account_id,
                sub_account_id=run.sub_account_id,
            )
            for run in runs
        ]
        messages = [(run, item.task_id) for run, item in zip(runs, queued, strict=True)]
        transaction.on_commit(lambda: sync_runs_publish(messages=messages))
        if discovered:
            transaction.on_commit(lambda: _discovery_send(upstream_ids=discovered, now=now))
    return SyncRequest(
        accepted_at=now,
        window_start=window_start,
        window_end=window_end,
        upstream_account_ids=upstream_ids,
        queued=queued,
    )


def _send(run: SyncRun, *, task_id: str | None = None) -> None:
    """Send the task that fills the queued `run` (its window is the run's own)."""
    sync_task_send(
        sub_account_id=run.sub_account_id,
        kind=run.kind,
        window=(run.window_start, run.window_end),
        sync_run_id=run.pk,
        task_id=task_id,
    )


def _discovery_send(*, upstream_ids: list[int], now: dt.datetime) -> None:
    task = task_named("usage.tasks.usage_discover_sub_accounts_task")
    for upstream_id in upstream_ids:
        task.delay(upstream_id, now.isoformat())


def sync_runs_publish(*, messages: list[tuple[SyncRun, str | None]]) -> None:
    """Send each queued run's task, in order. When one cannot be sent (the broker is down),
    delete the runs from that one on that are still `queued` (none of them has a message)
    and re-raise: nothing is left waiting for a task that was never sent."""
    for index, (run, task_id) in enumerate(messages):
        try:
            _send(run, task_id=task_id)
        except Exception:
            unsent = SyncRun.objects.rows_of(pending for pending, _ in messages[index:])
            unsent.filter(status=SyncRun.Status.QUEUED).delete()
            raise


@dataclass(frozen=True)
class QueuedSweep:
    requeued: list[int]  # run ids whose task was sent again
    closed: list[int]  # run ids closed as failed (`sync_not_started`)


def sync_runs_queued_sweep(*, now: dt.datetime) -> QueuedSweep:
    """Runs of sync requests still `queued` (no task took them): send the task again for
    those queued more than `QUEUED_REQUEUE_AFTER` ago, close as failed those queued more than
    `QUEUED_GIVE_UP_AFTER` ago. Every reseller's (beat runs it every 5 minutes).

    Closing is conditional on the run still being `queued`, so a run a worker takes
    meanwhile is left to it. The closed runs emit `sync.failed`, as any failed run."""
    if now.tzinfo is None:
        raise ApplicationError("naive_datetime", "`now` must be an aware datetime.")
    queued = SyncRun.objects.filter(
        # By upstream account first: the (upstream_account, status, ...) index serves it.
        upstream_account__in=UpstreamAccount.objects.values("pk"),
        status=SyncRun.Status.QUEUED,
    )
    give_up = list(
        queued.filter(queued_at__lt=now - QUEUED_GIVE_UP_AFTER)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    closed: list[int] = []
    if give_up:
        with transaction.atomic():
            closing = list(
                SyncRun.objects.select_for_update(skip_locked=True)
                .filter(pk__in=give_up, status=SyncRun.Status.QUEUED)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            SyncRun.objects.filter(pk__in=closing).update(
                status=SyncRun.Status.FAILED,
                finished_at=now,
                error_code=NOT_STARTED_CODE,
                error="no worker started this sync within "
                f"{int(QUEUED_GIVE_UP_AFTER.total_seconds() // 60)} minutes of the request "
                "(its task was sent again every 5 minutes); request it again",
            )
        for run in SyncRun.objects.filter(pk__in=closing).select_related("upstream_account"):
            sync_run_failed_notify(run, reseller_id=run.upstream_account.reseller_id)
        closed = closing
    stale = list(
        queued.filter(queued_at__lt=now - QUEUED_REQUEUE_AFTER)
        .exclude(pk__in=closed)
        .order_by("pk")
    )
    for run in stale:
        _send(run)
    return QueuedSweep(requeued=[run.pk for run in stale], closed=closed)
