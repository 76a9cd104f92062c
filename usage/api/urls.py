"""Usage routes of `/api/v1/`: reseller scope under `reseller/`, customer scope on top.

config/urls.py includes this under `api/v1/` next to accounts.api.urls.
"""

from django.urls import include, path

from usage.api import openapi, views  # noqa: F401 (openapi: texts)

reseller_patterns: list = [
    path("usage/", views.ResellerUsageView.as_view(), name="usage"),
    path("sync/", views.ResellerSyncView.as_view(), name="sync"),
    path("sync-runs/", views.SyncRunListView.as_view(), name="sync-run-list"),
    path("sync-runs/<int:pk>/", views.SyncRunDetailView.as_view(), name="sync-run-detail"),
    path(
        "usage-alert-rules/",
        views.UsageAlertRuleListCreateView.as_view(),
        name="usage-alert-rule-list",
    ),
    path(
        "usage-alert-rules/<int:pk>/",
        views.UsageAlertRuleDetailView.as_view(),
        name="usage-alert-rule-detail",
    ),
    # Next to accounts' `sub-accounts/<pk>/` (its pattern ends there, so no clash).
    path(
        "sub-accounts/<int:pk>/allocations/",
        views.SubAccountAllocationListCreateView.as_view(),
        name="sub-account-allocation-list",
    ),
    path(
        "sub-accounts/<int:pk>/traffic/",
        views.SubAccountTrafficView.as_view(),
        name="sub-account-traffic",
    ),
]

customer_patterns: list = [
    path("usage/", views.MyUsageView.as_view(), name="usage"),
]

urlpatterns = [
    path("reseller/", include((reseller_patterns, "usage-reseller"))),
    path("", include((customer_patterns, "usage-customer"))),
]
