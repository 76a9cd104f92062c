"""Recorded upstream writes, exactly once: the claim, send, record and resend machinery shared
by every kind of write Flowbill makes upstream (allocations, provisioning, access changes).

A write is a row (a `usage.models.UpstreamWrite` subclass) committed before anything is
sent; every send of it carries what the row recorded (its idempotency key, or the values it
sets), so the upstream applies it at most once and a resend learns what an earlier send did.

1. The service that records the row queues `SEND_TASK` for it once that commits
   (`write_enqueue`; no broker: the task runs in-process at the commit).
2. `write_send` claims the row under its row lock (one more attempt, `sent_at`,
   `maybe_applied`, and a lease: `next_attempt_at = now + LEASE`, longer than the send task's
   hard time limit), commits the claim, calls the kind's `send`, then records the outcome
   under the lock. A second worker meanwhile finds the row leased and does nothing.
3. `writes_resend_pending` (beat, every minute) queues the send of each pending row that is
   due and older than `RESEND_AFTER`: its message was lost, its worker died before or after
   sending (the lease ran out), or an earlier send must be retried.

Outcomes of one send:
- success: `confirmed` (also for a resend that replays an earlier success: nothing doubles),
  and the kind's `confirmed` hook runs in the same transaction;
- a refusal that proves nothing was applied (`UpstreamError.definitive`: 60300 insufficient
  balance, 60400 parameter error): `failed`;
- not applied, and no earlier send may have been (`maybe_applied` was false): `failed` when a
  retry cannot help (credentials refused, an argument refused before sending), else pending,
  retried after `RETRY_DELAYS` (rate limited, the request never left, 8700);
- maybe applied (`OutcomeUnknownError`: a timeout, lost connection or 5xx after sending, or an
  earlier send was uncertain): pending with `maybe_applied`, resent the same way;
- the worker dies (or hits its time limit) anywhere after the claim: the row stays pending and
  leased, `maybe_applied`; the sweep resends it when the lease ends.

A pending row gives up after `MAX_ATTEMPTS` sends or `REVIEW_AFTER`: `failed` when no send
may have been applied, else `needs_review` (staff check the upstream). A row whose target
became unusable before it was ever sent (the kind's `check` raises `UpstreamStateError`)
fails with that reason; one that may already be applied goes to review instead. The kind's
`settled` hook runs in the transaction that settles a row as failed or needs_review.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import current_app as celery_app
from django.db import models, transaction

from core.errors import ApplicationError
from usage.models import UpstreamWriteStatus
from usage.providers.base import OutcomeUnknownError, UpstreamError
from usage.services.connectors import UpstreamStateError

logger = logging.getLogger(__name__)

SEND_TASK = "usage.tasks.upstream_write_send_task"
#: A claimed send is not taken by another worker for this long: past the send task's hard
#: time limit (`UPSTREAM_TIME_LIMITS`, 720 s), so a send in flight is never sent twice at once.
LEASE = dt.timedelta(minutes=15)
#: The sweep leaves a new row this long to the task queued when it was created.
RESEND_AFTER = dt.timedelta(minutes=1)
#: Seconds before send n+1 after n sends left the row pending (the last repeats).
RETRY_DELAYS = (60, 120, 300, 600, 1800, 3600)
#: A row still pending after this many sends, or this long after it was made, gives up.
MAX_ATTEMPTS = 8
REVIEW_AFTER = dt.timedelta(hours=24)
#: Rows queued by one sweep at most (the next sweep, a minute later, takes the rest).
SWEEP_BATCH = 500

Status = UpstreamWriteStatus
_PENDING = Status.PENDING


def _noop(row: Any, now: dt.datetime) -> None:
    return None


@dataclass(frozen=True)
class WriteKind:
    """One kind of recorded write.

    `check(row)` raises `UpstreamStateError` when the row's target can no longer take the
    write (checked at every claim); `send(row, connector)` makes the upstream call(s) and
    raises `UpstreamError` or `ValueError`; `confirmed(row, now)` and `settled(row, now)` run
    under the row lock in the transaction that confirms, or fails / sends to review, the row
    (after it is saved)."""

    name: str
    model: type[models.Model]
    related: tuple[str, ...]
    check: Callable[[Any], None]
    send: Callable[[Any, Any], None]
    confirmed: Callable[[Any, dt.datetime], None] = _noop
    settled: Callable[[Any, dt.datetime], None] = _noop


#: name -> kind; each service module registers its kind when imported (usage.tasks imports
#: them all, so a worker knows every kind).
KINDS: dict[str, WriteKind] = {}


def write_kind_register(kind: WriteKind) -> WriteKind:
    KINDS[kind.name] = kind
    return kind


def aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ApplicationError("naive_datetime", "`now` must be an aware datetime.")
    return now


def write_enqueue(kind: WriteKind, row_id: int, now: dt.datetime | None = None) -> None:
    """Queue the send of one row (by task name: services never import the task module)."""
    args = [kind.name, row_id] if now is None else [kind.name, row_id, now.isoformat()]
    celery_app.tasks[SEND_TASK].delay(*args)


def write_enqueue_on_commit(kind: WriteKind, row_id: int) -> None:
    """Queue the send once the caller's transaction commits; a broker that refuses the
    message is logged, not raised: the row exists and the sweep sends it."""
    transaction.on_commit(lambda: write_enqueue(kind, row_id), robust=True)


# --- sending -------------------------------------------------------------------------------


def _locked(kind: WriteKind, row):
    return (
        kind.model.objects.select_for_update(of=("self",))
        .select_related(*kind.related)
        .row_of(row)
        .first()
    )


def _settle(row, status: str, now: dt.datetime, code: str = "", error: Any = "") -> None:
    row.status = status
    row.settled_at = now
    if status == Status.CONFIRMED:
        row.confirmed_at = now
    row.error_code, row.error = code, str(error)[:2000]


def _give_up(row, now: dt.datetime, code: str, error: str) -> None:
    """Stop sending: `failed` if no send may have been applied, else `needs_review`."""
    _settle(row, Status.NEEDS_REVIEW if row.maybe_applied else Status.FAILED, now, code, error)


def _exhausted(row, now: dt.datetime) -> str | None:
    if row.attempts >= MAX_ATTEMPTS:
        return f"still unsettled after {row.attempts} sends"
    if now - row.created_at >= REVIEW_AFTER:
        return f"still unsettled {REVIEW_AFTER} after it was made"
    return None


def _save_settled(kind: WriteKind, row, now: dt.datetime) -> None:
    row.save()
    if row.status == Status.CONFIRMED:
        kind.confirmed(row, now)
    elif row.status in (Status.FAILED, Status.NEEDS_REVIEW):
        kind.settled(row, now)


@dataclass(frozen=True)
class _Claim:
    row: Any
    attempt: int
    maybe_applied_before: bool


def _claim(kind: WriteKind, row: Any, now: dt.datetime) -> tuple[_Claim | None, Any]:
    """(the claim, None), or (None, the row if this call settled it instead of sending)."""
    with transaction.atomic():
        row = _locked(kind, row)
        if row is None or row.status != _PENDING or row.next_attempt_at > now:
            return None, None  # settled, not due, or another worker's send is in flight
        try:
            kind.check(row)
        except UpstreamStateError as exc:
            _give_up(row, now, exc.code, exc.message)
            _save_settled(kind, row, now)
            return None, row
        why = _exhausted(row, now)
        if why is not None:
            _give_up(row, now, row.error_code or f"{kind.name}_unsettled", why)
            _save_settled(kind, row, now)
            return None, row
        before = row.maybe_applied
        row.attempts += 1
        row.sent_at = now
        row.maybe_applied = True  # from here on, it may reach the upstream
        row.next_attempt_at = now + LEASE
        row.save()
        return _Claim(row, row.attempts, before), None


def _retry_at(attempts: int, now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1])


def _apply_error(row, exc: Exception, before: bool, now: dt.datetime) -> None:
    """Record a send that raised (see the module docstring for the table)."""
    if isinstance(exc, UpstreamError):
        code, applied = exc.code, exc.may_have_applied or isinstance(exc, OutcomeUnknownError)
        definitive, retryable = exc.definitive, exc.retryable
    else:  # ValueError: an argument refused before anything was sent
        code, applied, definitive, retryable = "upstream_bad_parameter", False, False, False
    row.error_code, row.error = code, str(exc)[:2000]
    if definitive:
        _settle(row, Status.FAILED, now, code, exc)
        row.maybe_applied = False
        return
    row.maybe_applied = applied or before
    if not row.maybe_applied and not retryable:
        _settle(row, Status.FAILED, now, code, exc)
        return
    why = _exhausted(row, now)
    if why is not None:
        _give_up(row, now, code, f"{exc} ({why})")
        return
    row.next_attempt_at = _retry_at(row.attempts, now)


def _record(kind: WriteKind, claim: _Claim, now: dt.datetime, exc: Exception | None):
    with transaction.atomic():
        row = _locked(kind, claim.row)
        assert row is not None, "recorded writes are never deleted"
        if row.status != _PENDING:
            return row  # settled meanwhile (only possible after the lease ran out)
        if exc is None:  # the upstream holds it: confirmed, whoever asked
            _settle(row, Status.CONFIRMED, now)
            row.maybe_applied = False
        elif row.attempts != claim.attempt:
            return row  # a later claim owns the row now; its outcome will count
        else:
            _apply_error(row, exc, claim.maybe_applied_before, now)
        _save_settled(kind, row, now)
        return row


def write_send(kind: WriteKind, *, row: Any, now: dt.datetime, connector: Any = None):
    """Send one pending, due row (a row of `kind` as fetched: it is read again locked) and
    record the outcome. Returns the row after this call, or None when there was nothing to
    send (settled, deleted, not due, or another worker's send is in flight).
    `connector`: tests."""
    now = aware(now)
    claim, settled = _claim(kind, row, now)
    if claim is None:
        return settled
    try:
        kind.send(claim.row, connector)
    except (UpstreamError, ValueError) as exc:
        logger.warning(
            "%s %s send %s: %s", kind.name, claim.row.pk, claim.attempt, exc,
            extra={"error_code": getattr(exc, "code", "upstream_bad_parameter")},
        )  # fmt: skip
        return _record(kind, claim, now, exc)
    return _record(kind, claim, now, None)


# --- recovery ------------------------------------------------------------------------------


def writes_due(kind: WriteKind, *, now: dt.datetime, limit: int = SWEEP_BATCH) -> list[int]:
    """Ids of pending rows due for a send and older than `RESEND_AFTER`, oldest due first."""
    due = kind.model.objects.filter(
        status=_PENDING, next_attempt_at__lte=now, created_at__lte=now - RESEND_AFTER
    )
    return list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])


def writes_resend_pending(kind: WriteKind, *, now: dt.datetime) -> list[int]:
    """Queue the send of every due pending row of `kind`; returns the ids queued. With no
    broker the sends run here, one after the other."""
    now = aware(now)
    ids = writes_due(kind, now=now)
    for row_id in ids:
        write_enqueue(kind, row_id, now)
    return ids
