"""Standing checks over every `/api/v1/` route, so views added later inherit the rules."""

from django.urls import URLPattern, URLResolver, get_resolver

from accounts.api.base import CustomerScopedView, ResellerScopedView
from accounts.api.views import ApiNotFoundView


def api_views():
    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
                yield route, getattr(pattern.callback, "view_class", None)

    return list(walk(get_resolver().url_patterns))


def test_every_api_view_inherits_a_tenancy_base():
    routes = api_views()
    assert len(routes) >= 10
    for route, view in routes:
        if view is ApiNotFoundView:
            continue
        assert view is not None and issubclass(view, ResellerScopedView | CustomerScopedView), route


def test_reseller_routes_use_the_reseller_base_and_the_rest_the_customer_base():
    for route, view in api_views():
        if view is ApiNotFoundView:
            continue
        expected = (
            ResellerScopedView if route.startswith("api/v1/reseller/") else CustomerScopedView
        )
        assert issubclass(view, expected), route
