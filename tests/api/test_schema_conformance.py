"""Every response of the isolation world's requests matches the published schema."""

import pytest

from tests.api.conftest import key_client
from tests.api.schema_check import assert_matches_schema
from tests.api.test_billing_endpoints import GRADUATED
from tests.api.test_isolation import all_reseller_requests


def send(api, method, url, body):
    return getattr(api, method)(url, body) if body else getattr(api, method)(url)


@pytest.mark.django_db
@pytest.mark.slow
def test_every_response_to_every_key_matches_the_schema(world):
    requests = [
        *all_reseller_requests(world),
        ("get", "/api/v1/me/", None),
        ("get", "/api/v1/sub-accounts/", None),
        ("get", "/api/v1/reseller/customers/?limit=1&offset=1", None),
        ("post", "/api/v1/reseller/customers/", {"name": "", "email": "x", "extra": 1}),
        ("patch", f"/api/v1/reseller/sub-accounts/{world.tenants[0].sub_accounts[0].pk}/",
         {"customer": 1}),
        ("get", "/api/v1/invoices/", None),
        ("get", "/api/v1/invoices/?limit=x", None),
        ("get", "/api/v1/usage/current/", None),
        ("get", "/api/v1/reseller/invoices/?period=2026-13&status=x", None),
        ("post", "/api/v1/reseller/plans/", GRADUATED),
        ("post", "/api/v1/reseller/plans/", {**GRADUATED, "code": "pro-2", "tiers": []}),
        ("post", "/api/v1/reseller/plans/", {"code": "pk", "name": "P", "pricing_model": "package",
                                             "package_size": "10", "package_price": "5"}),
    ]  # fmt: skip
    for invoice in (i for tenant in world.tenants for i in tenant.invoices):
        requests += [
            ("get", f"/api/v1/invoices/{invoice.pk}/", None),
            ("get", f"/api/v1/invoices/{invoice.pk}/pdf/", None),
        ]
    seen = set()
    # Customer keys first: the reseller keys' DELETEs revoke them.
    keys = sorted(world.api_keys(), key=lambda entry: entry[3] is None)
    for _label, raw_key, _tenant, _customer in keys:
        api = key_client(raw_key)
        for method, url, body in requests:
            response = send(api, method, url, body)
            assert_matches_schema(response)
            seen.add(response.status_code)
    for response in (
        key_client(None).get("/api/v1/me/"),
        key_client("fb_nope").get("/api/v1/reseller/customers/"),
    ):
        assert_matches_schema(response)
        seen.add(response.status_code)
    assert {200, 201, 204, 400, 401, 403, 404, 409} <= seen
