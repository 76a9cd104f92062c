"""Tenant isolation matrix: two resellers x two customers, every endpoint, every key.

Nothing of another tenant may show, in bodies, counts or status codes: a foreign object
answers exactly like a missing one (404, same body); a foreign id in a body is the same 400
as an unknown id; a key of the wrong kind gets one fixed 403 whatever the path names.
"""

import io
import itertools
import json

import pytest
from pypdf import PdfReader

from accounts.models import ApiKey, Customer, SubAccount, UpstreamAccount
from billing.models import Invoice, InvoiceEvent, Plan, Subscription
from tests.api.conftest import WORLD_SECRETS, key_client
from usage.models import SyncRun

MISSING_ID = 987654
R = "/api/v1/reseller"


def response_text(response) -> str:
    """The body as text; a PDF's extracted text (a leak inside a PDF is a leak too)."""
    if response.get("Content-Type") == "application/pdf":
        pages = PdfReader(io.BytesIO(response.content)).pages
        return "\n".join(page.extract_text() for page in pages)
    return response.content.decode()


def assert_clean(response, tenant, world):
    """The response names no other tenant and carries no stored secret."""
    text = response_text(response).lower()
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
        "plans": [tenant.plan.pk],
        "subscriptions": sorted(s.pk for s in tenant.subscriptions),
        "invoices": sorted(i.pk for i in tenant.invoices),
    }


def detail_urls(tenant):
    """Every reseller-scope object URL of a tenant, with a harmless PATCH body."""
    urls = [(f"{R}/upstream-accounts/{tenant.upstream.pk}/", {"name": "renamed"})]
    urls += [(f"{R}/customers/{c.pk}/", {"name": "renamed"}) for c in tenant.customers]
    urls += [(f"{R}/sub-accounts/{s.pk}/", {"label": "renamed"}) for s in tenant.sub_accounts]
    for key in ApiKey.objects.filter(customer__in=tenant.customers):
        urls.append((f"{R}/customers/{key.customer_id}/api-keys/{key.pk}/", None))
    urls.append((f"{R}/plans/{tenant.plan.pk}/", {"name": "renamed"}))
    urls += [
        (f"{R}/subscriptions/{s.pk}/", {"ends_on": "2031-01-01"}) for s in tenant.subscriptions
    ]
    return urls


def invoice_requests(tenant):
    """(method, url, body) naming each of a tenant's invoices (issued and drafts) in reseller
    scope: reads first, then the billing verbs."""
    requests = []
    for invoice in tenant.invoices:
        url = f"{R}/invoices/{invoice.pk}"
        requests += [("get", f"{url}/", None), ("get", f"{url}/pdf/", None)]
    for invoice in tenant.invoices:
        url = f"{R}/invoices/{invoice.pk}"
        requests += [
            ("post", f"{url}/finalize/", {"send_email": False}),
            ("post", f"{url}/mark-paid/", {"note": "sneaky"}),
            ("post", f"{url}/void/", {"reason": "sneaky"}),
        ]
    return requests


USAGE_QUERY = "from=2026-09-01&to=2026-09-30"


