"""Balance routes, included by billing/api/urls.py (reseller and customer scope)."""

from django.urls import path

from billing.balance import views

reseller_patterns: list = [
    path(
        "customers/<int:pk>/balance/",
        views.ResellerCustomerBalanceView.as_view(),
        name="customer-balance",
    ),
    path(
        "customers/<int:pk>/balance/adjustments/",
        views.ResellerCustomerBalanceAdjustmentView.as_view(),
        name="customer-balance-adjustments",
    ),
    path(
        "customers/<int:pk>/balance/auto-top-up/",
        views.ResellerCustomerAutoTopUpView.as_view(),
        name="customer-balance-auto-top-up",
    ),
]
customer_patterns: list = [
    path("balance/", views.BalanceView.as_view(), name="balance"),
]
