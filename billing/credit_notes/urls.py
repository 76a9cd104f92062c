"""Credit note routes, included by billing/api/urls.py (reseller and customer scope)."""

from django.urls import path

from billing.credit_notes import views

reseller_patterns: list = [
    path(
        "invoices/<int:pk>/credit-notes/",
        views.ResellerInvoiceCreditNotesView.as_view(),
        name="invoice-credit-notes",
    ),
    path("credit-notes/", views.ResellerCreditNoteListView.as_view(), name="credit-note-list"),
    path(
        "credit-notes/<int:pk>/",
        views.ResellerCreditNoteDetailView.as_view(),
        name="credit-note-detail",
    ),
    path(
        "credit-notes/<int:pk>/pdf/",
        views.ResellerCreditNotePdfView.as_view(),
        name="credit-note-pdf",
    ),
]
customer_patterns: list = [
    path(
        "invoices/<int:pk>/credit-notes/",
        views.InvoiceCreditNotesView.as_view(),
        name="invoice-credit-notes",
    ),
    path("credit-notes/", views.CreditNoteListView.as_view(), name="credit-note-list"),
    path("credit-notes/<int:pk>/", views.CreditNoteDetailView.as_view(), name="credit-note-detail"),
    path("credit-notes/<int:pk>/pdf/", views.CreditNotePdfView.as_view(), name="credit-note-pdf"),
]
