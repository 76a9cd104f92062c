"""Billing reads. Every selector takes the reseller (or an object already scoped to one)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet, Sum

from accounts.models import Customer, Reseller
from billing.models import Invoice, InvoiceEmail, InvoiceStatus, Subscription
from config.errors import NotFoundError
from usage.models import UsageDay


def usage_bytes_for_customer(
    *, customer: Customer, start_day: dt.date, end_day: dt.date
) -> dict[int, int]:
    """Bytes per sub-account id of one customer over the local days `[start_day, end_day)`."""
    rows = (
        UsageDay.objects.filter(
            sub_account__customer_id=customer.pk, day__gte=start_day, day__lt=end_day
        )
        .values("sub_account_id")
        .annotate(total=Sum("bytes"))
    )
    return {row["sub_account_id"]: int(row["total"] or 0) for row in rows}


def subscriptions_in_period(
    *, customer: Customer, start_day: dt.date, end_day: dt.date
) -> list[Subscription]:
    """The customer's subscriptions covering any day of `[start_day, end_day)`, in order."""
    return list(
        Subscription.objects.filter(customer_id=customer.pk, starts_on__lt=end_day)
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gt=start_day))
        .select_related("plan", "upstream_account")
        .defer("upstream_account__credentials")  # never decrypt secrets to bill
        .prefetch_related("plan__tiers")
        .order_by("starts_on", "pk")
    )


def customers_to_invoice(
    *, reseller: Reseller, start_day: dt.date, end_day: dt.date
) -> QuerySet[Customer]:
    """Customers with a subscription in the period or any stored usage in it."""
    with_subscription = Subscription.objects.filter(
        customer__reseller_id=reseller.pk, starts_on__lt=end_day
    ).filter(Q(ends_on__isnull=True) | Q(ends_on__gt=start_day))
    with_usage = UsageDay.objects.filter(
        sub_account__customer__reseller_id=reseller.pk,
        day__gte=start_day,
        day__lt=end_day,
        bytes__gt=0,
    )
    return (
        Customer.objects.for_reseller(reseller)
        .filter(
            Q(pk__in=with_subscription.values("customer_id"))
            | Q(pk__in=with_usage.values("sub_account__customer_id"))
        )
        .select_related("reseller")
        .order_by("pk")
    )


def invoice_list(
    *, reseller: Reseller, status: str | None = None, customer_id: int | None = None
) -> QuerySet[Invoice]:
    qs = Invoice.objects.for_reseller(reseller).select_related("customer")
    if status:
        qs = qs.filter(status=status)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    return qs


def invoice_get(*, reseller: Reseller, invoice_id: int) -> Invoice:
    """One invoice of this reseller; another reseller's id is simply not found."""
    invoice = (
        Invoice.objects.for_reseller(reseller)
        .select_related("customer", "reseller")
        .filter(pk=invoice_id)
        .first()
    )
    if invoice is None:
        raise NotFoundError("Invoice not found.")
    return invoice


def invoices_issued_for_customer(
    *, customer: Customer, before: dt.date, since: dt.date
) -> list[Invoice]:
    """Issued (finalized or paid) invoices of periods in `[since, before)`, oldest first."""
    return list(
        Invoice.objects.filter(
            customer_id=customer.pk,
            status__in=[InvoiceStatus.FINALIZED, InvoiceStatus.PAID],
            period_start__lt=before,
            period_start__gte=since,
        ).order_by("period_start")
    )


def invoice_emails(*, invoice: Invoice) -> QuerySet[InvoiceEmail]:
    return InvoiceEmail.objects.filter(invoice_id=invoice.pk).order_by("sequence")
