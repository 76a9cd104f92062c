"""Usage routes of `/api/v1/`: reseller scope under `reseller/`, customer scope on top.

config/urls.py includes this under `api/v1/` next to accounts.api.urls.
"""

from django.urls import include, path

from usage.api import (  # noqa: F401 (openapi, provisioning_openapi: texts)
    openapi,
    provisioning_openapi,
    provisioning_views,
    suspension_views,
    views,
)

reseller_patterns: list = [
    path(
        "customers/<int:pk>/suspend/",
        suspension_views.CustomerSuspendView.as_view(),
        name="customer-suspend",
    ),
    path(
        "customers/<int:pk>/reinstate/",
        suspension_views.CustomerReinstateView.as_view(),
        name="customer-reinstate",
    ),
    # Moved from accounts (it cuts the sub-account off upstream): same path and name.
    path(
        "sub-accounts/<int:pk>/close/",
        suspension_views.SubAccountCloseView.as_view(),
        name="sub-account-close",
    ),
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
    # The sub-account list and manual add, provisioning and its records (accounts serves
    # `sub-accounts/<int:pk>/`: `provision/` and `provisionings/` never match an int).
    path(
        "sub-accounts/",
        provisioning_views.SubAccountListCreateView.as_view(),
        name="sub-account-list",
    ),
    path(
        "sub-accounts/provision/",
        provisioning_views.SubAccountProvisionView.as_view(),
        name="sub-account-provision",
    ),
    path(
        "sub-accounts/provisionings/",
        provisioning_views.ProvisioningListView.as_view(),
        name="sub-account-provisioning-list",
    ),
    path(
        "sub-accounts/provisionings/<int:pk>/",
        provisioning_views.ProvisioningDetailView.as_view(),
        name="sub-account-provisioning-detail",
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
    path(
        "sub-accounts/",
        provisioning_views.MySubAccountListView.as_view(),
        name="my-sub-account-list",
    ),
]

urlpatterns = [
    path("reseller/", include((reseller_patterns, "usage-reseller"))),
    path("", include((customer_patterns, "usage-customer"))),
]
