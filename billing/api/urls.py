"""Billing routes of `/api/v1/`: reseller scope under `reseller/`, customer scope on top.

config/urls.py includes this under `api/v1/` next to accounts.api.urls.
"""

from django.urls import include, path

reseller_patterns: list = []

customer_patterns: list = []

urlpatterns = [
    path("reseller/", include((reseller_patterns, "billing-reseller"))),
    path("", include((customer_patterns, "billing-customer"))),
]