def all_reseller_requests(world):
    """(method, url, body) for every reseller endpoint, naming objects of every tenant."""
    requests = [
        ("get", f"{R}/upstream-accounts/", None),
        ("post", f"{R}/upstream-accounts/", {"name": "x", "provider": "bytesflows"}),
        ("get", f"{R}/customers/", None),
        ("post", f"{R}/customers/", {"name": "x", "email": "x@example.com"}),
        ("get", f"{R}/sub-accounts/", None),
        ("get", f"{R}/customers/{MISSING_ID}/", None),
        ("get", f"{R}/plans/", None),
        ("post", f"{R}/plans/", {"code": "x", "name": "x", "pricing_model": "volume"}),
        ("get", f"{R}/subscriptions/", None),
        ("get", f"{R}/invoices/", None),
        ("get", f"{R}/invoices/?period=2026-09&status=finalized", None),
        ("get", f"{R}/invoices/{MISSING_ID}/", None),
        ("get", f"{R}/usage/?{USAGE_QUERY}", None),
        ("post", f"{R}/sync/", {"upstream_account": MISSING_ID}),
    ]
    for tenant in world.tenants:
        requests.append(
            (
                "post",
                f"{R}/subscriptions/",
                {
                    "customer": tenant.customers[0].pk,
                    "plan": tenant.plan.pk,
                    "starts_on": "2030-01-01",
                },
            )
        )
        for customer in tenant.customers:
            requests.append(("get", f"{R}/invoices/?customer={customer.pk}", None))
            requests.append(("get", f"{R}/usage/?{USAGE_QUERY}&customer={customer.pk}", None))
        for sub in tenant.sub_accounts:
            requests.append(("get", f"{R}/usage/?{USAGE_QUERY}&sub_account={sub.pk}", None))
        requests += invoice_requests(tenant)
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
        for resource in (
            "upstream-accounts",
            "customers",
            "sub-accounts",
            "plans",
            "subscriptions",
            "invoices",
        ):
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
@pytest.mark.slow
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
        # Invoices, their PDFs and the billing verbs; filters naming a foreign customer.
        foreign_queries = [("get", f"{R}/invoices/?customer={c.pk}", None) for c in other.customers]
        foreign_queries += [
            ("get", f"{R}/usage/?{USAGE_QUERY}&customer={c.pk}", None) for c in other.customers
        ]
        foreign_queries += [
            ("get", f"{R}/usage/?{USAGE_QUERY}&sub_account={s.pk}", None)
            for s in other.sub_accounts
        ]
        for method, url, body in [*invoice_requests(other), *foreign_queries]:
            response = send(api, method, url, body)
            assert response.status_code == 404, (method, url)
            assert response.json() == missing.json(), (method, url)
            assert_clean(response, tenant, world)
        # A sync of a foreign upstream account is refused like one of a missing account.
        unknown = api.post(f"{R}/sync/", {"upstream_account": MISSING_ID}).json()
        for upstream in (other.upstream, other.bytesflows):
            response = api.post(f"{R}/sync/", {"upstream_account": upstream.pk})
            assert response.status_code == 400
            assert json.dumps(response.json()).replace(str(upstream.pk), "ID") == json.dumps(
                unknown
            ).replace(str(MISSING_ID), "ID")
        # Nothing of the other tenant changed.
        assert not Customer.objects.filter(name="renamed").exists()
        assert not UpstreamAccount.objects.filter(name="renamed").exists()
        assert not SubAccount.objects.filter(label="renamed").exists()
        assert not ApiKey.objects.filter(name="sneaky").exists()
        assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()
        assert not Plan.objects.filter(name="renamed").exists()
        assert not Subscription.objects.filter(ends_on__isnull=False).exists()
        assert not InvoiceEvent.objects.filter(note="sneaky").exists()
        assert (
            sorted(Invoice.objects.values_list("status", flat=True))
            == ["draft"] * 4 + ["finalized"] * 4
        )
        assert not SyncRun.objects.exists()


def send(api, method, url, body):
    return getattr(api, method)(url, body) if body else getattr(api, method)(url)


@pytest.mark.django_db
def test_own_objects_answer_200_for_the_same_requests(world):
    tenant = world.tenants[0]
    api = key_client(tenant.reseller_key)
    for url, _body in detail_urls(tenant):
        assert api.get(url).status_code == 200, url
    for method, url, _body in invoice_requests(tenant):
        if method == "get":
            assert api.get(url).status_code == 200, url
    for customer in tenant.customers:
        assert api.get(f"{R}/invoices/?customer={customer.pk}").json()["count"] == 2


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
@pytest.mark.slow
def test_customer_keys_get_one_fixed_403_on_every_reseller_endpoint(world):
    requests = all_reseller_requests(world)
    for label, raw_key, tenant, customer in world.api_keys():
        if customer is None:
            continue
        api = key_client(raw_key)
        bodies = set()
        for method, url, body in requests:
            response = send(api, method, url, body)
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
@pytest.mark.slow
def test_no_reseller_response_carries_a_secret_or_another_tenants_name(
    world, upstream_lists_every_id
):
    for tenant in world.tenants:
        api = key_client(tenant.reseller_key)
        for method, url, body in all_reseller_requests(world):
            response = send(api, method, url, body)
            assert response.status_code < 500
            assert_clean(response, tenant, world)


