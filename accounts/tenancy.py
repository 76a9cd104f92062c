"""The one place that decides which reseller a request, task or query is for.

Every tenant-owned model declares `tenant_path`, the ORM path from it to its `Reseller`
(`"reseller"`, `"customer__reseller"`, ...), and uses `TenantQuerySet`, so any code can
scope a query with `Model.objects.for_reseller(reseller)`. Selectors and services take the
reseller as a required argument and fetch through it; a row of another reseller is simply
not found (404), never "forbidden".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from accounts.models import Reseller


class TenantQuerySet(models.QuerySet):
    def for_reseller(self, reseller: Reseller | int) -> TenantQuerySet:
        reseller_id = reseller if isinstance(reseller, int) else reseller.pk
        return self.filter(**{_id_lookup(self.model.tenant_path): reseller_id})


def _id_lookup(path: str) -> str:
    return "pk" if path == "pk" else f"{path}_id"


def reseller_for_user(user) -> Reseller | None:
    """The reseller whose staff `user` is, or None (superusers and anonymous users)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return user.reseller


def is_platform_admin(user) -> bool:
    """Superusers see every reseller; everybody else is scoped to one."""
    return bool(getattr(user, "is_superuser", False))
