"""Accounts routes of `/api/v1/`: reseller scope under `reseller/`, customer scope on top.

config/urls.py includes this under `api/v1/`; other apps' API routes (billing, usage) are
included next to it, and a JSON 404 catches everything else under `api/v1/`.
"""

from django.urls import include, path

from accounts.api import openapi, views  # noqa: F401 (openapi: texts)

reseller_patterns = [
    path(
        "upstream-accounts/",
        views.UpstreamAccountListCreateView.as_view(),
        name="upstream-account-list",
    ),
    path(
        "upstream-accounts/<int:pk>/",
        views.UpstreamAccountDetailView.as_view(),
        name="upstream-account-detail",
    ),
    path("customers/", views.CustomerListCreateView.as_view(), name="customer-list"),
    path("customers/<int:pk>/", views.CustomerDetailView.as_view(), name="customer-detail"),
    path(
        "customers/<int:customer_pk>/api-keys/",
        views.CustomerApiKeyListCreateView.as_view(),
        name="customer-api-key-list",
    ),
    path(
        "customers/<int:customer_pk>/api-keys/<int:key_pk>/",
        views.CustomerApiKeyDetailView.as_view(),
        name="customer-api-key-detail",
    ),
    path("api-keys/", views.ResellerApiKeyListCreateView.as_view(), name="api-key-list"),
    path("api-keys/<int:pk>/", views.ResellerApiKeyDetailView.as_view(), name="api-key-detail"),
    # `sub-accounts/` (list, attach) and the customer's `sub-accounts/` are usage.api's: an
    # IPFoxy id is checked against the upstream's list (usage.services.provisioning).
    path("sub-accounts/<int:pk>/", views.SubAccountDetailView.as_view(), name="sub-account-detail"),
    path(
        "sub-accounts/<int:pk>/move/", views.SubAccountMoveView.as_view(), name="sub-account-move"
    ),
    # `sub-accounts/<pk>/close/` is usage's (usage.api.suspension_views): it cuts access.
    path("settings/", views.ResellerSettingsView.as_view(), name="settings"),
    path("settings/logo/", views.ResellerLogoView.as_view(), name="settings-logo"),
]

customer_patterns = [
    path("me/", views.MeView.as_view(), name="me"),
]

urlpatterns = [
    path("reseller/", include((reseller_patterns, "reseller"))),
    path("", include((customer_patterns, "customer"))),
]
