"""API pagination (a module of its own: DRF imports it while `rest_framework.generics` loads)."""

from rest_framework.pagination import LimitOffsetPagination


class ApiPagination(LimitOffsetPagination):
    """`?limit=&offset=`; lists are ordered by id, so pages are stable."""

    default_limit = 50
    max_limit = 500
