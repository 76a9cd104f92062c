"""The allocation ledger: prepaid traffic sent to IPFoxy sub-accounts, exactly once.

Every allocation is a row (`usage.models.Allocation`) committed before anything is sent, with
its own idempotency key; every send of it carries that key and the row's amount, so IPFoxy
applies it at most once and a resend learns what an earlier send did (it answers the first
success again). Three steps:

1. `allocation_create` checks the request, commits the row `pending` and queues
   `allocation_send_task` once that commits (no broker: the task runs in-process at the
   commit, so the caller may already see the row `confirmed`). A broker that refuses the
   message is logged, not raised: the row exists and the sweep sends it.
2. `allocation_send` claims the row under its row lock (one more attempt, `sent_at`,
   `maybe_applied`, and a lease: `next_attempt_at = now + LEASE`, longer than the send task's
   hard time limit), commits the claim, sends `allocate-flow-sub-account`, then records the
   outcome under the lock. A second worker meanwhile finds the row leased and does nothing.
3. `allocations_resend_pending` (beat, every minute) queues the send of each pending row that
   is due and older than `RESEND_AFTER`: its message was lost, its worker died before or after
   sending (the lease ran out), or an earlier send must be retried.

Outcomes of one send:
- success: `confirmed` (also for a resend that replays an earlier success: nothing doubles);
- a refusal that proves nothing was applied (`UpstreamError.definitive`: 60300 insufficient
  balance, 60400 parameter error; the upstream would have replayed an applied key instead):
  `failed`;
- not applied, and no earlier send may have been (`maybe_applied` was false): `failed` when a
  retry cannot help (credentials refused, an argument refused before sending), else pending,
  retried after `RETRY_DELAYS` (rate limited, the request never left, 8700);
- maybe applied (`OutcomeUnknownError`: a timeout, lost connection or 5xx after sending, or an
  earlier send was uncertain): pending with `maybe_applied`, resent with the same key;
- the worker dies (or hits its time limit) anywhere after the claim: the row stays pending and
  leased, `maybe_applied`; the sweep resends it when the lease ends.

A pending row gives up after `MAX_ATTEMPTS` sends or `REVIEW_AFTER`: `failed` when no send
may have been applied, else `needs_review` (staff check the upstream). A row whose
sub-account, customer or upstream account became unusable before it was ever sent fails with
that reason; one that may already be applied goes to review instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction

from accounts.models import Customer, SubAccount
from config.celery import app as celery_app
from config.errors import ApplicationError
from usage.models import Allocation
from usage.providers.base import OutcomeUnknownError, UpstreamError
from usage.providers.reseller import EXPIRY_DAYS, MAX_FLOW_MB, ResellerConnector
from usage.providers.reseller import new_idempotency_key as _new_key
from usage.services.connectors import (
    UpstreamStateError,
    reseller_api_check,
    reseller_connector_for_sub_account,
)

logger = logging.getLogger(__name__)

SEND_TASK = "usage.tasks.allocation_send_task"
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

_PENDING = Allocation.Status.PENDING


def _aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ApplicationError("naive_datetime", "`now` must be an aware datetime.")
    return now


def _invalid(field: str, message: str) -> ApplicationError:
    """The 400 of a bad argument, shaped like a serializer's (`extra.fields`)."""
    code = "invalid_amount" if field == "bytes" else "validation_error"
    return ApplicationError(code, f"{field}: {message}", extra={"fields": {field: [message]}})


def allocation_flow_mb(*, sub_account: SubAccount, nbytes: int) -> int:
    """`nbytes` in the upstream account's MB, or 400 `invalid_amount` naming `bytes` unless
    it is a positive whole number of them (at most IPFoxy's 1,000,000,000 MB)."""
    mb_bytes = sub_account.upstream_account.mb_bytes
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise _invalid("bytes", "Give a whole number of bytes.")
    if nbytes <= 0:
        raise _invalid("bytes", "Must be positive.")
    flow_mb, rest = divmod(nbytes, mb_bytes)
    if rest:
        raise _invalid(
            "bytes",
            f"Must be a whole number of MB ({mb_bytes} bytes each): {flow_mb} MB is "
            f"{flow_mb * mb_bytes}, {flow_mb + 1} MB is {(flow_mb + 1) * mb_bytes}.",
        )
    if flow_mb > MAX_FLOW_MB:
        raise _invalid("bytes", f"At most {MAX_FLOW_MB} MB at once.")
    return flow_mb


