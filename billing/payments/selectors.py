"""Payment reads: what an invoice received, and the payments a tenant may see.

`amount_paid` of an invoice = its payments (less the part of each that went on the customer's
balance, `to_balance`) - their refunds (Decimal, the invoice currency).
The balance due built on it is `billing.credit_notes.selectors.invoices_with_credit_totals`
(one selector for amounts due: the API, the PDF, the admin, the exposure and the overdue
rule all read it).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import F, OuterRef, Prefetch, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Customer, Reseller
from billing.models import Invoice
from billing.payments.models import Payment, Refund

_AMOUNT = models.DecimalField(max_digits=20, decimal_places=4)
ZERO = Decimal(0)


def amount_paid_expression(invoice_ref: str = "pk") -> models.Expression:
    """`sum(payments) - sum(refunds)` of the invoice `OuterRef(invoice_ref)`, as correlated
    subqueries (no join, so other annotations are not multiplied)."""
    paid = (
        Payment.objects.filter(invoice_id=OuterRef(invoice_ref))
        .order_by()
        .values("invoice_id")
        .annotate(s=Sum(F("amount") - F("to_balance")))
        .values("s")
    )
    refunded = (
        Refund.objects.filter(payment__invoice_id=OuterRef(invoice_ref))
        .order_by()
        .values("payment__invoice_id")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    return Coalesce(Subquery(paid, output_field=_AMOUNT), Value(ZERO)) - Coalesce(
        Subquery(refunded, output_field=_AMOUNT), Value(ZERO)
    )


def invoice_amount_paid(*, invoice: Invoice) -> Decimal:
    """Payments minus refunds of one invoice (0 when it has none)."""
    zero = Value(ZERO)
    paid = Payment.objects.filter(invoice=invoice).aggregate(
        s=Coalesce(Sum(F("amount") - F("to_balance")), zero, output_field=_AMOUNT)
    )["s"]
    refunded = Refund.objects.filter(payment__invoice=invoice).aggregate(
        s=Coalesce(Sum("amount"), zero, output_field=_AMOUNT)
    )["s"]
    return Decimal(paid) - Decimal(refunded)


def payment_amount_refunded(*, payment: Payment) -> Decimal:
    """What was given back of the payment (uses prefetched `refunds` when present)."""
    cache = getattr(payment, "_prefetched_objects_cache", {})
    if "refunds" in cache:
        return sum((refund.amount for refund in cache["refunds"]), start=ZERO)
    total = payment.refunds.aggregate(s=Coalesce(Sum("amount"), Value(ZERO), output_field=_AMOUNT))
    return Decimal(total["s"])


def _with_refunds(queryset: models.QuerySet[Payment]) -> models.QuerySet[Payment]:
    return queryset.select_related("invoice").prefetch_related(
        Prefetch("refunds", queryset=Refund.objects.order_by("refunded_at", "pk"))
    )


def payments_for_reseller(*, reseller: Reseller) -> models.QuerySet[Payment]:
    return _with_refunds(Payment.objects.for_reseller(reseller))


def payments_for_customer(*, customer: Customer) -> models.QuerySet[Payment]:
    return _with_refunds(
        Payment.objects.filter(reseller_id=customer.reseller_id, customer_id=customer.pk)
    )


def payments_filter(
    queryset: models.QuerySet[Payment],
    *,
    reseller: Reseller,
    customer_id: int | None = None,
    invoice_id: int | None = None,
    method: str | None = None,
    paid_from: dt.date | None = None,
    paid_to: dt.date | None = None,
) -> models.QuerySet[Payment]:
    """Filters of the payments list; `paid_from`/`paid_to` are days (both inclusive) in the
    reseller's timezone."""
    if customer_id is not None:
        queryset = queryset.filter(customer_id=customer_id)
    if invoice_id is not None:
        queryset = queryset.filter(invoice_id=invoice_id)
    if method is not None:
        queryset = queryset.filter(method=method)
    tz = reseller.tzinfo
    if paid_from is not None:
        start = dt.datetime.combine(paid_from, dt.time.min, tzinfo=tz)
        queryset = queryset.filter(paid_at__gte=start)
    if paid_to is not None:
        end = dt.datetime.combine(paid_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        queryset = queryset.filter(paid_at__lt=end)
    return queryset
