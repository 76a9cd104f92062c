"""Strict query-string parsing for API list filters: an unknown or repeated parameter, or a
bad value, is a 400 naming the parameter (a typo must not silently widen a list).

A view sets `query_serializer` (a plain `Serializer` whose fields are the parameters) and
calls `self.parse_query()`. DRF's own `format`, and the pagination's `limit`/`offset` when
the view paginates, are always allowed.

List views declare their filters and answer with `self.filtered_list(query, queryset)`:
`owned_filters` name a model whose row the parameter must be one of the caller's (another
tenant's id is a 404, like a missing one), `equal_filters` map a parameter to a lookup.
"""

from __future__ import annotations

from django.db import models
from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

#: Consumed by DRF's content negotiation (`?format=json` in a browser), so always allowed.
ALWAYS_ALLOWED = frozenset({"format"})
PAGINATION = frozenset({"limit", "offset"})


class StrictQueryMixin:
    query_serializer: type[serializers.Serializer]
    #: parameter -> model (tenant-owned); filters `<parameter>_id` after a 404 check.
    owned_filters: dict[str, type[models.Model]] = {}
    #: parameter -> ORM lookup it must equal.
    equal_filters: dict[str, str] = {}

    @classmethod
    def allowed_query_parameters(cls) -> frozenset[str]:
        if "_allowed" not in cls.__dict__:  # per view class, computed once
            allowed = frozenset(cls.query_serializer().fields) | ALWAYS_ALLOWED
            if getattr(cls, "pagination_class", None) is not None:
                allowed |= PAGINATION
            cls._allowed = allowed
        return cls._allowed

    def parse_query(self) -> dict:
        params = self.request.query_params
        allowed = self.allowed_query_parameters()
        errors = {}
        for name in sorted(params):
            if name not in allowed:
                errors[name] = ["Unknown query parameter."]
            elif len(params.getlist(name)) > 1:
                errors[name] = ["Give this parameter once."]
        if errors:
            raise ValidationError(errors)
        serializer = self.query_serializer(
            data={k: params[k] for k in params if k not in PAGINATION | ALWAYS_ALLOWED}
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def filtered_list(self, query: dict, queryset: models.QuerySet) -> Response:
        """Apply the declared filters present in `query`, paginate, serialize."""
        for name, model in self.owned_filters.items():
            if name in query:
                get_object_or_404(model.objects.for_reseller(self.reseller), pk=query[name])
                queryset = queryset.filter(**{f"{name}_id": query[name]})
        for name, lookup in self.equal_filters.items():
            if name in query:
                queryset = queryset.filter(**{lookup: query[name]})
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


def query_error_responses(**more) -> dict:
    """The OpenAPI answers of a strictly parsed list: 400 (bad parameters), 404 (an owned
    filter that is not the caller's), plus `more`."""
    from drf_spectacular.utils import OpenApiResponse

    from accounts.api.serializers import ApiErrorSerializer

    return {
        400: OpenApiResponse(
            ApiErrorSerializer,
            description="An unknown or repeated query parameter, or a bad value: "
            "`extra.fields` names each.",
        ),
        404: OpenApiResponse(
            ApiErrorSerializer,
            description="A filter names an object that is not one of yours.",
        ),
        **more,
    }
