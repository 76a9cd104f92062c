"""Monthly revenue, upstream cost and margin over the last months, for the trend chart.

Closed months: revenue is what the invoices of the period say (drafts, finalized and paid;
void ones count for nothing), net of tax and without adjustment lines, in the reseller's
currency. The running month is the estimate of `dashboard_period_figures`. Cost is the
month's `UsageDay` traffic at each upstream account's current cost per GB, rounded per
(customer, upstream account) cell like the period figures.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from accounts.models import Reseller, SubAccount, UpstreamAccount
from billing.dashboard.figures import PeriodFigures
from billing.dashboard.units import upstream_cost
from billing.invoicing import Period
from billing.models import InvoiceLine, InvoiceStatus
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
    revenue = {
        row["invoice__period_start"]: row["total"] or Decimal(0)
        for row in InvoiceLine.objects.for_reseller(reseller)
        .filter(
            invoice__status__in=[InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED, InvoiceStatus.PAID],
            invoice__currency=currency,
            invoice__period_start__gte=first,
            invoice__period_start__lt=closed_end,
        )
        .exclude(kind=InvoiceLine.Kind.ADJUSTMENT)
        .values("invoice__period_start")
        .annotate(total=Sum("amount"))
    }
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
