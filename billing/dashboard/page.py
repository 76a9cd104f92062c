"""The dashboard page: the admin index reseller staff see (`config.admin.site` decides whose
dashboard it is and hands over here). Builds the sections (`billing.dashboard`), draws the
trend chart (`core.charts`) and renders `admin/flowbill/dashboard.html`."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.template.response import TemplateResponse

from accounts.models import Reseller
from accounts.tenancy import is_platform_admin
from billing.dashboard import dashboard_build
from billing.money import format_money
from core.charts import MonthPoint, revenue_margin_chart


def dashboard_page(
    request,
    *,
    site: admin.AdminSite,
    reseller: Reseller,
    now: dt.datetime,
    extra_context: dict | None = None,
) -> TemplateResponse:
    """`reseller`'s dashboard as the index of admin `site`, with the site's app list below."""
    dashboard = dashboard_build(reseller=reseller, now=now)
    currency = reseller.currency
    trend_chart = revenue_margin_chart(
        months=[
            MonthPoint(
                label=f"{m.period.start:%b %y}",
                revenue=m.revenue,
                cost=m.cost,
                estimated=m.estimated,
            )
            for m in dashboard.trend
        ],
        currency_text=lambda amount: format_money(amount, currency),
        label=f"Monthly revenue, upstream cost and margin ({currency})",
    )
    context = {
        **site.each_context(request),
        "title": reseller.name,
        "dashboard": dashboard,
        "trend_chart": trend_chart,
        "app_list": site.get_app_list(request),
        "platform_admin": is_platform_admin(request.user),
        **(extra_context or {}),
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/flowbill/dashboard.html", context)
