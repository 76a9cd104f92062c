"""Late usage: re-rate issued periods whose usage changed, bill the difference once.

Bookkeeping: what was billed for subscription S in issued invoice F is F's own lines of S
plus every *adjustment* line of S that points at F (`adjusts_invoice=F`) on an issued
(finalized or paid) invoice. The bytes behind it are F's frozen `usage_bytes` for S, or the
`usage_bytes` recorded on the newest such adjustment. When current usage differs, the period
is re-rated with the terms frozen on F (a later price change never leaks into old months),
and the next invoice carries `rerated - billed` (a credit when negative). Once that invoice
is issued, its adjustment is part of "billed", so the same change is never billed twice;
drafts and previews only show it. Voided invoices count for nothing either way.

Example: October billed 150 GB on 0-100 @ 0, above @ 2.50 = 125.00; upstream later revises
October to 170 GB -> November carries +50.00 (20 x 2.50). If October then drops to 160 GB,
December carries -25.00.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from accounts.models import Customer
from billing.invoicing.context import ADJUSTMENT_LOOKBACK_DAYS, ISSUED, RatingContext
from billing.invoicing.lines import LineDraft, in_scope
from billing.invoicing.periods import Period
from billing.models import InvoiceLine
from billing.plans.terms import terms_from_json
from billing.rating import rate_subscription, usage_quantity

__all__ = ["ADJUSTMENT_LOOKBACK_DAYS", "ISSUED", "adjustment_lines"]


def adjustment_lines(
    *,
    customer: Customer,
    before: dt.date,
    exclude_invoice_id: int | None = None,
    context: RatingContext | None = None,
) -> list[LineDraft]:
    """Adjustment lines for issued periods before `before` whose usage changed since.

    `context`: the chunk's prefetched rows (its period must start on `before`)."""
    if context is None or context.period.start != before:
        context = RatingContext(customers=[customer], period=Period.starting(before))
    history = context.history(customer.pk)
    issued = [inv for inv in history.issued if inv.pk != exclude_invoice_id]
    if not issued:
        return []
    sub_accounts = context.sub_accounts(customer.pk)
    out: list[LineDraft] = []
    for invoice in issued:
        for key, frozen in (invoice.snapshot or {}).get("subscriptions", {}).items():
            subscription = context.frozen_subscription(int(key))
            if subscription is None:
                continue
            per_sa = context.usage(
                customer.pk,
                dt.date.fromisoformat(frozen["active_start"]),
                dt.date.fromisoformat(frozen["active_end"]),
            )
            current = sum(per_sa.get(sa.pk, 0) for sa in sub_accounts if in_scope(subscription, sa))
            previous = [
                line
                for line in history.adjustments[(invoice.pk, subscription.pk)]
                if line["invoice_id"] != exclude_invoice_id
            ]
            billed_bytes = (
                int(previous[-1]["details"]["usage_bytes"])
                if previous
                else int(frozen["usage_bytes"])
            )
            if current == billed_bytes:
                continue
            terms = terms_from_json(frozen["terms"])
            rerated = sum(
                (
                    line.amount
                    for line in rate_subscription(
                        terms=terms,
                        usage_bytes=current,
                        active_days=frozen["active_days"],
                        period_days=frozen["period_days"],
                    )
                ),
                Decimal(0),
            )
            billed = sum(history.billed_lines[(invoice.pk, subscription.pk)], Decimal(0)) + sum(
                (line["amount"] for line in previous), Decimal(0)
            )
            difference = rerated - billed
            if difference == 0:
                continue
            delta_gb = usage_quantity(abs(current - billed_bytes), terms.unit_bytes)
            sign = "+" if current > billed_bytes else "-"
            out.append(
                LineDraft(
                    kind=InvoiceLine.Kind.ADJUSTMENT,
                    description=(
                        f"Adjustment for {invoice.number} ({invoice.period_start:%Y-%m}): "
                        f"late usage {sign}{delta_gb:.3f} GB"
                    ),
                    amount=difference,
                    group=f"Adjustments - {frozen['group']}",
                    subscription_id=subscription.pk,
                    quantity=(usage_quantity(current, terms.unit_bytes)),
                    unit="GB",
                    details={
                        "adjusts_invoice": invoice.number,
                        "period_start": invoice.period_start.isoformat(),
                        "period_end": invoice.period_end.isoformat(),
                        "usage_bytes_billed": billed_bytes,
                        "usage_bytes": current,
                        "amount_billed": format(billed, "f"),
                        "amount_rerated": format(rerated, "f"),
                    },
                    adjusts_invoice_id=invoice.pk,
                )
            )
    return out
