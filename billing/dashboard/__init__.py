"""The reseller dashboard (the admin index for reseller staff): read-only figures.

Revenue comes from the billing engine (`billing.invoicing.compute.invoice_preview`), traffic from
the usage tables; nothing here writes. Sections, each a selector taking the reseller:
- `figures`: this period so far per customer and upstream account (traffic, estimated
  revenue, upstream cost, margin), top customers first;
- `health`: sync health per upstream account;
- `attention`: invoices needing attention;
- `reconciliation`: upstream-reported traffic against billed traffic;
- `trend`: monthly revenue, cost and margin;
- `money` and `receivables`: last month's invoiced, credited, paid and due amounts and what
  customers owe now, one row per currency (`billing.figures`, the selector the API's
  `reseller/figures/` and the CSV exports read too);
plus the usage alerts fired this period (`usage.alerts`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from accounts.models import Reseller
from billing.dashboard.attention import AttentionGroup, dashboard_invoices_attention
from billing.dashboard.figures import PeriodFigures, dashboard_period_figures
from billing.dashboard.health import UpstreamHealth, dashboard_sync_health
from billing.dashboard.prepaid import PrepaidTraffic, dashboard_prepaid_traffic
from billing.dashboard.reconciliation import UpstreamReconciliation, dashboard_reconciliation
from billing.dashboard.trend import MonthFigures, dashboard_monthly_trend
from billing.figures import (
    CurrencyMonth,
    CurrencyReceivables,
    money_for_month,
    receivables_by_currency,
)
from usage.alerts import usage_alerts_list
from usage.models import UsageAlert


@dataclass
class Dashboard:
    reseller: Reseller
    now: dt.datetime
    figures: PeriodFigures
    health: list[UpstreamHealth]
    attention: list[AttentionGroup]
    reconciliation: list[UpstreamReconciliation]
    prepaid: list[PrepaidTraffic]
    trend: list[MonthFigures]
    alerts: list[UsageAlert]
    money: list[CurrencyMonth]
    receivables: list[CurrencyReceivables]

    @property
    def failing_count(self) -> int:
        return sum(len(h.failing) for h in self.health)

    @property
    def stale_count(self) -> int:
        return sum(len(h.stale) for h in self.health)

    @property
    def upstream_errors(self) -> list[UpstreamHealth]:
        return [h for h in self.health if h.upstream_error]

    @property
    def flagged_reconciliation(self) -> list[UpstreamReconciliation]:
        return [r for r in self.reconciliation if r.available and r.flagged]

    @property
    def attention_count(self) -> int:
        return sum(g.count for g in self.attention)

    @property
    def all_clear(self) -> bool:
        problems = [g for g in self.attention if g.severity == "danger" and g.count]
        return not (
            self.failing_count
            or self.stale_count
            or self.upstream_errors
            or problems
            or self.flagged_reconciliation
            or self.alerts
            or self.figures.rating_errors
        )


def dashboard_build(*, reseller: Reseller, now: dt.datetime) -> Dashboard:
    figures = dashboard_period_figures(reseller=reseller, now=now)
    return Dashboard(
        reseller=reseller,
        now=now,
        figures=figures,
        health=dashboard_sync_health(reseller=reseller, now=now),
        attention=dashboard_invoices_attention(reseller=reseller, now=now),
        reconciliation=dashboard_reconciliation(reseller=reseller),
        prepaid=dashboard_prepaid_traffic(reseller=reseller),
        trend=dashboard_monthly_trend(reseller=reseller, current=figures),
        alerts=usage_alerts_list(reseller=reseller, period_start=figures.period.start),
        money=money_for_month(reseller=reseller, period_start=figures.period.previous().start),
        receivables=receivables_by_currency(reseller=reseller, now=now),
    )


__all__ = ["Dashboard", "dashboard_build"]
