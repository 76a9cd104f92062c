"""The rows an invoice computation produces before they are stored: lines and usage rows.

Shared by `compute` (the period's own lines) and `adjustments` (late-usage lines of earlier
periods), so neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from accounts.models import SubAccount
from billing.models import InvoiceLine, Subscription

QUANTITY_PLACES = Decimal("1e-12")


@dataclass
class LineDraft:
    kind: str
    description: str
    amount: Decimal
    group: str = ""
    subscription_id: int | None = None
    quantity: Decimal | None = None
    unit: str = ""
    unit_price: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)
    adjusts_invoice_id: int | None = None
    sub_account_id: int | None = None

    def to_model(self, *, invoice_id: int, position: int) -> InvoiceLine:
        quantity = (
            None
            if self.quantity is None
            else self.quantity.quantize(QUANTITY_PLACES, rounding=ROUND_HALF_UP)
        )
        return InvoiceLine(
            invoice_id=invoice_id,
            position=position,
            subscription_id=self.subscription_id,
            kind=self.kind,
            group=self.group[:200],
            description=self.description[:300],
            sub_account_id=self.sub_account_id,
            quantity=quantity,
            unit=self.unit,
            unit_price=self.unit_price,
            amount=self.amount,
            details=self.details,
            adjusts_invoice_id=self.adjusts_invoice_id,
        )


@dataclass
class UsageDraft:
    subscription_id: int | None
    sub_account_id: int
    sub_account_label: str
    upstream_name: str
    bytes: int


def subscription_group(subscription: Subscription) -> str:
    return f"{subscription.plan.name} - {subscription.scope_label}"


def in_scope(subscription: Subscription, sub_account: SubAccount) -> bool:
    return (
        subscription.upstream_account_id is None
        or sub_account.upstream_account_id == subscription.upstream_account_id
    )
