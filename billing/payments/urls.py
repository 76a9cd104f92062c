"""Payment routes, included by billing/api/urls.py (reseller and customer scope)."""

from django.urls import path

from billing.payments import views

reseller_patterns: list = [
    path(
        "invoices/<int:pk>/payments/",
        views.ResellerInvoicePaymentsView.as_view(),
        name="invoice-payments",
    ),
    path("payments/", views.ResellerPaymentListView.as_view(), name="payment-list"),
    path("payments/<int:pk>/", views.ResellerPaymentDetailView.as_view(), name="payment-detail"),
    path(
        "payments/<int:pk>/refunds/",
        views.ResellerPaymentRefundsView.as_view(),
        name="payment-refunds",
    ),
]
customer_patterns: list = [
    path(
        "invoices/<int:pk>/payments/", views.InvoicePaymentsView.as_view(), name="invoice-payments"
    ),
    path("payments/", views.PaymentListView.as_view(), name="payment-list"),
]