def allocation_sendable_check(*, sub_account: SubAccount) -> None:
    """Raise a 409 unless traffic may be allocated to `sub_account` now: the reseller API
    checks (`reseller_api_check`), `sub_account_not_active`, `customer_suspended`."""
    reseller_api_check(sub_account=sub_account)
    if sub_account.status != SubAccount.Status.ACTIVE:
        raise UpstreamStateError(
            "sub_account_not_active",
            f"The sub-account is {sub_account.status}: traffic goes to active ones only.",
            extra={"status": sub_account.status},
        )
    if sub_account.customer.status != Customer.Status.ACTIVE:
        raise UpstreamStateError(
            "customer_suspended",
            "The customer is suspended: no traffic is allocated until it is reinstated.",
            extra={"customer": sub_account.customer_id},
        )


def allocation_create(
    *,
    sub_account: SubAccount,
    bytes: int,
    expires_in_days: int = 0,
    reason: str = Allocation.Reason.MANUAL,
    actor: str,
    now: dt.datetime,
) -> Allocation:
    """Record an allocation of `bytes` to `sub_account` (pending) and queue its send once
    committed. `actor`: who asked (`login <username>`, `key <prefix>`, `system`)."""
    now = _aware(now)
    flow_mb = allocation_flow_mb(sub_account=sub_account, nbytes=bytes)
    if isinstance(expires_in_days, bool) or expires_in_days not in EXPIRY_DAYS:
        raise _invalid("expires_in_days", f"One of {', '.join(map(str, EXPIRY_DAYS))}.")
    if reason not in Allocation.Reason.values:
        raise _invalid("reason", f"One of {', '.join(Allocation.Reason.values)}.")
    if not actor or not actor.strip():
        raise _invalid("created_by", "Say who asked for the allocation.")
    allocation_sendable_check(sub_account=sub_account)
    with transaction.atomic():
        allocation = Allocation.objects.create(
            sub_account=sub_account,
            idempotency_key=_new_key(),
            bytes=bytes,
            flow_mb=flow_mb,
            expires_in_days=expires_in_days,
            reason=reason,
            created_by=actor.strip()[:160],
            next_attempt_at=now,
            created_at=now,
        )
        allocation_id = allocation.pk
        transaction.on_commit(lambda: allocation_send_enqueue(allocation_id), robust=True)
    return allocation


def allocation_send_enqueue(allocation_id: int, now: dt.datetime | None = None) -> None:
    """Queue `allocation_send_task` (by name: services never import the task module)."""
    args = [allocation_id] if now is None else [allocation_id, now.isoformat()]
    celery_app.tasks[SEND_TASK].delay(*args)


# --- sending -------------------------------------------------------------------------------


def _locked(allocation_id: int) -> Allocation | None:
    return (
        Allocation.objects.select_for_update(of=("self",))
        .select_related("sub_account__customer", "sub_account__upstream_account")
        .filter(pk=allocation_id)
        .first()
    )


def _settle(allocation: Allocation, status: str, now: dt.datetime, code: str = "", error=""):
    allocation.status = status
    allocation.settled_at = now
    if status == Allocation.Status.CONFIRMED:
        allocation.confirmed_at = now
    allocation.error_code, allocation.error = code, str(error)[:2000]


def _give_up(allocation: Allocation, now: dt.datetime, code: str, error: str) -> None:
    """Stop sending: `failed` if no send may have been applied, else `needs_review`."""
    status = (
        Allocation.Status.NEEDS_REVIEW if allocation.maybe_applied else Allocation.Status.FAILED
    )
    _settle(allocation, status, now, code, error)


def _exhausted(allocation: Allocation, now: dt.datetime) -> str | None:
    if allocation.attempts >= MAX_ATTEMPTS:
        return f"still unsettled after {allocation.attempts} sends"
    if now - allocation.created_at >= REVIEW_AFTER:
        return f"still unsettled {REVIEW_AFTER} after it was made"
    return None


@dataclass(frozen=True)
class _Claim:
    allocation: Allocation
    attempt: int
    maybe_applied_before: bool


