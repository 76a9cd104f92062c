"""Credit note routes, included by billing/api/urls.py (reseller and customer scope)."""

reseller_patterns: list = []
customer_patterns: list = []
