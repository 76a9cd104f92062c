"""Monthly revenue, upstream cost and margin over the last months, for the trend chart.

Closed months, in the reseller's currency, are `billing.figures.money_by_month` (the one
selector of revenue, cost and margin per currency): revenue is the net of the month's
invoices (issued and drafts; void ones count for nothing) less the net of their credit
notes; cost is the traffic of the customers billed in that currency at each upstream
account's cost per GB. Customers billed in another currency are not on the chart (upstream
cost is in the reseller's currency); the dashboard's "Money by currency" panel lists them.
The running month is the estimate of `dashboard_period_figures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from accounts.models import Reseller
from billing.dashboard.figures import PeriodFigures
from billing.figures import money_by_month
from billing.invoicing.periods import Period

MIN_MONTHS = 6
ZERO = Decimal(0)


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
    currency = reseller.currency
    closed = money_by_month(reseller=reseller, start=periods[0].start, end=current.period.start)
    out = []
    for period in periods[:-1]:
        month = closed.get((period.start, currency))
        out.append(
            MonthFigures(
                period=period,
                revenue=month.revenue if month else ZERO,
                cost=month.cost if month and month.cost is not None else ZERO,
            )
        )
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
