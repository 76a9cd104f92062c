"""Sync on request (the API's `POST /api/v1/reseller/sync/`): queue one task per sub-account.

What is queued is what the hourly beat jobs queue, without their spreading over the hour:
IPFoxy sub-accounts re-sync the trailing 72 hours up to the current hour
(`usage_sync_sub_account_task`), BytesFlows sub-accounts take a ledger snapshot
(`usage_snapshot_bytesflows_task`). Only active sub-accounts of active upstream accounts.
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
from config.errors import ApplicationError, NotFoundError
from usage.models import SyncRun
from usage.services.runs import sync_run_failed_notify
from usage.services.storage import floor_hour

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


def usage_sync_request(
    *, reseller: Reseller, upstream_account: UpstreamAccount | None, now: dt.datetime
) -> SyncRequest:
    """Queue a sync of every active sub-account (and closed one until its last day ends:
    `sub_accounts_syncable`) of one upstream account of `reseller`, or of all its active
    upstream accounts (`upstream_account=None`).

    Creates one queued `SyncRun` per sub-account and queues its task when that commits.
    Raises `upstream_account_inactive` for an explicitly named inactive upstream account,
    and `not_found` for one of another reseller.
    """
    from usage.tasks import TRAILING_HOURS  # the tasks import the services: not at the top

    if now.tzinfo is None:
        raise ApplicationError("naive_datetime", "`now` must be an aware datetime.")
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

    window_end = floor_hour(now) + dt.timedelta(hours=1)
    window_start = window_end - dt.timedelta(hours=TRAILING_HOURS + 1)
    subs = (
        sub_accounts_syncable(
            SubAccount.objects.for_reseller(reseller).filter(upstream_account_id__in=upstream_ids),
            start=window_start,
        )
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
        )
        if provider == Provider.BYTESFLOWS:
            run.kind = SyncRun.Kind.SNAPSHOT  # its time is when the task takes it: no window yet
        else:
            run.kind = SyncRun.Kind.USAGE
            run.window_start, run.window_end = window_start, window_end
        rows.append(run)
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
    return SyncRequest(
        accepted_at=now,
        window_start=window_start,
        window_end=window_end,
        upstream_account_ids=upstream_ids,
        queued=queued,
    )


def _send(run: SyncRun, *, task_id: str | None = None) -> None:
    """Send the task that fills the queued `run` (its window is the run's own)."""
    from usage import tasks  # the tasks import the services: not at the top

    if run.kind == SyncRun.Kind.SNAPSHOT:
        task, args = tasks.usage_snapshot_bytesflows_task, [run.sub_account_id]
    else:
        task = tasks.usage_sync_sub_account_task
        args = [run.sub_account_id, run.window_start.isoformat(), run.window_end.isoformat()]
    task.apply_async(args=args, kwargs={"sync_run_id": run.pk}, task_id=task_id)


def sync_runs_publish(*, messages: list[tuple[SyncRun, str | None]]) -> None:
    """Send each queued run's task, in order. When one cannot be sent (the broker is down),
    delete the runs from that one on that are still `queued` (none of them has a message)
    and re-raise: nothing is left waiting for a task that was never sent."""
    for index, (run, task_id) in enumerate(messages):
        try:
            _send(run, task_id=task_id)
        except Exception:
            unsent = [pending.pk for pending, _ in messages[index:]]
            SyncRun.objects.filter(pk__in=unsent, status=SyncRun.Status.QUEUED).delete()
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
