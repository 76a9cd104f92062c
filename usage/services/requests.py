"""Sync on request (the API's `POST /api/v1/reseller/sync/`): queue one task per sub-account.

What is queued is what the hourly beat jobs queue, without their spreading over the hour:
IPFoxy sub-accounts re-sync the trailing 72 hours up to the current hour
(`usage_sync_sub_account_task`), BytesFlows sub-accounts take a ledger snapshot
(`usage_snapshot_bytesflows_task`). Only active sub-accounts of active upstream accounts.
Every request still takes a token from its upstream account's shared request budget, so a
burst is paced there (a task short of tokens fails as retryable and retries with backoff).

One `SyncRun` per queued sync is created here, `queued`, in one transaction; each task is
queued once that commits (`apply_async_on_commit`) with its run's id, and fills that row
(running, then succeeded, failed or skipped) instead of inserting its own. So the caller
gets the run ids at once, and a task that never ran leaves its run visibly queued. Task ids
are chosen here too. With no broker the tasks run in-process at the commit, before this
returns.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db import transaction

from accounts.models import Provider, Reseller, SubAccount, UpstreamAccount
from config.errors import ApplicationError, NotFoundError
from usage import tasks
from usage.models import SyncRun
from usage.services.storage import floor_hour


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
    """Queue a sync of every active sub-account of one upstream account of `reseller`, or of
    all its active upstream accounts (`upstream_account=None`).

    Creates one queued `SyncRun` per sub-account and queues its task when that commits.
    Raises `upstream_account_inactive` for an explicitly named inactive upstream account,
    and `not_found` for one of another reseller.
    """
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
    window_start = window_end - dt.timedelta(hours=tasks.TRAILING_HOURS + 1)
    subs = (
        SubAccount.objects.for_reseller(reseller)
        .filter(upstream_account_id__in=upstream_ids, status=SubAccount.Status.ACTIVE)
        .order_by("upstream_account_id", "pk")
        .values_list("pk", "upstream_account_id", "upstream_account__provider")
    )
    queued: list[QueuedSync] = []
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
        for run in runs:
            task_id = str(uuid.uuid4())
            if run.kind == SyncRun.Kind.SNAPSHOT:
                task, args = tasks.usage_snapshot_bytesflows_task, [run.sub_account_id]
            else:
                task = tasks.usage_sync_sub_account_task
                args = [run.sub_account_id, window_start.isoformat(), window_end.isoformat()]
            queued.append(
                QueuedSync(
                    task_id=task_id,
                    sync_run_id=run.pk,
                    kind=run.kind,
                    upstream_account_id=run.upstream_account_id,
                    sub_account_id=run.sub_account_id,
                )
            )
            task.apply_async_on_commit(args=args, kwargs={"sync_run_id": run.pk}, task_id=task_id)
    return SyncRequest(
        accepted_at=now,
        window_start=window_start,
        window_end=window_end,
        upstream_account_ids=upstream_ids,
        queued=queued,
    )
