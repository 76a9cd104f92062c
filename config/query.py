"""Strict query-string parsing for API list filters: an unknown or repeated parameter, or a
bad value, is a 400 naming the parameter (a typo must not silently widen a list).

A view sets `query_serializer` (a plain `Serializer` whose fields are the parameters) and
calls `self.parse_query()`. DRF's own `format`, and the pagination's `limit`/`offset` when
the view paginates, are always allowed.
"""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

#: Consumed by DRF's content negotiation (`?format=json` in a browser), so always allowed.
ALWAYS_ALLOWED = frozenset({"format"})
PAGINATION = frozenset({"limit", "offset"})


class StrictQueryMixin:
    query_serializer: type[serializers.Serializer]

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
