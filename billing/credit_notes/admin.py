"""Credit note admin, imported by billing/admin.py."""
