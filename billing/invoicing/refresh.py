"""Drafts follow late usage while their grace period runs.

A month's draft is created when the month ends, but upstreams keep revising its usage for a
while. Each sync that changed a customer's usage queues `invoice_drafts_refresh_task` (see
`FLOWBILL_AFTER_SYNC_TASKS` and `usage.services.followups`), which re-rates that customer's
drafts still inside the reseller's grace period, so the invoice finalized at its end bills the
usage as revised. Past the grace period a draft is left to finalization, and issued invoices
are never touched: late usage of an issued month becomes an adjustment on the next invoice.

Subscriptions and voids: when a customer's subscriptions change (created, ended, cancelled,
deleted) or one of its invoices is voided (which changes the adjustments of later months),
`invoice_drafts_rerate` re-rates every draft of the customer, in or past its grace period, so
the draft the reseller reviews is the invoice finalizing it would issue; a draft left with
nothing billable is discarded.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.utils import timezone

from accounts.models import Customer
from billing.invoicing.cycle import invoice_refresh_draft, invoice_refresh_or_discard
from billing.invoicing.periods import Period, period_due_at
from billing.models import Invoice, InvoiceStatus
from core.errors import ApplicationError

logger = logging.getLogger(__name__)


def invoice_drafts_refresh(*, customer: Customer, now: dt.datetime) -> list[Invoice]:
    """Re-rate the customer's drafts whose grace period has not ended at `now`; returns them.

    Idempotent (a draft whose usage did not change keeps its rows) and safe on two workers
    at once: each draft is re-rated under its row lock, and a draft finalized meanwhile (by
    the cycle, which takes the same lock) is skipped.
    """
    reseller = customer.reseller
    refreshed = []
    drafts = Invoice.objects.filter(customer=customer, status=InvoiceStatus.DRAFT)
    for draft in drafts.order_by("period_start"):
        period = Period(start=draft.period_start, end=draft.period_end)
        due_at = period_due_at(
            period=period, tz=reseller.tzinfo, grace_days=reseller.grace_period_days
        )
        if now >= due_at:
            continue  # finalization's turn: it re-rates once more under its own lock
        try:
            refreshed.append(invoice_refresh_draft(invoice=draft, now=now))
        except ApplicationError as exc:
            if exc.code != "invoice_not_draft":
                raise
            logger.info("draft %s was finalized meanwhile; not refreshed", draft.pk)
    return refreshed


@dataclass
class DraftsRerated:
    refreshed: list[int] = field(default_factory=list)
    discarded: list[int] = field(default_factory=list)  # nothing billable left
    failed: list[int] = field(default_factory=list)  # could not be rated: left as they were


def invoice_drafts_rerate(*, customer: Customer, now: dt.datetime) -> DraftsRerated:
    """Re-rate every draft of the customer (after its subscriptions changed, or one of its
    invoices was voided); discard those left with nothing billable.

    Call it inside the change's transaction, the customer row locked (customer, then drafts:
    the lock order of issuing). A draft that cannot be rated now (`ApplicationError`) is
    logged and left as it was, for `invoice_draft_stale` to report; finalization refuses it
    with the same error. A draft finalized meanwhile is skipped."""
    result = DraftsRerated()
    drafts = Invoice.objects.filter(customer=customer, status=InvoiceStatus.DRAFT)
    for draft in drafts.order_by("period_start"):
        try:
            fresh = invoice_refresh_or_discard(invoice=draft, now=now)
        except ApplicationError as exc:
            if exc.code != "invoice_not_draft":
                logger.warning("draft %s not re-rated: %s", draft.pk, exc.code)
                result.failed.append(draft.pk)
            continue
        (result.refreshed if fresh is not None else result.discarded).append(draft.pk)
    return result


def invoice_drafts_rerate_for_holders(*, customers: list[Customer], **_signal: object) -> None:
    """`accounts.sub_accounts.sub_account_holders_changed`: a sub-account moved or closed, so
    the days each of `customers` is billed for changed; re-rate their drafts in that
    transaction (their rows are locked by it)."""
    now = timezone.now()
    for customer in customers:
        invoice_drafts_rerate(customer=customer, now=now)
