"""Payments of invoices and their refunds (models, services, selectors, API, admin)."""
