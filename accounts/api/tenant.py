"""Which reseller (and customer) an API request acts for, resolved once per request.

An API key carries its reseller and, for customer keys, its customer; a staff session gets
its user's reseller through `accounts.tenancy` (superusers without a reseller get none, so
the API is closed to them: they use the admin).
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.request import Request

from accounts.models import ApiKey, Customer, Reseller
from accounts.tenancy import reseller_for_user


@dataclass(frozen=True)
class ApiTenant:
    reseller: Reseller
    customer: Customer | None = None
    api_key: ApiKey | None = None


_UNRESOLVED = object()


def api_tenant_of(request: Request) -> ApiTenant | None:
    """The reseller (and customer) a request acts for, or None; computed once per request."""
    cached = getattr(request, "_flowbill_tenant", _UNRESOLVED)
    if cached is not _UNRESOLVED:
        return cached
    tenant = None
    if isinstance(request.auth, ApiKey):
        key = request.auth
        tenant = ApiTenant(reseller=key.reseller, customer=key.customer, api_key=key)
    elif getattr(request.user, "is_staff", False) and request.user.is_active:
        reseller = reseller_for_user(request.user)
        tenant = ApiTenant(reseller=reseller) if reseller is not None else None
    request._flowbill_tenant = tenant
    return tenant
