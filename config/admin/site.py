"""The Flowbill admin site: for reseller staff, the index is their dashboard.

- Reseller staff: `/admin/` shows their reseller's dashboard (`billing.dashboard`), with the
  usual app list below it. A `?reseller=` parameter is ignored for them: staff only ever
  see their own reseller.
- Superusers (no reseller): the plain index with a reseller picker; `?reseller=<id>` shows
  that reseller's dashboard.
- Staff without a reseller: the plain index (which lists nothing they may open).
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.models import Reseller
from accounts.tenancy import is_platform_admin, request_reseller_set, reseller_for_user
from billing.money import format_money
from config.admin.charts import MonthPoint, revenue_margin_chart


class FlowbillAdminSite(admin.AdminSite):
    site_header = "Flowbill"
    site_title = "Flowbill"
    index_title = "Billing administration"
    index_template = "admin/flowbill/index.html"

    @staticmethod
    def now() -> dt.datetime:
        """The dashboard's clock (tests pin it)."""
        return timezone.now()

    def dashboard_reseller(self, request) -> Reseller | None:
        if not is_platform_admin(request.user):
            return reseller_for_user(request.user)
        value = request.GET.get("reseller", "")
        if not value:
            return None
        if not value.isdigit():
            raise Http404("No such reseller.")
        reseller = get_object_or_404(Reseller, pk=int(value))
        request_reseller_set(reseller)  # the operator looks at this reseller's figures
        return reseller

    def index(self, request, extra_context=None):
        reseller = self.dashboard_reseller(request)
        if reseller is None:
            resellers = (
                list(Reseller.objects.order_by("name")) if is_platform_admin(request.user) else []
            )
            return super().index(request, {"resellers": resellers, **(extra_context or {})})
        from billing.dashboard import dashboard_build

        dashboard = dashboard_build(reseller=reseller, now=self.now())
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
            **self.each_context(request),
            "title": reseller.name,
            "dashboard": dashboard,
            "trend_chart": trend_chart,
            "app_list": self.get_app_list(request),
            "platform_admin": is_platform_admin(request.user),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/flowbill/dashboard.html", context)
