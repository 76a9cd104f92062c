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

    def paginate_queryset(self, queryset, request, view=None):
        """DRF's, except that a page shorter than the limit is the last one, so the count is
        `offset + len(page)` without a COUNT query (most lists fit in one page); an empty or
        full page still counts."""
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        self.offset = self.get_offset(request)
        page = list(queryset[self.offset : self.offset + self.limit])
        if 0 < len(page) < self.limit or (not page and self.offset == 0):
            self.count = self.offset + len(page)
        else:
            self.count = self.get_count(queryset)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        return page

    def get_paginated_response_schema(self, schema):
        envelope = super().get_paginated_response_schema(schema)
        for name, text in _ENVELOPE_DESCRIPTIONS.items():
            field = envelope["properties"][name]
            # drf-spectacular probes with a sentinel object for `results` to build paginated
            # examples: that one must come back as is.
            if isinstance(field, dict):
                envelope["properties"][name] = {**field, "description": text}
        return envelope
