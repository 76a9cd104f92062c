"""Top-up routes, included by billing/api/urls.py (reseller and customer scope)."""

from django.urls import path

from billing.topups import views

reseller_patterns: list = [
    path(
        "customers/<int:pk>/top-ups/",
        views.ResellerCustomerTopUpsView.as_view(),
        name="customer-top-ups",
    ),
]
customer_patterns: list = [
    path("top-ups/", views.TopUpListView.as_view(), name="top-up-list"),
]
