"""The tenancy base of every API view, pagination, and strict input parsing.

The tenant of a request is resolved once (`accounts.api.tenant.api_tenant_of`). Views
never build querysets from `Model.objects.all()`: `get_queryset` starts from
`tenant_queryset()`, which is `Model.objects.for_reseller(...)` and, in customer scope, only
the key's customer's rows; views refine it in `scope_queryset`, which cannot widen it. So
another tenant's object and a missing one are the same 404.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView

from accounts.api.pagination import ApiPagination
from accounts.api.permissions import CustomerScopeRequired, ResellerScopeRequired
from accounts.api.tenant import ApiTenant, api_tenant_of
from accounts.models import Customer, Reseller
from idempotency.mixins import IdempotentPostMixin


class TenantScopedView(IdempotentPostMixin, GenericAPIView):
    """Base of every API view: a tenant-scoped queryset ordered by id."""

    model: type[models.Model]
    pagination_class = ApiPagination

    @property
    def tenant(self) -> ApiTenant:
        tenant = api_tenant_of(self.request)
        assert tenant is not None, "permission classes let no tenant-less request through"
        return tenant

    @property
    def reseller(self) -> Reseller:
        return self.tenant.reseller

    @property
    def actor(self) -> str:
        """Who a recorded change names: the API key (by its public prefix) or the staff
        login."""
        api_key = self.tenant.api_key
        if api_key is not None:
            return f"api-key {api_key.prefix}"
        return self.request.user.get_username()

    def get_queryset(self) -> models.QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return self.model.objects.none()
        return self.scope_queryset(self.tenant_queryset()).order_by("pk")

    def tenant_queryset(self) -> models.QuerySet:
        """Every row the caller may see; the only place a view's rows come from."""
        return self.model.objects.for_reseller(self.reseller)

    def scope_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        """Hook for views: narrow or annotate the tenant's rows (select_related, filters)."""
        return queryset

    def handle_exception(self, exc):
        """Model validation from a service names fields like the serializers do."""
        if isinstance(exc, DjangoValidationError) and hasattr(exc, "error_dict"):
            fields = exc.message_dict
            if NON_FIELD_ERRORS in fields:
                fields["non_field_errors"] = fields.pop(NON_FIELD_ERRORS)
            exc = ValidationError(fields)
        return super().handle_exception(exc)

    def parse(self, serializer_class, *, partial: bool = False, **context: Any) -> dict:
        """Validate the request body with an input serializer; raises 400 on any error."""
        serializer = serializer_class(
            data=self.request.data,
            partial=partial,
            context={"request": self.request, "view": self, "tenant": self.tenant, **context},
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class ResellerScopedView(TenantScopedView):
    """Endpoints under `/api/v1/reseller/`: reseller keys and staff sessions."""

    permission_classes = [ResellerScopeRequired]


class CustomerScopedView(TenantScopedView):
    """Customer endpoints: rows of the key's own customer only (`customer_path`)."""

    #: ORM path from the model to its `Customer`; None for `Customer` itself.
    customer_path: str | None = "customer"

    permission_classes = [CustomerScopeRequired]

    @property
    def customer(self) -> Customer:
        assert self.tenant.customer is not None
        return self.tenant.customer

    def tenant_queryset(self) -> models.QuerySet:
        queryset = super().tenant_queryset()
        if self.customer_path is None:
            return queryset.filter(pk=self.customer.pk)
        return queryset.filter(**{f"{self.customer_path}_id": self.customer.pk})
