"""What a traffic pack costs: the customer's plan price for that many bytes.

The plan is that of the customer's subscription active on the day (in the sub-account's
scope when one is named; the most recent start first). The pack is rated by the plan's usage
price alone (`billing.rating.rate_usage`, the engine's pricing function) as if those bytes
were a month's usage of their own: graduated tiers from the first GB, the volume tier the
pack's size falls in, whole packages; no base fee, no minimum. A plan that prices the pack at
0 (a free allowance tier) is refused (409 `top_up_free`): there is nothing to invoice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q

from accounts.models import Customer, SubAccount
from billing.invoicing.lines import in_scope
from billing.models import Subscription
from billing.money import quantize_money
from billing.plans.terms import plan_terms
from billing.rating import rate_usage, usage_quantity
from core.errors import ApplicationError


@dataclass(frozen=True)
class PackPrice:
    amount: Decimal
    quantity: Decimal  # GB in the plan's unit
    subscription: Subscription
    details: dict


def top_up_pack_price(
    *, customer: Customer, nbytes: int, day: dt.date, sub_account: SubAccount | None = None
) -> PackPrice:
    subscriptions = [
        s
        for s in Subscription.objects.for_reseller(customer.reseller_id)
        .filter(customer_id=customer.pk, starts_on__lte=day)
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gt=day))
        .select_related("plan")
        .order_by("-starts_on", "-pk")
        if sub_account is None or in_scope(s, sub_account)
    ]
    if not subscriptions:
        raise ApplicationError(
            "no_plan_price",
            "The customer has no subscription active today"
            + (" covering that sub-account" if sub_account else "")
            + " to price the traffic.",
        )
    subscription = subscriptions[0]
    terms = plan_terms(plan=subscription.plan)
    lines = rate_usage(terms=terms, usage_bytes=nbytes)
    amount = quantize_money(sum((line.amount for line in lines), start=Decimal(0)), terms.currency)
    if amount <= 0:
        raise ApplicationError(
            "top_up_free",
            f"Plan {subscription.plan.code} prices {nbytes} bytes at 0: nothing to invoice.",
        )
    return PackPrice(
        amount=amount,
        quantity=usage_quantity(nbytes, terms.unit_bytes),
        subscription=subscription,
        details={
            "bytes": nbytes,
            "plan": subscription.plan.code,
            "unit_bytes": terms.unit_bytes,
            "rated": [
                {"description": line.description, "amount": str(line.amount)} for line in lines
            ],
        },
    )