def _claim(allocation_id: int, now: dt.datetime) -> tuple[_Claim | None, Allocation | None]:
    """(the claim, None), or (None, the row if this call settled it instead of sending)."""
    with transaction.atomic():
        allocation = _locked(allocation_id)
        if allocation is None or allocation.status != _PENDING or allocation.next_attempt_at > now:
            return None, None  # settled, not due, or another worker's send is in flight
        try:
            allocation_sendable_check(sub_account=allocation.sub_account)
        except UpstreamStateError as exc:
            _give_up(allocation, now, exc.code, exc.message)
            allocation.save()
            return None, allocation
        why = _exhausted(allocation, now)
        if why is not None:
            _give_up(allocation, now, allocation.error_code or "allocation_unsettled", why)
            allocation.save()
            return None, allocation
        before = allocation.maybe_applied
        allocation.attempts += 1
        allocation.sent_at = now
        allocation.maybe_applied = True  # from here on, it may reach the upstream
        allocation.next_attempt_at = now + LEASE
        allocation.save()
        return _Claim(allocation, allocation.attempts, before), None


def _retry_at(attempts: int, now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1])


def _apply_error(allocation: Allocation, exc: Exception, before: bool, now: dt.datetime) -> None:
    """Record a send that raised (see the module docstring for the table)."""
    if isinstance(exc, UpstreamError):
        code, applied = exc.code, exc.may_have_applied or isinstance(exc, OutcomeUnknownError)
        definitive, retryable = exc.definitive, exc.retryable
    else:  # ValueError: an argument refused before anything was sent
        code, applied, definitive, retryable = "upstream_bad_parameter", False, False, False
    allocation.error_code, allocation.error = code, str(exc)[:2000]
    if definitive:
        _settle(allocation, Allocation.Status.FAILED, now, code, exc)
        allocation.maybe_applied = False
        return
    allocation.maybe_applied = applied or before
    if not allocation.maybe_applied and not retryable:
        _settle(allocation, Allocation.Status.FAILED, now, code, exc)
        return
    why = _exhausted(allocation, now)
    if why is not None:
        _give_up(allocation, now, code, f"{exc} ({why})")
        return
    allocation.next_attempt_at = _retry_at(allocation.attempts, now)


def _record(claim: _Claim, now: dt.datetime, exc: Exception | None) -> Allocation:
    with transaction.atomic():
        allocation = _locked(claim.allocation.pk)
        assert allocation is not None, "allocations are never deleted"
        if allocation.status != _PENDING:
            return allocation  # settled meanwhile (only possible after the lease ran out)
        if exc is None:  # the upstream holds it under this key: confirmed, whoever asked
            _settle(allocation, Allocation.Status.CONFIRMED, now)
            allocation.maybe_applied = False
        elif allocation.attempts != claim.attempt:
            return allocation  # a later claim owns the row now; its outcome will count
        else:
            _apply_error(allocation, exc, claim.maybe_applied_before, now)
        allocation.save()
        return allocation


def allocation_send(
    *, allocation_id: int, now: dt.datetime, connector: ResellerConnector | None = None
) -> Allocation | None:
    """Send one pending, due allocation with its own key and record the outcome. Returns the
    row after this call, or None when there was nothing to send (settled, not due, or
    another worker's send is in flight). `connector`: tests."""
    now = _aware(now)
    claim, settled = _claim(allocation_id, now)
    if claim is None:
        return settled
    allocation = claim.allocation
    sub_account = allocation.sub_account
    try:
        upstream = connector or reseller_connector_for_sub_account(sub_account=sub_account)
        upstream.allocate_flow(
            account=sub_account.upstream_id,
            flow_mb=allocation.flow_mb,
            idempotency_key=allocation.idempotency_key,
            day=allocation.expires_in_days,
        )
    except (UpstreamError, ValueError) as exc:
        logger.warning(
            "allocation %s send %s: %s", allocation.pk, claim.attempt, exc,
            extra={"error_code": getattr(exc, "code", "upstream_bad_parameter")},
        )  # fmt: skip
        return _record(claim, now, exc)
    return _record(claim, now, None)


# --- recovery ------------------------------------------------------------------------------


def allocations_due(*, now: dt.datetime, limit: int = SWEEP_BATCH) -> list[int]:
    """Ids of pending rows due for a send and older than `RESEND_AFTER`, oldest due first."""
    due = Allocation.objects.filter(
        status=_PENDING, next_attempt_at__lte=now, created_at__lte=now - RESEND_AFTER
    )
    return list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])


def allocations_resend_pending(*, now: dt.datetime) -> list[int]:
    """Queue the send of every due pending allocation (each with its own key: a resend of an
    applied one replays its success). Returns the ids queued. With no broker the sends run
    here, one after the other."""
    now = _aware(now)
    ids = allocations_due(now=now)
    for allocation_id in ids:
        allocation_send_enqueue(allocation_id, now)
    return ids
