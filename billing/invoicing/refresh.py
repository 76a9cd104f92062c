"""Drafts follow late usage while their grace period runs.

A month's draft is created when the month ends, but upstreams keep revising its usage for a
while. Each sync that changed a customer's usage queues `invoice_drafts_refresh_task` (see
`FLOWBILL_AFTER_SYNC_TASKS` and `usage.services.followups`), which re-rates that customer's
drafts still inside the reseller's grace period, so the invoice finalized at its end bills the
usage as revised. Past the grace period a draft is left to finalization, and issued invoices
are never touched: late usage of an issued month becomes an adjustment on the next invoice.
"""

from __future__ import annotations

import datetime as dt
import logging

from accounts.models import Customer
from billing.invoicing.cycle import invoice_refresh_draft
from billing.invoicing.periods import Period, period_due_at
from billing.models import Invoice, InvoiceStatus
from config.errors import ApplicationError

logger = logging.getLogger(__name__)


def invoice_drafts_refresh(*, customer: Customer, now: dt.datetime) -> list[Invoice]:
    """Re-rate the customer's drafts whose grace period has not ended at `now`; returns them.

    Idempotent (a draft whose usage did not change keeps its rows) and safe on two workers
    at once: each draft is re-rated under its row lock, and a draft finalized meanwhile (by
    the cycle, which takes the same lock) is skipped.
    """
    reseller = customer.reseller
    refreshed = []
    drafts = Invoice.objects.filter(customer_id=customer.pk, status=InvoiceStatus.DRAFT)
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
