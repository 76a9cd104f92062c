"""Celery tasks of the usage app: thin wrappers that load by id and call one service.

Arguments are ids and ISO strings. Every task is idempotent (`acks_late`): a sync replaces
buckets, a snapshot is stored once per time, an allocation is claimed under its row lock and
always sent with its own idempotency key. Transient upstream failures of a sync (5xx,
timeouts, rate limiting) retry with exponential backoff and jitter; authentication and
parameter errors fail loudly at once (`SyncFailedError`), since retrying cannot fix them.
An allocation's send is not retried by Celery: the ledger schedules its resends; nor is a
traffic refresh: the next one walks the list again.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from accounts.models import Customer, Provider, SubAccount, UpstreamAccount
from accounts.selectors import sub_accounts_syncable
from core.task_options import (
    DATABASE_ERRORS,
    DATABASE_RETRY_TASK_OPTIONS,
    EMAIL_SEND_TASK_OPTIONS,
    FANOUT_TIME_LIMITS,
    RECORD_TIME_LIMITS,
    UPSTREAM_TIME_LIMITS,
)
from usage.alerts import usage_alert_email_send, usage_alert_emails_recover, usage_alerts_check
from usage.models import SyncRun
from usage.services import access as _access  # noqa: F401 (registers the access_change kind)
from usage.services import (
    provisioning,  # noqa: F401 (registers its write kind)
    upstream_writes,
    usage_discover_sub_accounts,
    usage_snapshot_bytesflows,
    usage_sync_sub_account,
)
from usage.services.allocations import ALLOCATION
from usage.services.followups import traffic_followups_enqueue
from usage.services.requests import (
    sync_runs_queued_sweep,
    sync_task_send,
    sync_window,
)
from usage.services.traffic import sub_account_traffic_refresh

SPREAD_SECONDS = 3600
SPREAD_WAVE_SECONDS = 900
RETRYABLE_CODES = {"upstream_unavailable", "upstream_rate_limited", "request_budget_exhausted"}
#: A traffic refresh not started this long after its fan-out is dropped: the next one (beat,
#: every 10 minutes: `usage.schedule`) replaces it.
TRAFFIC_REFRESH_EXPIRES = 600


class RetryableSyncError(Exception):
    """A sync failed for a reason that may pass (the task retries with backoff)."""


class SyncFailedError(Exception):
    """A sync failed for a reason a retry cannot fix (auth, parameters, bad data)."""


_RETRY = {
    "autoretry_for": (RetryableSyncError, *DATABASE_ERRORS),
    "retry_backoff": 30,
    "retry_backoff_max": 900,
    "retry_jitter": True,
    "max_retries": 5,
    "acks_late": True,
    **UPSTREAM_TIME_LIMITS,
}


def _parse(value: str | None) -> dt.datetime:
    if not value:
        return timezone.now()
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass an ISO string with an offset")
    return parsed


def _check(run: SyncRun) -> int:
    if run.status == SyncRun.Status.FAILED:
        message = f"SyncRun {run.pk} failed: {run.error_code}"
        if run.error_code in RETRYABLE_CODES:
            raise RetryableSyncError(message)
        raise SyncFailedError(message)
    return run.pk


def _sub_account(sub_account_id: int) -> SubAccount:
    return SubAccount.objects.select_related("upstream_account__reseller").get(pk=sub_account_id)


@shared_task(**_RETRY)
def usage_sync_sub_account_task(
    sub_account_id: int,
    start: str,
    end: str,
    now: str | None = None,
    sync_run_id: int | None = None,
) -> int:
    """Sync one sub-account's window `[start, end)` (ISO strings); returns the SyncRun id.

    With `sync_run_id` (queued by a sync request) that run is filled, once: a retry
    updates it, a delivery of a run already done returns its id without syncing."""
    run = usage_sync_sub_account(
        sub_account=_sub_account(sub_account_id),
        start=_parse(start),
        end=_parse(end),
        now=_parse(now),
        sync_run_id=sync_run_id,
    )
    return _check(run)


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def usage_sync_all_task(now: str | None = None, wave: int = 0) -> int:
    """Fan out: re-sync the trailing 72 hours of every active IPFoxy sub-account (and every
    closed one until its last day ends: `sub_accounts_syncable`).

    Each upstream account's sub-accounts are spread evenly over the hour (countdown) so its
    request budget is used evenly instead of in a burst; one request each covers 72 hourly
    buckets. The hour is queued in waves of `SPREAD_WAVE_SECONDS`: this task queues the
    syncs due in its wave (countdowns below 15 minutes) and, while later syncs remain, itself
    again for the next wave, with the same `now`, when that wave starts. A message with a
    countdown waits in a worker unacknowledged until it runs, and must be acknowledged within
    the broker's visibility timeout (`core.task_options`), so no countdown is longer than a wave.
    Returns how many sync tasks this wave queued.
    """
    moment = _parse(now)
    start, end = sync_window(now=moment)
    low, high = wave * SPREAD_WAVE_SECONDS, (wave + 1) * SPREAD_WAVE_SECONDS
    queued, last_offset = 0, 0
    upstreams = UpstreamAccount.objects.filter(is_active=True, provider=Provider.IPFOXY)
    for upstream in upstreams.order_by("pk"):
        ids = list(
            sub_accounts_syncable(SubAccount.objects.filter(upstream_account=upstream), start=start)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        step = SPREAD_SECONDS / max(len(ids), 1)
        for index, sub_account_id in enumerate(ids):
            offset = int(index * step)
            last_offset = max(last_offset, offset)
            if low <= offset < high:
                sync_task_send(
                    sub_account_id=sub_account_id,
                    kind=SyncRun.Kind.USAGE,
                    window=(start, end),
                    countdown=offset - low,
                )
                queued += 1
    if last_offset >= high:
        usage_sync_all_task.apply_async(
            kwargs={"now": moment.isoformat(), "wave": wave + 1}, countdown=SPREAD_WAVE_SECONDS
        )
    return queued


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def sync_runs_queued_sweep_task(now: str | None = None) -> dict[str, int]:
    """Every 5 minutes: send again the task of each requested sync still `queued` after 5
    minutes (its message was lost), close as failed those still queued after 30. Returns
    how many of each."""
    swept = sync_runs_queued_sweep(now=_parse(now))
    return {"requeued": len(swept.requeued), "closed": len(swept.closed)}


@shared_task(**_RETRY)
def usage_snapshot_bytesflows_task(
    sub_account_id: int, now: str | None = None, sync_run_id: int | None = None
) -> int:
    """Take one BytesFlows ledger snapshot of a sub-account; returns the SyncRun id (filling
    the queued `sync_run_id` when given, as `usage_sync_sub_account_task` does)."""
    run = usage_snapshot_bytesflows(
        sub_account=_sub_account(sub_account_id), now=_parse(now), sync_run_id=sync_run_id
    )
    return _check(run)


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def usage_snapshot_bytesflows_all_task() -> int:
    """Hourly fan-out: one snapshot task per active BytesFlows sub-account (and per closed
    one until an hour after its last day ends, so its last hours are counted)."""
    subs = SubAccount.objects.filter(
        upstream_account__provider=Provider.BYTESFLOWS, upstream_account__is_active=True
    )
    since = timezone.now() - dt.timedelta(hours=1)
    ids = sub_accounts_syncable(subs, start=since).values_list("pk", flat=True)
    count = 0
    for sub_account_id in ids.order_by("pk"):
        sync_task_send(sub_account_id=sub_account_id, kind=SyncRun.Kind.SNAPSHOT)
        count += 1
    return count


@shared_task(**_RETRY)
def usage_discover_sub_accounts_task(upstream_account_id: int, now: str | None = None) -> int:
    """Refresh one IPFoxy upstream account's sub-account list; returns the SyncRun id."""
    upstream = UpstreamAccount.objects.select_related("reseller").get(pk=upstream_account_id)
    return _check(usage_discover_sub_accounts(upstream_account=upstream, now=_parse(now)))


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def usage_discover_sub_accounts_all_task() -> int:
    """Hourly fan-out: discovery for every active IPFoxy upstream account."""
    ids = UpstreamAccount.objects.filter(is_active=True, provider=Provider.IPFOXY).values_list(
        "pk", flat=True
    )
    count = 0
    for upstream_account_id in ids.order_by("pk"):
        usage_discover_sub_accounts_task.delay(upstream_account_id)
        count += 1
    return count


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **RECORD_TIME_LIMITS)
def usage_alerts_check_task(*, customer_id: int, now: str | None = None) -> int:
    """After a sync changed the customer's usage: fire the usage alerts it crossed (each at
    most once per period). Returns how many fired. Named in FLOWBILL_AFTER_SYNC_TASKS."""
    customer = Customer.objects.select_related("reseller").filter(pk=customer_id).first()
    if customer is None:
        return 0
    return len(usage_alerts_check(customer=customer, now=_parse(now)))


