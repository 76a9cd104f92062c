"""Tenant isolation matrix: two resellers x two customers, every endpoint, every key.

Nothing of another tenant may show, in bodies, counts or status codes: a foreign object
answers exactly like a missing one (404, same body); a foreign id in a body is the same 400
as an unknown id; a key of the wrong kind gets one fixed 403 whatever the path names.
"""

import itertools

import pytest

from accounts.models import ApiKey, Customer, SubAccount, UpstreamAccount
from tests.api.conftest import WORLD_SECRETS, key_client

MISSING_ID = 987654
R = "/api/v1/reseller"


def assert_clean(response, tenant, world):
    """The response names no other tenant and carries no stored secret."""
    text = response.content.decode().lower()
    for other in world.tenants:
        if other is not tenant:
            for marker in other.markers:
                assert marker.lower() not in text, (response.request["PATH_INFO"], text)
    for secret in WORLD_SECRETS:
        assert secret.lower() not in text


def own_ids(tenant):
    keys = ApiKey.objects.filter(customer__in=tenant.customers)
    return {
        "upstream-accounts": sorted([tenant.upstream.pk, tenant.bytesflows.pk]),
        "customers": sorted(c.pk for c in tenant.customers),
        "sub-accounts": sorted(s.pk for s in tenant.sub_accounts),
        "api-keys": sorted(keys.values_list("pk", flat=True)),
    }


def detail_urls(tenant):
    """Every reseller-scope object URL of a tenant, with a harmless PATCH body."""
    urls = [(f"{R}/upstream-accounts/{tenant.upstream.pk}/", {"name": "renamed"})]
    urls += [(f"{R}/customers/{c.pk}/", {"name": "renamed"}) for c in tenant.customers]
    urls += [(f"{R}/sub-accounts/{s.pk}/", {"label": "renamed"}) for s in tenant.sub_accounts]
    for key in ApiKey.objects.filter(customer__in=tenant.customers):
        urls.append((f"{R}/customers/{key.customer_id}/api-keys/{key.pk}/", None))
    return urls


def all_reseller_requests(world):
    """(method, url, body) for every reseller endpoint, naming objects of every tenant."""
    requests = [
        ("get", f"{R}/upstream-accounts/", None),
        ("post", f"{R}/upstream-accounts/", {"name": "x", "provider": "bytesflows"}),
        ("get", f"{R}/customers/", None),
        ("post", f"{R}/customers/", {"name": "x", "email": "x@example.com"}),
        ("get", f"{R}/sub-accounts/", None),
        ("get", f"{R}/customers/{MISSING_ID}/", None),
    ]
    for tenant in world.tenants:
        requests.append(
            (
                "post",
                f"{R}/sub-accounts/",
                {
                    "customer": tenant.customers[0].pk,
                    "upstream_account": tenant.upstream.pk,
                    "upstream_id": "NEW",
                },
            )
        )
        for url, body in detail_urls(tenant):
            requests.append(("get", url, None))
            requests.append(("delete", url, None) if body is None else ("patch", url, body))
        for customer in tenant.customers:
            requests.append(("get", f"{R}/customers/{customer.pk}/api-keys/", None))
            requests.append(("post", f"{R}/customers/{customer.pk}/api-keys/", {"name": "x"}))
    return requests


@pytest.mark.django_db
def test_reseller_lists_hold_exactly_the_callers_rows(world):
    for tenant in world.tenants:
        api = key_client(tenant.reseller_key)
        expected = own_ids(tenant)
        for resource in ("upstream-accounts", "customers", "sub-accounts"):
            response = api.get(f"{R}/{resource}/")
            assert response.status_code == 200
            body = response.json()
            assert body["count"] == len(expected[resource])
            assert [row["id"] for row in body["results"]] == expected[resource]
            assert_clean(response, tenant, world)
        key_ids = []
        for customer in tenant.customers:
            response = api.get(f"{R}/customers/{customer.pk}/api-keys/")
            assert response.status_code == 200
            key_ids += [row["id"] for row in response.json()["results"]]
            assert_clean(response, tenant, world)
        assert sorted(key_ids) == expected["api-keys"]


