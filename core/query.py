"""Strict query-string parsing for API list filters: an unknown or repeated parameter, or a
bad value, is a 400 naming the parameter (a typo must not silently widen a list).

A view sets `query_serializer` (a plain `Serializer` whose fields are the parameters) and
calls `self.parse_query()`. DRF's own `format`, and the pagination's `limit`/`offset` when
the view paginates, are always allowed.

List views declare their filters and answer with `self.filtered_list(query, queryset)`:
`owned_filters` name a model whose row the parameter must be one of the caller's (another
tenant's id is a 404, like a missing one), `equal_filters` map a parameter to a lookup.

Every integer a request carries (an id in a filter or a body, `limit`, `offset`, the number
inside a public id such as `evt_381`) is parsed by the helpers here and bounded by the
database's BigInteger range (`MAX_BIGINT`): beyond it a filter would overflow in the driver
(`OverflowError`, a 500); here it is a 400 naming the parameter.
"""

from __future__ import annotations

import re

from django.db import models
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.openapi import ApiErrorSerializer

#: Consumed by DRF's content negotiation (`?format=json` in a browser), so always allowed.
ALWAYS_ALLOWED = frozenset({"format"})
PAGINATION = frozenset({"limit", "offset"})
#: The largest value of a BigInteger column (PostgreSQL `bigint`, SQLite INTEGER): the bound
#: of every id and count parsed from a request.
MAX_BIGINT = 2**63 - 1


_ASCII_INTEGER = re.compile(r"-?[0-9]{1,20}")


class AsciiIntegerField(serializers.IntegerField):
    """An integer written in ASCII digits only: DRF's own field takes `int()`'s view, which
    also reads " 5", "٣" (Arabic-Indic) and "1_0"."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not _ASCII_INTEGER.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


def id_parameter(help_text: str, *, required: bool = False, **kwargs) -> serializers.IntegerField:
    """An object id in a query string or a body: 1..`MAX_BIGINT`, else a 400 naming it."""
    return AsciiIntegerField(
        min_value=1, max_value=MAX_BIGINT, required=required, help_text=help_text, **kwargs
    )


def count_parameter(help_text: str, **kwargs) -> serializers.IntegerField:
    """A count such as `limit` or `offset`: 0..`MAX_BIGINT`, else a 400 naming it."""
    return AsciiIntegerField(
        min_value=0, max_value=MAX_BIGINT, required=False, help_text=help_text, **kwargs
    )


class PublicIdField(serializers.RegexField):
    """A public id `<prefix>_<id>` (`evt_381`), validated to the id (an int up to
    `MAX_BIGINT`: `evt_9999999999999999999` is a 400, not an overflow)."""

    def __init__(self, prefix: str, **kwargs):
        self.prefix = f"{prefix}_"
        kwargs.setdefault("error_messages", {"invalid": f"Give an id such as {prefix}_381."})
        super().__init__(rf"^{prefix}_[1-9][0-9]{{0,18}}$", **kwargs)

    def run_validation(self, data=serializers.empty):
        text = super().run_validation(data)  # the pattern is checked here
        number = int(text.removeprefix(self.prefix))
        if number > MAX_BIGINT:
            raise serializers.ValidationError(
                f"No such id: ids go up to {self.prefix}{MAX_BIGINT}.", code="max_value"
            )
        return number


class PageQuerySerializer(serializers.Serializer):
    """`limit` and `offset` of a paginated list (a larger `limit` is capped by the page
    size limit, as the pagination does)."""

    limit = count_parameter("Items per page (more than 500 is capped).")
    offset = count_parameter("Items to skip.")


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
        page = PageQuerySerializer(data={k: params[k] for k in params if k in PAGINATION})
        serializer.is_valid()
        page.is_valid()
        if serializer.errors or page.errors:
            raise ValidationError({**page.errors, **serializer.errors})
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