@shared_task(**EMAIL_SEND_TASK_OPTIONS)
def usage_alert_email_send_task(alert_id: int) -> str:
    """Email one fired alert; the claim inside the service makes retries safe."""
    return usage_alert_email_send(alert_id=alert_id, now=timezone.now()).email_status


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **RECORD_TIME_LIMITS)
def usage_alert_emails_recover_task() -> int:
    """Every 3 minutes: send again the alert emails claimed by a worker that died mid-send
    (measured with this task's own wall clock). Returns how many."""
    return len(usage_alert_emails_recover(now=timezone.now()))


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **UPSTREAM_TIME_LIMITS)
def allocation_send_task(allocation_id: int, now: str | None = None) -> str | None:
    """Send one pending allocation with its own key and record the outcome; returns its
    status, or None when there was nothing to send (settled, not due, or in flight). Upstream
    errors are not retried here: the row's `next_attempt_at` and the sweep resend it."""
    return _write_send(ALLOCATION, allocation_id, now)


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **UPSTREAM_TIME_LIMITS)
def upstream_write_send_task(kind: str, row_id: int, now: str | None = None) -> str | None:
    """Send one pending recorded upstream write of `kind` (`allocation`, `provisioning`,
    `access_change`) and record the outcome; returns its status, or None when there was
    nothing to send. Upstream errors are not retried here: the row's `next_attempt_at` and
    the sweep resend it."""
    return _write_send(upstream_writes.KINDS[kind], row_id, now)


