"""Billing reads. Every selector takes the reseller (or an object already scoped to one)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import F, Prefetch, Q, QuerySet

from accounts.models import Customer, Reseller
from accounts.selectors import held_customers_q
from billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, Subscription
from usage.models import UsageDay


def customers_to_invoice(
    *, reseller: Reseller, start_day: dt.date, end_day: dt.date
) -> QuerySet[Customer]:
    """Customers with a subscription active on a day of the period or stored usage of a day
    of it on which they held the sub-account (what the cycle creates drafts for; a draft of
    a customer no longer in it is discarded instead of finalized:
    `billing.invoicing.engine.nothing_billable`)."""
    with_subscription = (
        Subscription.objects.filter(customer__reseller_id=reseller.pk, starts_on__lt=end_day)
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gt=start_day))
        .exclude(ends_on__lte=F("starts_on"))  # a subscription that never started
    )
    with_usage = UsageDay.objects.filter(
        sub_account__customer__reseller_id=reseller.pk,
        day__gte=start_day,
        day__lt=end_day,
        bytes__gt=0,
    )
    return (
        Customer.objects.for_reseller(reseller)
        .filter(Q(pk__in=with_subscription.values("customer_id")) | held_customers_q(with_usage))
        .select_related("reseller")
        .order_by("pk")
    )


def customers_with_voided_period(*, reseller: Reseller, period_start: dt.date) -> set[int]:
    """Ids of the reseller's customers whose invoice of the period was voided and that have
    no live (draft or issued) invoice of it: the cycle does not bill those again by itself."""
    invoices = Invoice.objects.for_reseller(reseller).filter(
        period_start=period_start, kind=InvoiceKind.PERIOD
    )
    voided = set(invoices.filter(status=InvoiceStatus.VOID).values_list("customer_id", flat=True))
    if not voided:
        return voided
    live = invoices.exclude(status=InvoiceStatus.VOID).filter(customer_id__in=voided)
    return voided - set(live.values_list("customer_id", flat=True))


# --- API reads ------------------------------------------------------------------------------

#: What a customer may see of its invoices: drafts are the reseller's work in progress.
CUSTOMER_VISIBLE_STATUSES = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID, InvoiceStatus.VOID)


def invoices_with_lines(queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """An (already tenant-scoped) invoice queryset with its lines, in order, in one query,
    and the number of the voided invoice each replaces (`replaces_number`)."""
    return queryset.annotate(replaces_number=F("replaces__number")).prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.order_by("position"))
    )


def invoice_lines_rows(
    *, reseller: Reseller, invoice_ids: list[int], columns: Iterable[str]
) -> QuerySet[InvoiceLine]:
    """The lines of the reseller's invoices `invoice_ids` as rows (`invoice_id` and
    `columns`), by invoice and position: a list page's lines in one query."""
    return (
        InvoiceLine.objects.for_reseller(reseller)
        .filter(invoice_id__in=invoice_ids)
        .order_by("invoice_id", "position")
        .values("invoice_id", *columns)
    )