CUSTOMER_ENDPOINTS = (
    "/api/v1/me/",
    "/api/v1/sub-accounts/",
    "/api/v1/invoices/",
    "/api/v1/usage/current/",
    f"/api/v1/usage/?{USAGE_QUERY}",
)


@pytest.mark.django_db
@pytest.mark.slow
def test_customer_invoices_and_usage_show_only_the_keys_own_customer(world):
    """Every customer key against every invoice of the world, its PDF, and the usage reads:
    only its own issued invoices exist for it; drafts (its own included), a sibling's and
    another reseller's invoices answer exactly like a missing one."""
    all_invoices = [invoice for tenant in world.tenants for invoice in tenant.invoices]
    for label, raw_key, tenant, customer in world.api_keys():
        api = key_client(raw_key)
        if customer is None:  # reseller keys: one fixed 403 on every customer endpoint
            for url in CUSTOMER_ENDPOINTS:
                response = api.get(url)
                assert response.status_code == 403, (label, url)
                assert response.json()["code"] == "customer_key_required"
            for invoice in all_invoices:
                for url in (
                    f"/api/v1/invoices/{invoice.pk}/",
                    f"/api/v1/invoices/{invoice.pk}/pdf/",
                ):
                    assert api.get(url).json()["code"] == "customer_key_required"
            continue
        c_index = tenant.customers.index(customer)
        own_issued = tenant.issued[c_index]
        sibling = next(c for c in tenant.customers if c != customer)
        listed = api.get("/api/v1/invoices/")
        assert listed.json()["count"] == 1, label
        assert [row["id"] for row in listed.json()["results"]] == [own_issued.pk]
        missing = api.get(f"/api/v1/invoices/{MISSING_ID}/")
        assert missing.status_code == 404
        for invoice in all_invoices:
            for url in (f"/api/v1/invoices/{invoice.pk}/", f"/api/v1/invoices/{invoice.pk}/pdf/"):
                response = api.get(url)
                if invoice.pk == own_issued.pk:
                    assert response.status_code == 200, (label, url)
                else:
                    assert response.status_code == 404, (label, url)
                    assert response.content == missing.content
                assert_clean(response, tenant, world)
                assert sibling.name.lower() not in response_text(response).lower()
        current = api.get("/api/v1/usage/current/").json()
        own_subs = [s for s in tenant.sub_accounts if s.customer_id == customer.pk]
        assert [s["id"] for s in current["sub_accounts"]] == [s.pk for s in own_subs]
        assert [s["remaining_bytes"] for s in current["sub_accounts"]] == [
            None,
            (c_index + 1) * 1_073_741_824,
        ]
        assert [s["id"] for s in current["subscriptions"]] == [tenant.subscriptions[c_index].pk]
        usage = api.get(f"/api/v1/usage/?{USAGE_QUERY}&granularity=month").json()
        assert usage["results"][0]["bytes"] == 30 * (c_index + 1) * 1_073_741_824, label
        for url in CUSTOMER_ENDPOINTS:
            response = api.get(url)
            assert response.status_code == 200, (label, url)
            assert_clean(response, tenant, world)
            assert sibling.name.lower() not in response.content.decode().lower()
            for sub in tenant.sub_accounts:
                if sub.customer_id != customer.pk:
                    assert sub.label.lower() not in response.content.decode().lower()
