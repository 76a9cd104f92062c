"""Suspending and reinstating a customer, and closing a sub-account with its access cut.

Suspending (staff or the reseller API with a reason, or billing automatically when an
invoice is overdue: `by="overdue"`) marks the customer suspended and records a block
(`usage.services.access`: throwaway password, whitelist cleared) for each IPFoxy
sub-account it holds that is not closed, so proxy access stops at once. Allocations stop
too: `allocation_sendable_check` refuses a suspended customer's (409 `customer_suspended`),
so any still pending fail at their claim. Sync and billing go on for what was used.
Reinstating clears the suspension and records a restore (a new password, shown to the
customer, and the whitelist back) for each sub-account blocked or on its way to be.
BytesFlows sub-accounts have no write API: they are left as they are.

Both record a webhook event (`customer.suspended`, `customer.reinstated`) about the
customer; its payload, the customer's suspension fields, is built by the webhook layer
(`usage.webhook_payloads`).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from accounts.models import Customer, SubAccount
from accounts.sub_accounts import sub_account_close
from core.errors import ApplicationError
from usage.services.access import (
    REASON_CUSTOMER_REINSTATED,
    REASON_CUSTOMER_SUSPENDED,
    REASON_SUB_ACCOUNT_CLOSED,
    access_changes_apply,
    sub_account_access_block,
    sub_account_access_restore,
)
from usage.services.upstream_writes import aware
from webhooks.catalogue import CUSTOMER_REINSTATED, CUSTOMER_SUSPENDED
from webhooks.events import webhook_event_record

SuspendedBy = Customer.SuspendedBy
REASON_MAX_LENGTH = 500


def _reason_error(message: str) -> ApplicationError:
    return ApplicationError(
        "validation_error", f"reason: {message}", extra={"fields": {"reason": [message]}}
    )


def _clean_reason(reason: str | None, by: str) -> str:
    text = (reason or "").strip()
    if by == SuspendedBy.STAFF and not text:
        raise _reason_error("Say why the customer is suspended (it is shown to staff).")
    if len(text) > REASON_MAX_LENGTH:
        raise _reason_error(f"At most {REASON_MAX_LENGTH} characters.")
    return text


def _lock_customer(customer: Customer) -> Customer:
    """Lock the customer row (the lock invoicing and the sub-account lifecycle take: FOR NO
    KEY UPDATE, enough to change non-key columns) and read it."""
    return (
        Customer.objects.select_for_update(no_key=True)
        .select_related("reseller")
        .row_of(customer)
        .get()
    )


def _held_open(customer: Customer) -> list[SubAccount]:
    """The customer's IPFoxy sub-accounts that are not closed, in id order."""
    subs = (
        SubAccount.objects.filter(customer=customer)
        .exclude(status=SubAccount.Status.CLOSED)
        .select_related("upstream_account", "customer")
        .order_by("pk")
    )
    return [sub for sub in subs if access_changes_apply(sub)]


def _carry(given: Customer, locked: Customer) -> None:
    for name in ("status", "suspended_at", "suspension_reason", "suspended_by"):
        setattr(given, name, getattr(locked, name))


def customer_suspend(
    *,
    customer: Customer,
    reason: str | None,
    by: str = SuspendedBy.STAFF,
    actor: str,
    now: dt.datetime,
) -> Customer:
    """Suspend `customer` and cut its IPFoxy sub-accounts off upstream (see the module
    docstring). 409 `customer_already_suspended`; 400 naming `reason` when staff give none
    or more than 500 characters. `actor`: who asked (`login <username>`, `key <prefix>`,
    `system`)."""
    now = aware(now)
    if by not in SuspendedBy.values:
        raise ValueError(f"unknown suspended_by {by!r}")
    text = _clean_reason(reason, by)
    with transaction.atomic():
        locked = _lock_customer(customer)
        if locked.status == Customer.Status.SUSPENDED:
            raise ApplicationError(
                "customer_already_suspended",
                f"{locked} is already suspended (since {locked.suspended_at:%Y-%m-%d %H:%M} "
                "UTC); reinstate it first to suspend it again.",
                extra={
                    "suspended_at": locked.suspended_at.isoformat(),
                    "suspended_by": locked.suspended_by,
                },
            )
        locked.status = Customer.Status.SUSPENDED
        locked.suspended_at = now
        locked.suspension_reason = text
        locked.suspended_by = by
        locked.save(update_fields=["status", "suspended_at", "suspension_reason", "suspended_by"])
        for sub in _held_open(locked):
            sub_account_access_block(
                sub_account=sub, reason=REASON_CUSTOMER_SUSPENDED, actor=actor, now=now
            )
        webhook_event_record(
            reseller_id=locked.reseller_id,
            event_type=CUSTOMER_SUSPENDED,
            subject_id=locked.pk,
            now=now,
        )
    _carry(customer, locked)
    return locked


def customer_reinstate(
    *, customer: Customer, actor: str, now: dt.datetime, by: str = SuspendedBy.STAFF
) -> Customer:
    """Reinstate a suspended `customer`: its suspension fields cleared, a restore recorded
    for each of its sub-accounts that is blocked or has a block pending. 409
    `customer_not_suspended`. `by="overdue"` (billing) reinstates only a customer suspended
    automatically: a staff suspension is left alone (409 `customer_suspended_by_staff`)."""
    now = aware(now)
    if by not in SuspendedBy.values:
        raise ValueError(f"unknown suspended_by {by!r}")
    with transaction.atomic():
        locked = _lock_customer(customer)
        if locked.status != Customer.Status.SUSPENDED:
            raise ApplicationError(
                "customer_not_suspended", f"{locked} is not suspended; there is nothing to undo."
            )
        if by == SuspendedBy.OVERDUE and locked.suspended_by != SuspendedBy.OVERDUE:
            raise ApplicationError(
                "customer_suspended_by_staff",
                f"{locked} was suspended by staff; only staff reinstate it.",
            )
        locked.status = Customer.Status.ACTIVE
        locked.suspended_at = None
        locked.suspension_reason = ""
        locked.suspended_by = ""
        locked.save(update_fields=["status", "suspended_at", "suspension_reason", "suspended_by"])
        for sub in _held_open(locked):  # open ones with nothing pending get nothing
            sub_account_access_restore(
                sub_account=sub, reason=REASON_CUSTOMER_REINSTATED, actor=actor, now=now
            )
        webhook_event_record(
            reseller_id=locked.reseller_id,
            event_type=CUSTOMER_REINSTATED,
            subject_id=locked.pk,
            now=now,
        )
    _carry(customer, locked)
    return locked


def sub_account_close_and_cut_off(
    *, sub_account: SubAccount, on_day: dt.date, actor: str, now: dt.datetime
) -> SubAccount:
    """Close `sub_account` (`accounts.sub_accounts.sub_account_close`: its usage through
    `on_day` is billed to its holder, it is synced until that day ends) and, for an IPFoxy
    one, cut its access off upstream at once (a block). Same refusals as the close."""
    now = aware(now)
    with transaction.atomic():
        closed = sub_account_close(sub_account=sub_account, on_day=on_day)
        sub_account_access_block(
            sub_account=closed, reason=REASON_SUB_ACCOUNT_CLOSED, actor=actor, now=now
        )
    return closed
