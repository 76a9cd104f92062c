"""Billing routes of `/api/v1/`: reseller scope under `reseller/`, customer scope on top.

config/urls.py includes this under `api/v1/` next to accounts.api.urls.
"""

from django.urls import include, path

from billing.api import (  # noqa: F401 (openapi: texts)
    export_views,
    exposure_views,
    figures_views,
    generate_views,
    openapi,
    views,
)
from billing.balance import urls as balance_urls
from billing.credit_notes import urls as credit_note_urls
from billing.payments import openapi as _payment_openapi  # noqa: F401 (openapi: texts)
from billing.payments import urls as payment_urls
from billing.topups import urls as top_up_urls

reseller_patterns = [
    path("plans/", views.PlanListCreateView.as_view(), name="plan-list"),
    path("plans/<int:pk>/", views.PlanDetailView.as_view(), name="plan-detail"),
    path(
        "subscriptions/",
        views.SubscriptionListCreateView.as_view(),
        name="subscription-list",
    ),
    path(
        "subscriptions/<int:pk>/",
        views.SubscriptionDetailView.as_view(),
        name="subscription-detail",
    ),
    path("invoices/", views.ResellerInvoiceListView.as_view(), name="invoice-list"),
    path("exports/<slug:kind>.csv", export_views.ExportView.as_view(), name="export"),
    path("figures/", figures_views.ResellerFiguresView.as_view(), name="figures"),
    path(
        "invoices/generate/", generate_views.InvoiceGenerateView.as_view(), name="invoice-generate"
    ),
    path("invoices/preview/", generate_views.InvoicePreviewView.as_view(), name="invoice-preview"),
    path(
        "customers/<int:pk>/usage/current/",
        generate_views.CustomerUsageCurrentView.as_view(),
        name="customer-usage-current",
    ),
    path(
        "customers/<int:pk>/exposure/",
        exposure_views.CustomerExposureView.as_view(),
        name="customer-exposure",
    ),
    path("invoices/<int:pk>/", views.ResellerInvoiceDetailView.as_view(), name="invoice-detail"),
    path("invoices/<int:pk>/pdf/", views.ResellerInvoicePdfView.as_view(), name="invoice-pdf"),
    path(
        "invoices/<int:pk>/finalize/",
        views.ResellerInvoiceFinalizeView.as_view(),
        name="invoice-finalize",
    ),
    path("invoices/<int:pk>/void/", views.ResellerInvoiceVoidView.as_view(), name="invoice-void"),
    path(
        "invoices/<int:pk>/mark-paid/",
        views.ResellerInvoiceMarkPaidView.as_view(),
        name="invoice-mark-paid",
    ),
    *credit_note_urls.reseller_patterns,
    *payment_urls.reseller_patterns,
    *balance_urls.reseller_patterns,
    *top_up_urls.reseller_patterns,
]

customer_patterns = [
    path("invoices/", views.InvoiceListView.as_view(), name="invoice-list"),
    path("invoices/<int:pk>/", views.InvoiceDetailView.as_view(), name="invoice-detail"),
    path("invoices/<int:pk>/pdf/", views.InvoicePdfView.as_view(), name="invoice-pdf"),
    path("usage/current/", views.CurrentUsageView.as_view(), name="usage-current"),
    *credit_note_urls.customer_patterns,
    *payment_urls.customer_patterns,
    *balance_urls.customer_patterns,
    *top_up_urls.customer_patterns,
]

urlpatterns = [
    path("reseller/", include((reseller_patterns, "billing-reseller"))),
    path("", include((customer_patterns, "billing-customer"))),
]