def _write_send(kind: upstream_writes.WriteKind, row_id: int, now: str | None) -> str | None:
    row = kind.model.objects.filter(pk=row_id).first()  # None: deleted, nothing to send
    if row is not None:
        row = upstream_writes.write_send(kind, row=row, now=_parse(now))
    return None if row is None else row.status


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def upstream_writes_resend_pending_task(now: str | None = None) -> dict[str, int]:
    """Every minute: queue the send of each due pending upstream write older than a minute
    (a lost message, a worker killed around its send, a retry), every kind. Returns how many
    per kind."""
    moment = _parse(now)
    return {
        name: len(upstream_writes.writes_resend_pending(kind, now=moment))
        for name, kind in upstream_writes.KINDS.items()
    }


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **UPSTREAM_TIME_LIMITS)
def sub_account_traffic_refresh_task(upstream_account_id: int, now: str | None = None) -> dict:
    """Store the traffic figures of every sub-account of one IPFoxy upstream account from its
    sub-account list (100 per request). Upstream errors are reported, not retried: the next
    refresh walks the list again. Returns the refresh's counts."""
    upstream = UpstreamAccount.objects.get(pk=upstream_account_id)
    result = sub_account_traffic_refresh(upstream_account=upstream, now=_parse(now))
    if result.stored:  # fresh remaining traffic: the credit-limit top-ups act on it
        traffic_followups_enqueue(upstream_account_id=upstream_account_id)
    return result.as_dict()


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def sub_account_traffic_refresh_all_task() -> int:
    """Every 10 minutes: one traffic refresh per active IPFoxy upstream account, dropped if
    not started within `TRAFFIC_REFRESH_EXPIRES`. Returns how many were queued."""
    ids = UpstreamAccount.objects.filter(is_active=True, provider=Provider.IPFOXY).values_list(
        "pk", flat=True
    )
    count = 0
    for upstream_account_id in ids.order_by("pk"):
        sub_account_traffic_refresh_task.apply_async(
            args=[upstream_account_id], expires=TRAFFIC_REFRESH_EXPIRES
        )
        count += 1
    return count
