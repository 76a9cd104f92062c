"""Which drafts a cycle run can leave as they are: those it (or a later rating) already rated.

The hourly cycle (`billing.invoicing.cycle.invoice_cycle_run`) gets its `now` from beat's
fan-out, and a message delivered again after a worker was killed carries the same `now`.
Every rating stamps the draft's `refreshed_at` with the `now` of whoever rated it, and a
rating reads its inputs when it runs, which is never before its `now`. So a draft with
`refreshed_at >= now` was rated from inputs at least as recent as the ones this run would
read: the run that was killed had done it, or a refresh after it did (a sync's follow-up, a
subscription change). A run delivered again resumes where the killed one stopped instead of
re-rating every draft (bench/cycle.py: 460 drafts).

Inputs that changed after that rating are not left behind:
- usage: a usage day of one of the customers' sub-accounts (held now or before a move)
  written after the draft's `refreshed_at`, in the period or the adjustment lookback before
  it, makes the draft re-rated (the sync's follow-up task would re-rate it too, later);
- subscriptions, voids, and sub-account moves and closes (who is billed for which days:
  `accounts.sub_accounts.sub_account_holders_changed`) re-rate the customers' drafts in
  their own transaction (`invoice_drafts_rerate`), so `refreshed_at` is never older than
  them. A plan's prices, tiers and currency cannot change (`plan_price_immutable`).

Not followed by an event: a customer's own details edited after the rating (name, address,
tax settings: `accounts.services.customer_update`). The next hour's run has a later `now`
and re-rates every draft again, as before: it is the catch-all for those.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Max

from accounts.models import Customer, Reseller
from accounts.selectors import sub_accounts_held
from billing.invoicing.context import ADJUSTMENT_LOOKBACK_DAYS
from billing.models import Invoice, InvoiceStatus
from usage.models import UsageDay


def drafts_rated_since(
    *, reseller: Reseller, drafts: Iterable[Invoice], now: dt.datetime
) -> set[int]:
    """The ids of `drafts` (of `reseller`) already rated at or after `now` whose customer's
    usage has not changed since that rating (see the module text). A few queries for any
    number."""
    rated = [
        draft
        for draft in drafts
        if draft.status == InvoiceStatus.DRAFT
        and draft.refreshed_at is not None
        and draft.refreshed_at >= now
    ]
    if not rated:
        return set()
    held = sub_accounts_held(
        customers=Customer.objects.for_reseller(reseller).filter(
            pk__in={draft.customer_id for draft in rated}
        )
    )
    sub_account_ids = {sa.pk for accounts in held.values() for sa in accounts}
    first_day = min(d.period_start for d in rated) - dt.timedelta(days=ADJUSTMENT_LOOKBACK_DAYS)
    written = dict(
        UsageDay.objects.for_reseller(reseller)
        .filter(
            sub_account_id__in=sub_account_ids,
            day__gte=first_day,
            day__lt=max(d.period_end for d in rated),
            updated_at__gt=min(d.refreshed_at for d in rated),
        )
        .values("sub_account_id")
        .annotate(last=Max("updated_at"))
        .values_list("sub_account_id", "last")
        .order_by()
    )
    return {
        draft.pk
        for draft in rated
        if not any(
            written.get(sa.pk, draft.refreshed_at) > draft.refreshed_at
            for sa in held.get(draft.customer_id, [])
        )
    }
