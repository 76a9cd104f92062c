"""What an invoice says, computed from current usage: lines, usage rows and totals.

Nothing here writes. `invoice_compute` is used by draft creation and refresh, by
finalization (which re-rates once more inside its transaction) and by previews, so all
three always agree. Per subscription active in the period: the bytes of the customer's
sub-accounts in its scope over its active days, rated with `rate_subscription` (base fee and
minimum prorated by active days / period days). Adjustments for earlier, already issued
periods are appended (see `billing.invoicing.adjustments`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from accounts.models import Customer, SubAccount
from billing.invoicing.adjustments import adjustment_lines
from billing.invoicing.context import RatingContext
from billing.invoicing.lines import LineDraft, UsageDraft, in_scope, subscription_group
from billing.invoicing.periods import Period
from billing.plans.terms import terms_to_json
from billing.rating import Totals, invoice_totals, rate_subscription, unit_note
from core.errors import ApplicationError


@dataclass
class InvoiceComputation:
    currency: str
    tax_rate: Decimal
    lines: list[LineDraft]
    usage: list[UsageDraft]
    totals: Totals
    subscriptions: dict[str, dict[str, Any]]  # frozen terms per subscription id (snapshot)
    unit_notes: list[str]


def invoice_compute(
    *,
    customer: Customer,
    period: Period,
    exclude_invoice_id: int | None = None,
    context: RatingContext | None = None,
) -> InvoiceComputation:
    """Rate the customer's period from current usage, plus adjustments of earlier periods.

    `context`: rows prefetched for a chunk of customers of the same period (see
    `billing.invoicing.context`); without it they are read for this customer alone.
    """
    if context is None or context.period != period:
        context = RatingContext(customers=[customer], period=period)
    currency = customer.currency
    sub_accounts = context.sub_accounts(customer.pk)
    lines: list[LineDraft] = []
    usage: list[UsageDraft] = []
    frozen: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    covered: set[int] = set()
    for subscription in context.subscriptions(customer.pk):
        window = subscription.active_window(period.start, period.end)
        if window is None:
            continue
        plan = subscription.plan
        if plan.currency != currency:
            raise ApplicationError(
                "currency_mismatch",
                f"Plan {plan.code} is priced in {plan.currency}; the customer pays {currency}.",
            )
        terms = context.terms(plan)
        active_days = (window[1] - window[0]).days
        per_sub_account = context.usage(customer.pk, *window)
        scoped = [sa for sa in sub_accounts if in_scope(subscription, sa)]
        total_bytes = sum(per_sub_account.get(sa.pk, 0) for sa in scoped)
        group = subscription_group(subscription)
        for rated in rate_subscription(
            terms=terms, usage_bytes=total_bytes, active_days=active_days, period_days=period.days
        ):
            lines.append(
                LineDraft(
                    kind=rated.kind,
                    description=rated.description,
                    amount=rated.amount,
                    group=group,
                    subscription_id=subscription.pk,
                    quantity=rated.quantity,
                    unit=rated.unit,
                    unit_price=rated.unit_price,
                    details=rated.details,
                )
            )
        for sa in scoped:
            nbytes = per_sub_account.get(sa.pk, 0)
            if nbytes:
                covered.add(sa.pk)
                usage.append(_usage_row(subscription.pk, sa, nbytes))
        frozen[str(subscription.pk)] = {
            "group": group,
            "terms": terms_to_json(terms),
            "active_start": window[0].isoformat(),
            "active_end": window[1].isoformat(),
            "active_days": active_days,
            "period_days": period.days,
            "usage_bytes": total_bytes,
        }
        note = unit_note(terms.unit_bytes)
        if note not in notes:
            notes.append(note)
    # Usage no subscription covers is shown (unbilled) so nothing disappears silently.
    whole = context.usage(customer.pk, period.start, period.end)
    for sa in sub_accounts:
        if sa.pk not in covered and whole.get(sa.pk, 0):
            usage.append(_usage_row(None, sa, whole[sa.pk]))
    lines.extend(
        adjustment_lines(
            customer=customer,
            before=period.start,
            exclude_invoice_id=exclude_invoice_id,
            context=context,
        )
    )
    totals = invoice_totals(
        amounts=[line.amount for line in lines], tax_rate=customer.tax_rate, currency=currency
    )
    return InvoiceComputation(
        currency=currency,
        tax_rate=customer.tax_rate,
        lines=lines,
        usage=usage,
        totals=totals,
        subscriptions=frozen,
        unit_notes=notes or [unit_note(1_073_741_824)],
    )


def invoice_preview(*, customer: Customer, period_start: dt.date) -> InvoiceComputation:
    """What the customer's invoice for a (possibly unfinished) period says now; never saved."""
    return invoice_compute(customer=customer, period=Period.starting(period_start))


def _usage_row(subscription_id: int | None, sa: SubAccount, nbytes: int) -> UsageDraft:
    return UsageDraft(
        subscription_id=subscription_id,
        sub_account_id=sa.pk,
        sub_account_label=str(sa)[:200],
        upstream_name=sa.upstream_account.name[:100],
        bytes=nbytes,
    )
