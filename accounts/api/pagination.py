"""API pagination (a module of its own: DRF imports it while `rest_framework.generics` loads)."""

from rest_framework.pagination import LimitOffsetPagination

_ENVELOPE_DESCRIPTIONS = {
    "count": "How many items match, over all pages.",
    "next": "URL of the next page, or null on the last page.",
    "previous": "URL of the previous page, or null on the first page.",
    "results": "This page's items.",
}


class ApiPagination(LimitOffsetPagination):
    """`?limit=&offset=`; lists are ordered by id, so pages are stable."""

    default_limit = 50
    max_limit = 500

    def get_paginated_response_schema(self, schema):
        envelope = super().get_paginated_response_schema(schema)
        for name, text in _ENVELOPE_DESCRIPTIONS.items():
            field = envelope["properties"][name]
            # drf-spectacular probes with a sentinel object for `results` to build paginated
            # examples: that one must come back as is.
            if isinstance(field, dict):
                envelope["properties"][name] = {**field, "description": text}
        return envelope