@pytest.mark.django_db
def test_foreign_objects_answer_exactly_like_missing_ones(world):
    for tenant, other in itertools.permutations(world.tenants, 2):
        api = key_client(tenant.reseller_key)
        missing = api.get(f"{R}/customers/{MISSING_ID}/")
        assert missing.status_code == 404
        for url, body in detail_urls(other):
            for response in (
                api.get(url),
                api.patch(url, body) if body is not None else api.delete(url),
            ):
                assert response.status_code == 404, url
                assert response.json() == missing.json()
                assert_clean(response, tenant, world)
        for customer in other.customers:
            for response in (
                api.get(f"{R}/customers/{customer.pk}/api-keys/"),
                api.post(f"{R}/customers/{customer.pk}/api-keys/", {"name": "sneaky"}),
            ):
                assert response.status_code == 404
                assert response.json() == missing.json()
        # Nothing of the other tenant changed.
        assert not Customer.objects.filter(name="renamed").exists()
        assert not UpstreamAccount.objects.filter(name="renamed").exists()
        assert not SubAccount.objects.filter(label="renamed").exists()
        assert not ApiKey.objects.filter(name="sneaky").exists()
        assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()


@pytest.mark.django_db
def test_own_objects_answer_200_for_the_same_requests(world):
    tenant = world.tenants[0]
    api = key_client(tenant.reseller_key)
    for url, _body in detail_urls(tenant):
        assert api.get(url).status_code == 200, url


@pytest.mark.django_db
def test_foreign_ids_in_a_body_read_like_unknown_ids(world):
    tenant, other = world.tenants
    api = key_client(tenant.reseller_key)

    def create(customer_id, upstream_id):
        return api.post(
            f"{R}/sub-accounts/",
            {"customer": customer_id, "upstream_account": upstream_id, "upstream_id": "NEW-1"},
        )

    for field, response, bad_id in (
        ("customer", create(other.customers[0].pk, tenant.upstream.pk), other.customers[0].pk),
        ("customer", create(MISSING_ID, tenant.upstream.pk), MISSING_ID),
        ("upstream_account", create(tenant.customers[0].pk, other.upstream.pk), other.upstream.pk),
        ("upstream_account", create(tenant.customers[0].pk, MISSING_ID), MISSING_ID),
    ):
        assert response.status_code == 400
        assert response.json()["extra"]["fields"] == {
            field: [f'Invalid pk "{bad_id}" - object does not exist.']
        }
        assert_clean(response, tenant, world)
    assert not SubAccount.objects.filter(upstream_id="NEW-1").exists()


@pytest.mark.django_db
def test_customer_keys_get_one_fixed_403_on_every_reseller_endpoint(world):
    requests = all_reseller_requests(world)
    for label, raw_key, tenant, customer in world.api_keys():
        if customer is None:
            continue
        api = key_client(raw_key)
        bodies = set()
        for method, url, body in requests:
            response = getattr(api, method)(url, body) if body else getattr(api, method)(url)
            assert response.status_code == 403, (label, method, url)
            bodies.add(response.content)
            assert_clean(response, tenant, world)
        assert bodies == {
            b'{"code":"reseller_key_required","message":"This endpoint needs a reseller API '
            b'key.","extra":{}}'
        }


@pytest.mark.django_db
def test_customer_scope_shows_only_the_keys_own_customer(world):
    for label, raw_key, tenant, customer in world.api_keys():
        api = key_client(raw_key)
        me = api.get("/api/v1/me/")
        subs = api.get("/api/v1/sub-accounts/")
        if customer is None:  # reseller keys are not customers
            assert me.status_code == subs.status_code == 403, label
            assert me.json()["code"] == "customer_key_required"
            continue
        assert me.status_code == 200
        assert me.json()["id"] == customer.pk
        assert me.json()["reseller"]["name"] == tenant.reseller.name
        own = sorted(customer.sub_accounts.values_list("pk", flat=True))
        assert subs.json()["count"] == 2
        assert [row["id"] for row in subs.json()["results"]] == own
        sibling = next(c for c in tenant.customers if c != customer)
        assert sibling.name.lower() not in (me.content + subs.content).decode().lower()
        for response in (me, subs):
            assert_clean(response, tenant, world)


@pytest.mark.django_db
def test_no_reseller_response_carries_a_secret_or_another_tenants_name(world):
    for tenant in world.tenants:
        api = key_client(tenant.reseller_key)
        for method, url, body in all_reseller_requests(world):
            response = getattr(api, method)(url, body) if body else getattr(api, method)(url)
            assert response.status_code < 500
            assert_clean(response, tenant, world)
