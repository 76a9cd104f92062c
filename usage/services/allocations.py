"""The allocation ledger: prepaid traffic sent to IPFoxy sub-accounts, exactly once.

Every allocation is a row (`usage.models.Allocation`) committed before anything is sent, with
its own idempotency key; every send of it carries that key and the row's amount, so IPFoxy
applies it at most once and a resend learns what an earlier send did (it answers the first
success again). `allocation_create` checks the request, commits the row `pending` and queues
its send once that commits; sending, recording the outcome, retries, the lease and the
recovery sweep are the shared machinery of `usage.services.upstream_writes` (its docstring
has the table of outcomes). A row whose sub-account, customer or upstream account became
unusable before it was ever sent fails with that reason; one that may already be applied
goes to review instead. Confirming or failing a row emits `allocation.confirmed` /
`allocation.failed`.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from accounts.models import Customer, SubAccount, UpstreamAccount
from core.errors import ApplicationError
from usage.models import Allocation
from usage.providers.reseller import EXPIRY_DAYS, MAX_FLOW_MB, ResellerConnector
from usage.providers.reseller import new_idempotency_key as _new_key
from usage.services.connectors import (
    UpstreamStateError,
    reseller_api_check,
    reseller_connector_for_sub_account,
)
from usage.services.upstream_writes import (  # noqa: F401 (re-exported: the ledger's timings)
    LEASE,
    MAX_ATTEMPTS,
    RESEND_AFTER,
    RETRY_DELAYS,
    REVIEW_AFTER,
    SWEEP_BATCH,
    WriteKind,
    aware,
    write_enqueue,
    write_enqueue_on_commit,
    write_kind_register,
    write_send,
    writes_due,
    writes_resend_pending,
)
from webhooks.catalogue import ALLOCATION_CONFIRMED, ALLOCATION_FAILED
from webhooks.events import webhook_event_record

#: Fields whose bad amount is a 400 `invalid_amount` (any other a `validation_error`).
AMOUNT_FIELDS = frozenset({"bytes", "initial_bytes"})


def _invalid(field: str, message: str) -> ApplicationError:
    """The 400 of a bad argument, shaped like a serializer's (`extra.fields`)."""
    code = "invalid_amount" if field in AMOUNT_FIELDS else "validation_error"
    return ApplicationError(code, f"{field}: {message}", extra={"fields": {field: [message]}})


def allocation_flow_mb(
    *,
    nbytes: int,
    upstream_account: UpstreamAccount | None = None,
    sub_account: SubAccount | None = None,
    field: str = "bytes",
) -> int:
    """`nbytes` in the MB of `upstream_account` (or `sub_account`'s), or 400
    `invalid_amount` naming `field` unless it is a positive whole number of them (at most
    IPFoxy's 1,000,000,000 MB)."""
    if upstream_account is None:
        assert sub_account is not None, "give the upstream account or the sub-account"
        upstream_account = sub_account.upstream_account
    mb_bytes = upstream_account.mb_bytes
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise _invalid(field, "Give a whole number of bytes.")
    if nbytes <= 0:
        raise _invalid(field, "Must be positive.")
    flow_mb, rest = divmod(nbytes, mb_bytes)
    if rest:
        raise _invalid(
            field,
            f"Must be a whole number of MB ({mb_bytes} bytes each): {flow_mb} MB is "
            f"{flow_mb * mb_bytes}, {flow_mb + 1} MB is {(flow_mb + 1) * mb_bytes}.",
        )
    if flow_mb > MAX_FLOW_MB:
        raise _invalid(field, f"At most {MAX_FLOW_MB} MB at once.")
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
    now = aware(now)
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
        write_enqueue_on_commit(ALLOCATION, allocation.pk)
    return allocation


def _send(allocation: Allocation, connector: ResellerConnector | None) -> None:
    sub_account = allocation.sub_account
    upstream = connector or reseller_connector_for_sub_account(sub_account=sub_account)
    upstream.allocate_flow(
        account=sub_account.upstream_id,
        flow_mb=allocation.flow_mb,
        idempotency_key=allocation.idempotency_key,
        day=allocation.expires_in_days,
    )


def _event(allocation: Allocation, now: dt.datetime) -> None:
    sub_account = allocation.sub_account
    event_type = (
        ALLOCATION_CONFIRMED
        if allocation.status == Allocation.Status.CONFIRMED
        else ALLOCATION_FAILED
    )
    webhook_event_record(
        reseller_id=sub_account.customer.reseller_id,
        event_type=event_type,
        subject_id=allocation.pk,
        now=now,
    )


ALLOCATION = write_kind_register(
    WriteKind(
        name="allocation",
        model=Allocation,
        related=("sub_account__customer", "sub_account__upstream_account"),
        check=lambda allocation: allocation_sendable_check(sub_account=allocation.sub_account),
        send=_send,
        confirmed=_event,
        settled=_event,
    )
)


def allocation_send(
    *, allocation: Allocation, now: dt.datetime, connector: ResellerConnector | None = None
) -> Allocation | None:
    """Send one pending, due allocation with its own key and record the outcome. Returns the
    row after this call, or None when there was nothing to send (settled, not due, or
    another worker's send is in flight). `connector`: tests."""
    return write_send(ALLOCATION, row=allocation, now=now, connector=connector)


def allocations_due(*, now: dt.datetime, limit: int = SWEEP_BATCH) -> list[int]:
    """Ids of pending rows due for a send and older than `RESEND_AFTER`, oldest due first."""
    return writes_due(ALLOCATION, now=now, limit=limit)


def allocations_resend_pending(*, now: dt.datetime) -> list[int]:
    """Queue the send of every due pending allocation (each with its own key: a resend of an
    applied one replays its success). Returns the ids queued."""
    return writes_resend_pending(ALLOCATION, now=now)
