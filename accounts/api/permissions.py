"""Which kind of caller an endpoint serves: reseller scope or customer scope.

A key of the wrong kind gets a 403 that names the kind of key required. It is answered
before any object is looked up, the same for every path and id, so it confirms nothing
about what exists. Objects of another tenant are simply not in the scoped querysets (404).
"""

from rest_framework.permissions import BasePermission

from accounts.api.tenant import api_tenant_of


class ResellerScopeRequired(BasePermission):
    """Reseller keys, and staff sessions of a reseller."""

    message = "This endpoint needs a reseller API key."
    code = "reseller_key_required"

    def has_permission(self, request, view) -> bool:
        tenant = api_tenant_of(request)
        return tenant is not None and tenant.customer is None


class CustomerScopeRequired(BasePermission):
    """Customer keys only."""

    message = "This endpoint needs a customer API key."
    code = "customer_key_required"

    def has_permission(self, request, view) -> bool:
        tenant = api_tenant_of(request)
        return tenant is not None and tenant.customer is not None
