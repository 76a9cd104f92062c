"""The Flowbill admin site: for reseller staff, the index is their dashboard.

- Reseller staff: `/admin/` shows their reseller's dashboard (`billing.dashboard.page`), with the
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
from django.utils import timezone

from accounts.models import Reseller
from accounts.tenancy import is_platform_admin, reseller_for_user


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
        return get_object_or_404(Reseller, pk=int(value))

    def index(self, request, extra_context=None):
        reseller = self.dashboard_reseller(request)
        if reseller is None:
            resellers = (
                list(Reseller.objects.order_by("name")) if is_platform_admin(request.user) else []
            )
            return super().index(request, {"resellers": resellers, **(extra_context or {})})
        from billing.dashboard.page import dashboard_page

        return dashboard_page(
            request, site=self, reseller=reseller, now=self.now(), extra_context=extra_context
        )
