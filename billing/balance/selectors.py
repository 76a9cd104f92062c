"""Balance reads: a customer's balance per currency and its ledger (one figure for the API,
the admin, the PDF and the invoice engine)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import models
from django.db.models import Sum

from accounts.models import Customer
from billing.balance.models import BalanceEntry, BalanceEntryKind, CustomerBalance
from billing.models import Invoice

ZERO = Decimal(0)


@dataclass(frozen=True)
class BalanceFigure:
    currency: str
    amount: Decimal
    auto_top_up_threshold: Decimal | None = None
    auto_top_up_amount: Decimal | None = None


def balance_amount(*, balance: CustomerBalance) -> Decimal:
    """The sum of the balance's entries (read under the balance's lock to act on it)."""
    total = BalanceEntry.objects.filter(
        reseller_id=balance.reseller_id, balance_id=balance.pk
    ).aggregate(s=Sum("amount"))["s"]
    return Decimal(total or ZERO)


def customer_balances(*, customer: Customer) -> list[BalanceFigure]:
    """The customer's balance in each currency it has one in (the customer's currency
    first, shown at 0 when it has none yet)."""
    rows = {
        row.currency: row
        for row in CustomerBalance.objects.filter(
            reseller_id=customer.reseller_id, customer_id=customer.pk
        )
    }
    sums = dict(
        BalanceEntry.objects.filter(reseller_id=customer.reseller_id, customer_id=customer.pk)
        .order_by()
        .values_list("currency")
        .annotate(s=Sum("amount"))
    )
    currencies = [customer.currency, *sorted(set(rows) - {customer.currency})]
    return [
        BalanceFigure(
            currency=currency,
            amount=Decimal(sums.get(currency) or ZERO),
            auto_top_up_threshold=getattr(rows.get(currency), "auto_top_up_threshold", None),
            auto_top_up_amount=getattr(rows.get(currency), "auto_top_up_amount", None),
        )
        for currency in currencies
    ]


def balance_entries_for_customer(*, customer: Customer) -> models.QuerySet[BalanceEntry]:
    """The customer's ledger, newest first, with the documents' numbers in one query."""
    return (
        BalanceEntry.objects.filter(reseller_id=customer.reseller_id, customer_id=customer.pk)
        .select_related("invoice", "credit_note", "top_up__invoice")
        .order_by("-created_at", "-pk")
    )


def invoice_amount_on_balance(*, invoice: Invoice) -> Decimal:
    """What a top-up invoice put on the balance once paid (0 before)."""
    total = BalanceEntry.objects.filter(
        reseller_id=invoice.reseller_id, invoice_id=invoice.pk, kind=BalanceEntryKind.TOP_UP
    ).aggregate(s=Sum("amount"))["s"]
    return Decimal(total or ZERO)
