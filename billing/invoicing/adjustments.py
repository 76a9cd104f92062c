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
from collections import defaultdict
from decimal import Decimal

from accounts.models import Customer, SubAccount
from billing.invoicing.compute import LineDraft, in_scope
from billing.models import InvoiceLine, InvoiceStatus, Subscription
from billing.rating import rate_subscription, usage_quantity
from billing.selectors import invoices_issued_for_customer, usage_bytes_for_customer
from billing.services import terms_from_json

#: How far back late usage is looked for (upstreams revise usage for days, not months).
ADJUSTMENT_LOOKBACK_DAYS = 190
ISSUED = [InvoiceStatus.FINALIZED, InvoiceStatus.PAID]


def adjustment_lines(
    *, customer: Customer, before: dt.date, exclude_invoice_id: int | None = None
) -> list[LineDraft]:
    """Adjustment lines for issued periods before `before` whose usage changed since."""
    issued = invoices_issued_for_customer(
        customer=customer,
        before=before,
        since=before - dt.timedelta(days=ADJUSTMENT_LOOKBACK_DAYS),
    )
    issued = [inv for inv in issued if inv.pk != exclude_invoice_id]
    if not issued:
        return []
    billed_lines = defaultdict(list)
    for line in (
        InvoiceLine.objects.filter(invoice__in=issued)
        .exclude(kind=InvoiceLine.Kind.ADJUSTMENT)
        .values("invoice_id", "subscription_id", "amount")
    ):
        billed_lines[(line["invoice_id"], line["subscription_id"])].append(line["amount"])
    adjustments = defaultdict(list)
    for line in (
        InvoiceLine.objects.filter(
            kind=InvoiceLine.Kind.ADJUSTMENT,
            adjusts_invoice__in=issued,
            invoice__status__in=ISSUED,
        )
        .exclude(invoice_id=exclude_invoice_id)
        .order_by("invoice__finalized_at", "invoice_id", "position")
        .values("adjusts_invoice_id", "subscription_id", "amount", "details")
    ):
        adjustments[(line["adjusts_invoice_id"], line["subscription_id"])].append(line)
    sub_accounts = list(
        SubAccount.objects.filter(customer_id=customer.pk).only("pk", "upstream_account_id")
    )
    out: list[LineDraft] = []
    for invoice in issued:
        frozen_subs = invoice.snapshot.get("subscriptions", {})
        if not frozen_subs:
            continue
        subscriptions = {
            s.pk: s for s in Subscription.objects.filter(pk__in=[int(k) for k in frozen_subs])
        }
        usage_cache: dict[tuple[str, str], dict[int, int]] = {}
        for key, frozen in frozen_subs.items():
            subscription = subscriptions.get(int(key))
            if subscription is None:
                continue
            window = (frozen["active_start"], frozen["active_end"])
            if window not in usage_cache:
                usage_cache[window] = usage_bytes_for_customer(
                    customer=customer,
                    start_day=dt.date.fromisoformat(window[0]),
                    end_day=dt.date.fromisoformat(window[1]),
                )
            per_sa = usage_cache[window]
            current = sum(per_sa.get(sa.pk, 0) for sa in sub_accounts if in_scope(subscription, sa))
            previous = adjustments[(invoice.pk, subscription.pk)]
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
            billed = sum(billed_lines[(invoice.pk, subscription.pk)], Decimal(0)) + sum(
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
