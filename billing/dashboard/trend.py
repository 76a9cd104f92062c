"""Monthly revenue, upstream cost and margin over the last months, for the trend chart.

Closed months, per the documents: revenue is the net (before tax) of the period's invoices
(drafts, finalized and paid; void ones count for nothing) less the net of the credit notes
issued against them, for customers billed in the reseller's currency. Cost is the month's
`UsageDay` traffic of those same customers at each upstream account's current cost per GB,
rounded per (customer, upstream account) cell like the period figures, so revenue, cost and
margin are of the same customers in one currency. Customers billed in another currency are
not on the chart (their figures are per currency elsewhere; upstream cost is in the
reseller's currency). The running month is the estimate of `dashboard_period_figures`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, Sum

from accounts.models import Customer, Reseller, SubAccount, UpstreamAccount
from billing.credit_notes.models import CreditNote
from billing.dashboard.figures import PeriodFigures
from billing.dashboard.units import upstream_cost
from billing.invoicing import Period
from billing.models import Invoice, InvoiceStatus
from billing.money import quantize_money
from usage.selectors import usage_monthly_totals

MIN_MONTHS = 6


@dataclass(frozen=True)
class MonthFigures:
    period: Period
    revenue: Decimal
    cost: Decimal
    estimated: bool = False

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost


def dashboard_monthly_trend(
    *, reseller: Reseller, current: PeriodFigures, months: int = 12
) -> list[MonthFigures]:
    periods = [current.period]
    while len(periods) < months:
        periods.insert(0, periods[0].previous())
    first, closed_end = periods[0].start, current.period.start
    currency = reseller.currency
    invoices = Invoice.objects.for_reseller(reseller).filter(
        status__in=[InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED, InvoiceStatus.PAID],
        currency=currency,
        period_start__gte=first,
        period_start__lt=closed_end,
    )
    revenue: dict = defaultdict(Decimal)
    for row in invoices.values("period_start").annotate(net=Sum("subtotal")).order_by():
        revenue[row["period_start"]] += row["net"] or Decimal(0)
    for row in (
        CreditNote.objects.filter(invoice__in=invoices)
        .values("invoice__period_start")
        .annotate(net=Sum("subtotal"))
        .order_by()
    ):
        revenue[row["invoice__period_start"]] -= row["net"] or Decimal(0)
    same_currency = set(
        Customer.objects.for_reseller(reseller)
        .filter(Q(currency=currency) | Q(currency=""))
        .values_list("pk", flat=True)
    )
    upstreams = {
        u.pk: u for u in UpstreamAccount.objects.for_reseller(reseller).defer("credentials")
    }
    sub_map = {
        pk: (customer_id, upstream_id)
        for pk, customer_id, upstream_id in SubAccount.objects.for_reseller(reseller).values_list(
            "pk", "customer_id", "upstream_account_id"
        )
    }
    cells: dict[tuple, int] = defaultdict(int)  # (month, customer, upstream) -> bytes
    for sub_id, series in usage_monthly_totals(
        reseller=reseller, start_day=first, end_day=closed_end
    ).items():
        customer_id, upstream_id = sub_map[sub_id]
        if customer_id not in same_currency:
            continue  # billed in another currency: not comparable with upstream cost
        for month, nbytes in series:
            cells[(month, customer_id, upstream_id)] += nbytes
    cost: dict = defaultdict(Decimal)
    for (month, _, upstream_id), nbytes in cells.items():
        cost[month] += upstream_cost(
            nbytes=nbytes, upstream=upstreams[upstream_id], currency=currency
        )
    out = [
        MonthFigures(
            period=period,
            revenue=quantize_money(revenue.get(period.start, Decimal(0)), currency),
            cost=cost.get(period.start, Decimal(0)),
        )
        for period in periods[:-1]
    ]
    out.append(
        MonthFigures(
            period=current.period, revenue=current.revenue, cost=current.cost, estimated=True
        )
    )
    # Leading months before the reseller had any revenue or cost say nothing: drop them,
    # keeping at least `MIN_MONTHS` on the chart.
    while len(out) > MIN_MONTHS and not (out[0].revenue or out[0].cost):
        out.pop(0)
    return out
