"""Hostile input on the API and the admin: 4xx with a clear message, nothing stored, never
a 500.

The API table sends, with a valid reseller key unless said otherwise: injection strings in
every text field of every writing endpoint and in query parameters, oversized and deeply
nested bodies, bodies of the wrong type, huge and negative pages, absurd dates, money that
is not a decimal, negative quantities, unknown fields, other tenants' ids, revoked keys and
a brute-force run. An injection string is data: either refused with a message naming the
field or stored verbatim (and read back byte for byte); never executed, never a 500.

The admin part: reseller staff guessing another reseller's ids in every change, history,
delete and one-click action URL, and in bulk-action posts; and CSRF on every action.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.cache import cache
from django.test import Client
from django.urls import Resolver404, clear_url_caches, resolve, reverse
from rest_framework.test import APIClient

from accounts.api_keys import api_key_create, api_key_revoke
from accounts.models import Provider
from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.finalizing import invoice_finalize
from billing.models import Invoice, InvoiceEvent, Plan, Subscription
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from tests.reliability import tally

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 10, 12, tzinfo=dt.UTC)
NOW_APRIL = dt.datetime(2026, 5, 10, 12, tzinfo=dt.UTC)  # April closed, grace over
INJECTIONS = [
    "'; DROP TABLE accounts_customer; --",
    "Robert'); DELETE FROM billing_invoice WHERE ('1'='1",
    "<script>alert(document.cookie)</script>",
    "{{ settings.SECRET_KEY }}${7*7}%(password)s",
    "../../../../etc/passwd",
    "\u202eexe.piz",
    "line one\r\nBcc: victim@example.com",
    "nul\x00byte",
    "x" * 5000,
]


@dataclass
class Tenant:
    reseller: object
    customer: object
    upstream: object
    sub_account: object
    plan: object
    subscription: object
    draft: object
    issued: object
    reseller_key: str
    customer_key: str
    revoked_key: str


def _tenant(tag: str) -> Tenant:
    reseller = factories.ResellerFactory(name=f"{tag} Ltd", invoice_prefix=tag)
    customer = factories.CustomerFactory(reseller=reseller, name=f"{tag} customer")
    other = factories.CustomerFactory(reseller=reseller, name=f"{tag} second customer")
    upstream = factories.UpstreamAccountFactory(reseller=reseller, name=f"{tag} ipfoxy")
    factories.UpstreamAccountFactory(
        reseller=reseller, name=f"{tag} bytesflows", provider=Provider.BYTESFLOWS, credentials={}
    )
    sub = factories.SubAccountFactory(customer=customer, upstream_account=upstream)
    plan = PlanFactory(reseller=reseller)
    subscription = SubscriptionFactory(customer=customer, plan=plan)
    SubscriptionFactory(customer=other, plan=plan)
    add_usage(sub, dt.date(2026, 3, 1), 31, 3)
    invoices_generate_for_period(reseller=reseller, period_start=dt.date(2026, 3, 1), now=NOW)
    issued, draft = Invoice.objects.filter(reseller=reseller).order_by("customer_id")
    invoice_finalize(invoice=issued, now=NOW, send_email=False)
    issued.refresh_from_db()
    revoked_obj, revoked = api_key_create(reseller=reseller, customer=customer, name="old")
    api_key_revoke(api_key=revoked_obj, now=NOW)
    return Tenant(
        reseller=reseller,
        customer=customer,
        upstream=upstream,
        sub_account=sub,
        plan=plan,
        subscription=subscription,
        draft=draft,
        issued=issued,
        reseller_key=api_key_create(reseller=reseller, name="drill")[1],
        customer_key=api_key_create(reseller=reseller, customer=customer, name="c")[1],
        revoked_key=revoked,
    )


def _counts() -> dict[str, int]:
    """Rows of every model (what 'nothing stored' is checked against)."""
    return {
        m._meta.label: m._default_manager.count()
        for app in ("accounts", "usage", "billing")
        for m in apps.get_app_config(app).get_models()
    }


class Api:
    """Sends requests and keeps what came back; no response may be a 5xx."""

    def __init__(self):
        self.sent: list[tuple[str, int]] = []

    def call(self, key, method, path, body=None, *, raw=None, content_type=None, **extra):
        client = APIClient()
        if key is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        if raw is not None:
            response = getattr(client, method)(path, raw, content_type=content_type, **extra)
        elif method == "get":
            response = client.get(path, body or {})
        else:
            response = getattr(client, method)(path, body, format="json")
        label = f"{method.upper()} {path} {str(body)[:60] if raw is None else '<raw>'}"
        self.sent.append((label, response.status_code))
        assert response.status_code < 500, (label, response.content[:500])
        return response

    def refused(self, *args, fields=(), status=400, **kwargs):
        """A 4xx in the one error shape, naming `fields` when given."""
        response = self.call(*args, **kwargs)
        allowed = status if isinstance(status, tuple) else (status,)
        assert response.status_code in allowed, (args, response.status_code, response.content[:400])
        body = response.json()
        assert set(body) == {"code", "message", "extra"} and body["message"], body
        for name in fields:
            assert name in json.dumps(body["extra"]), (name, body)
        return body


@pytest.fixture
def tenants(settings):
    cache.clear()  # throttle counters
    return _tenant("AA"), _tenant("BB")


def _creates(a: Tenant) -> list[tuple[str, dict, list[str]]]:
    """(path, a valid body, its text fields): every endpoint that stores what it is sent."""
    return [
        (
            "/api/v1/reseller/customers/",
            {"name": "New Co", "email": "new@example.com"},
            [
                "name",
                "cc_emails",
                "address_line1",
                "address_line2",
                "city",
                "postal_code",
                "country",
                "tax_id",
                "currency",
                "status",
                "email",
            ],
        ),
        (
            "/api/v1/reseller/upstream-accounts/",
            {
                "name": "new upstream",
                "provider": "ipfoxy",
                "credentials": {"api_id": "id", "api_token": "token"},
            },
            ["name", "base_url", "provider"],
        ),
        (
            "/api/v1/reseller/sub-accounts/",
            {
                "customer": a.customer.pk,
                "upstream_account": a.upstream.pk,
                "upstream_id": "NEW0001",
                "label": "new",
            },
            ["upstream_id", "label", "status"],
        ),
        (f"/api/v1/reseller/customers/{a.customer.pk}/api-keys/", {"name": "k"}, ["name"]),
        (
            "/api/v1/reseller/plans/",
            {
                "code": "new-plan",
                "name": "New",
                "base_fee": "5.00",
                "pricing_model": "package",
                "package_size": "10",
                "package_price": "3.00",
            },
            ["code", "name", "currency", "pricing_model"],
        ),
    ]


@pytest.mark.slow
def test_injection_strings_in_every_text_field_are_refused_or_stored_verbatim(tenants, monkeypatch):
    a, _ = tenants
    # The manual add asks IPFoxy whether it lists the id: here it lists every one (the check
    # itself is tests/usage/test_provisioning.py's).
    from usage.services import provisioning

    monkeypatch.setattr(provisioning, "upstream_sub_account_check", lambda **kwargs: {})
    api = Api()
    stored = refused = 0
    for path, valid, text_fields in _creates(a):
        for name in text_fields:
            for value in INJECTIONS:
                before = _counts()
                body = {**valid, name: value}
                response = api.call(a.reseller_key, "post", path, body)
                if response.status_code in (200, 201):
                    stored += 1
                    created = response.json()
                    if name in created:
                        assert created[name] == value, (path, name)
                    _undo(path, created)
                else:
                    refused += 1
                    assert response.status_code == 400, (path, name, response.content[:300])
                    assert name in json.dumps(response.json()["extra"]), (path, name)
                    assert _counts() == before, (path, name, value[:20])
    # NUL bytes and 5,000 characters are refused everywhere; the rest is data.
    assert refused >= 2 * sum(len(f) for _, _, f in _creates(a))
    assert stored > 0
    for value in INJECTIONS:  # query parameters too
        for path, param in [
            ("/api/v1/reseller/invoices/", "period"),
            ("/api/v1/reseller/invoices/", "status"),
            ("/api/v1/reseller/invoices/", "customer"),
            ("/api/v1/reseller/usage/", "granularity"),
            ("/api/v1/reseller/usage/", "from"),
        ]:
            api.refused(a.reseller_key, "get", path, {param: value}, fields=[param])
    tally.add("hostile_requests", len(api.sent))


def _finalized_invoices(tenant: Tenant, count: int) -> list:
    """`count` more finalized invoices of the tenant (April, one customer each)."""
    customers = [
        factories.CustomerFactory(reseller=tenant.reseller, name=f"action {index}")
        for index in range(count)
    ]
    for customer in customers:
        SubscriptionFactory(customer=customer, plan=tenant.plan)
    april = dt.date(2026, 4, 1)
    invoices_generate_for_period(reseller=tenant.reseller, period_start=april, now=NOW_APRIL)
    invoices = list(
        Invoice.objects.filter(customer__in=customers, period_start=april).order_by("pk")
    )
    for invoice in invoices:
        invoice_finalize(invoice=invoice, now=NOW_APRIL, send_email=False)
    return invoices


@pytest.mark.slow
def test_injection_strings_in_the_void_reason_and_payment_note_are_refused_or_kept_verbatim(
    tenants,
):
    """The two text fields of the invoice actions, each value against a live invoice."""
    a, _ = tenants
    api = Api()
    actions = [("void", "reason", "void"), ("mark-paid", "note", "paid")]
    invoices = iter(_finalized_invoices(a, len(actions) * len(INJECTIONS)))
    outcomes = {"stored": 0, "refused": 0}
    for verb, field, to_status in actions:
        for value in INJECTIONS:
            invoice = next(invoices)
            url = f"/api/v1/reseller/invoices/{invoice.pk}/{verb}/"
            events = InvoiceEvent.objects.filter(invoice=invoice).count()
            response = api.call(a.reseller_key, "post", url, {field: value})
            if response.status_code == 200:
                outcomes["stored"] += 1
                assert response.json()["status"] == to_status
                event = InvoiceEvent.objects.filter(invoice=invoice).latest("pk")
                assert (event.to_status, event.note) == (to_status, value)
            else:
                outcomes["refused"] += 1
                assert response.status_code == 400, (verb, response.content[:300])
                assert field in json.dumps(response.json()["extra"]), verb
                assert InvoiceEvent.objects.filter(invoice=invoice).count() == events
                assert Invoice.objects.get(pk=invoice.pk).status == "finalized"
    # NUL bytes and 5,000 characters are refused; SQL, HTML, templates, paths are data.
    assert outcomes == {"stored": 14, "refused": 4}
    tally.add("hostile_requests", len(api.sent))


def _undo(path: str, created: dict) -> None:
    """Remove what a successful create stored, so unique fields do not refuse the next."""
    from accounts.models import ApiKey, Customer, SubAccount, UpstreamAccount

    model = {
        "customers/": Customer,
        "upstream-accounts/": UpstreamAccount,
        "sub-accounts/": SubAccount,
        "api-keys/": ApiKey,
        "plans/": Plan,
    }
    for suffix, cls in model.items():
        if path.endswith(suffix) and "id" in created:
            cls.objects.filter(pk=created["id"]).delete()


@pytest.mark.slow
def test_malformed_oversized_and_absurd_input_is_a_clear_4xx_and_stores_nothing(tenants):
    a, b = tenants
    api = Api()
    key = a.reseller_key
    customers = "/api/v1/reseller/customers/"
    plans = "/api/v1/reseller/plans/"
    before = _counts()

    # Bodies: too big, too deep, not JSON, not an object, wrong content type.
    api.refused(
        key,
        "post",
        customers,
        raw=b'{"name": "' + b"x" * 3_000_000 + b'"}',
        content_type="application/json",
        status=413,
    )
    api.refused(key, "post", customers, raw=b'{"name": "x",', content_type="application/json")
    for body in ([], "name", 42, None):
        api.refused(
            key, "post", customers, raw=json.dumps(body).encode(), content_type="application/json"
        )
    api.refused(
        key, "post", customers, raw=b"<customer/>", content_type="application/xml", status=415
    )

    # Unknown fields, including ones that would escalate.
    for extra in ({"reseller": b.reseller.pk}, {"id": 1}, {"is_staff": True}, {"api_key": "x"}):
        api.refused(
            key,
            "post",
            customers,
            {"name": "N", "email": "n@example.com", **extra},
            fields=list(extra),
        )

    # Money that is not a decimal, and negative or zero quantities.
    valid_plan = {
        "code": "p",
        "name": "P",
        "base_fee": "5.00",
        "pricing_model": "package",
        "package_size": "10",
        "package_price": "3.00",
    }
    for name in ("base_fee", "package_price", "package_size", "minimum_charge"):
        for value in (
            "ten",
            "1e400",
            "NaN",
            "Infinity",
            "-1",
            "1,50",
            "0x10",
            "",
            "1" * 40,
            "0.0000001",
            True,
            [],
            {"amount": 1},
        ):
            if name == "package_size" and value == "0.0000001":
                continue  # a fraction of a GB is a legal package size
            api.refused(key, "post", plans, {**valid_plan, name: value}, fields=[name])
    graduated = {"code": "g", "name": "G", "base_fee": "1", "pricing_model": "graduated"}
    for tiers in (
        [{"up_to": "-5", "unit_price": "1"}, {"unit_price": "1"}],
        [{"up_to": "10", "unit_price": "-1"}, {"unit_price": "1"}],
        [{"up_to": "abc", "unit_price": "1"}],
        [{"unit_price": "NaN"}],
    ):
        api.refused(key, "post", plans, {**graduated, "tiers": tiers}, fields=["tiers"])
    for name, value in (("tax_rate", "-5"), ("tax_rate", "1000"), ("tax_rate", "abc")):
        api.refused(
            key,
            "post",
            customers,
            {"name": "N", "email": "n@example.com", name: value},
            fields=[name],
        )
    upstreams = "/api/v1/reseller/upstream-accounts/"
    valid_upstream = {"name": "u", "provider": "bytesflows"}
    for name, value in (
        ("mb_bytes", -1),
        ("mb_bytes", 0),
        ("requests_per_minute", -5),
        ("requests_per_minute", 2**63),
        ("cost_per_gb", "-1"),
        ("cost_per_gb", "NaN"),
        ("base_url", "javascript:alert(1)"),
        ("base_url", "file:///etc/passwd"),
    ):
        api.refused(key, "post", upstreams, {**valid_upstream, name: value}, fields=[name])

    # Absurd dates.
    subs = "/api/v1/reseller/subscriptions/"
    sub_body = {"customer": a.customer.pk, "plan": a.plan.pk}
    for dates, fields in (
        ({"starts_on": "0000-01-01"}, ["starts_on"]),
        ({"starts_on": "2026-02-30"}, ["starts_on"]),
        ({"starts_on": "2030-01-01", "ends_on": "2029-01-01"}, ["ends_on"]),
        ({"starts_on": "99999-01-01"}, ["starts_on"]),
    ):
        api.refused(key, "post", subs, {**sub_body, **dates}, fields=fields)
    usage = "/api/v1/usage/"
    for query, fields in (
        ({"from": "0000-01-01", "to": "0000-01-31"}, ["from"]),
        ({"from": "2026-03-10", "to": "2026-03-01"}, ["to"]),
        ({"from": "1926-01-01", "to": "2026-01-01"}, ["from"]),  # 100 years
        ({"from": "2000-01-01", "to": "2099-12-31", "granularity": "month"}, ["to"]),
        ({"from": "2026-03-01", "to": "2026-04-30", "granularity": "hour"}, ["to"]),
        ({"from": "yesterday", "to": "today"}, ["from", "to"]),
    ):
        api.refused(a.customer_key, "get", usage, query, fields=fields)
    invoices = "/api/v1/reseller/invoices/"
    for period in ("0000-01", "2026-13", "10000-01", "2026-1"):
        api.refused(key, "get", invoices, {"period": period}, fields=["period"])

    # Pages: huge limits are capped, nonsense is refused.
    for path in (customers, invoices, "/api/v1/reseller/sub-accounts/"):
        response = api.call(key, "get", path, {"limit": 10**9})
        assert response.status_code == 200 and len(response.json()["results"]) <= 500
    for query in (
        {"limit": -1},
        {"offset": -5},
        {"limit": "all"},
        {"offset": 10**30},
        {"limit": 10**30},
    ):
        response = api.call(key, "get", invoices, query)
        assert response.status_code in (200, 400), (query, response.status_code)
        if response.status_code == 200:
            assert response.json()["results"] == [] or "limit" in query

    # Another tenant's objects, by URL and inside bodies: like missing ones.
    for path in (
        f"/api/v1/reseller/customers/{b.customer.pk}/",
        f"/api/v1/reseller/invoices/{b.issued.pk}/",
        f"/api/v1/reseller/plans/{b.plan.pk}/",
        f"/api/v1/reseller/subscriptions/{b.subscription.pk}/",
        f"/api/v1/reseller/sub-accounts/{b.sub_account.pk}/",
    ):
        api.refused(key, "get", path, status=404)
        # 405 where PATCH does not exist at all: the same answer for every id.
        api.refused(key, "patch", path, {"name": "mine now"}, status=(404, 405))
    for verb in ("finalize", "mark-paid", "void"):
        api.refused(key, "post", f"/api/v1/reseller/invoices/{b.issued.pk}/{verb}/", {}, status=404)
        api.refused(key, "post", f"/api/v1/reseller/invoices/{b.draft.pk}/{verb}/", {}, status=404)
    api.refused(
        key,
        "post",
        subs,
        {"customer": b.customer.pk, "plan": a.plan.pk, "starts_on": "2026-05-01"},
        fields=["customer"],
    )
    api.refused(
        key,
        "post",
        subs,
        {"customer": a.customer.pk, "plan": b.plan.pk, "starts_on": "2026-05-01"},
        fields=["plan"],
    )
    api.refused(
        key,
        "post",
        "/api/v1/reseller/sync/",
        {"upstream_account": b.upstream.pk},
        fields=["upstream_account"],
    )
    api.refused(a.customer_key, "get", f"/api/v1/invoices/{b.issued.pk}/", status=404)
    api.refused(a.customer_key, "get", f"/api/v1/invoices/{a.draft.pk}/", status=404)
    api.refused(b.reseller_key, "get", f"/api/v1/reseller/customers/{a.customer.pk}/", status=404)
    api.refused(a.customer_key, "get", customers, status=403)

    # Revoked and made-up keys.
    for bad in (a.revoked_key, "fb_00000000_" + "A" * 43, "", "Bearer x", "fb_" + "\u00e9" * 10):
        api.refused(bad, "get", "/api/v1/me/", status=401)

    assert _counts() == before  # nothing stored by any of it
    assert Invoice.objects.get(pk=b.issued.pk).status == "finalized"
    assert Subscription.objects.filter(customer__reseller=a.reseller).count() == 2
    tally.add("hostile_requests", len(api.sent))


DEEP = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_a_body_nested_too_deeply_is_a_400_not_a_500(tenants):
    a, _ = tenants
    before = _counts()
    body = Api().refused(
        a.reseller_key, "post", "/api/v1/reseller/customers/", raw=DEEP,
        content_type="application/json",
    )  # fmt: skip
    assert body["code"] == "parse_error" and "nested too deeply" in body["message"]
    assert _counts() == before


def test_the_parser_answers_a_body_nested_too_deeply_with_a_parse_error():
    """core.parsers.JSONParser on its own (the API uses it once configured, see above)."""
    import io

    from rest_framework.exceptions import ParseError

    from core.parsers import JSONParser

    with pytest.raises(ParseError, match="nested too deeply"):
        JSONParser().parse(io.BytesIO(DEEP), "application/json", {})
    assert JSONParser().parse(io.BytesIO(b'{"a": [1]}'), "application/json", {}) == {"a": [1]}


def test_brute_forcing_keys_is_throttled_but_never_blocks_a_valid_key(tenants):
    """Issue 11.5: failures are counted per address after the key is checked, so 40 bad
    keys from one address throttle that guessing (429 + Retry-After) while a valid key from
    the same address (every client behind one proxy) still gets through."""
    a, _ = tenants
    api = Api()
    statuses = [
        api.call(
            f"fb_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}", "get", "/api/v1/me/"
        ).status_code
        for _ in range(40)
    ]
    assert statuses == [401] * 30 + [429] * 10
    guessing = api.call(a.revoked_key, "get", "/api/v1/me/")
    assert guessing.status_code == 429 and int(guessing["Retry-After"]) > 0
    assert api.call(a.customer_key, "get", "/api/v1/me/").status_code == 200
    assert api.call(a.reseller_key, "get", "/api/v1/reseller/customers/").status_code == 200
    tally.add("hostile_requests", len(api.sent))


# --------------------------------------------------------------------------- issue 11

PRODUCTION_HOSTS = {"ipfoxy": ["apis.ipfoxy.com"], "bytesflows": ["api.bytesflows.com"]}
HOSTILE_BASE_URLS = [
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://10.0.0.5:6379",  # an internal Redis
    "http://127.0.0.1:5432",  # the database port
    "http://[::1]:22",
    "ftp://apis.ipfoxy.com",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "https://apis.ipfoxy.com@attacker.example",  # user info hiding the real host
    "https://apis.ipfoxy.com.attacker.example",
    "https://attacker.example/?api-token=",
]


def test_base_url_cannot_be_redirected_to_exfiltrate_credentials(tenants, settings):
    """Issue 11.1: PATCH `base_url` alone is refused (the credentials must come with it), a
    host off the provider's allowlist or a non-http(s) URL is refused even with them, and
    the stored account is untouched."""
    a, _ = tenants
    settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS = PRODUCTION_HOSTS
    api = Api()
    path = f"/api/v1/reseller/upstream-accounts/{a.upstream.pk}/"
    before = (a.upstream.base_url, a.upstream.credentials)
    creds = {"api_id": "i", "api_token": "t"}
    api.refused(a.reseller_key, "patch", path, {"base_url": "https://apis.ipfoxy.com"},
                fields=["credentials"])  # fmt: skip
    for url in HOSTILE_BASE_URLS:
        body = api.refused(
            a.reseller_key, "patch", path, {"base_url": url, "credentials": creds},
            fields=["base_url"],
        )  # fmt: skip
        assert "attacker" not in json.dumps(body)
        api.refused(
            a.reseller_key, "post", "/api/v1/reseller/upstream-accounts/",
            {"name": "x", "provider": "ipfoxy", "base_url": url, "credentials": creds},
            fields=["base_url"],
        )  # fmt: skip
    a.upstream.refresh_from_db()
    assert (a.upstream.base_url, a.upstream.credentials) == before
    tally.add("hostile_requests", len(api.sent))


def test_a_stored_hostile_base_url_sends_nothing_and_sync_errors_map_no_network(
    tenants, settings, django_capture_on_commit_callbacks
):
    """Issue 11.1, defence in depth: a row stored before the rule (written around the
    services) still sends nothing when synced; and a refused connection is reported as
    "upstream unreachable" with no host, port or errno (no port scanner)."""
    import socket

    from accounts.models import UpstreamAccount
    from usage.services import usage_sync_sub_account

    a, _ = tenants
    api = Api()
    with socket.socket() as listener:  # a host that would receive the credentials
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        UpstreamAccount.objects.filter(pk=a.upstream.pk).update(base_url=f"http://127.0.0.1:{port}")
        settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS = PRODUCTION_HOSTS
        with django_capture_on_commit_callbacks(execute=True):  # the queued tasks run
            queued = api.call(
                a.reseller_key,
                "post",
                "/api/v1/reseller/sync/",
                {"upstream_account": a.upstream.pk},
            )
        assert queued.status_code == 202
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected: nothing was sent
    runs = [
        api.call(a.reseller_key, "get", f"/api/v1/reseller/sync-runs/{run_id}/").json()
        for run_id in queued.json()["sync_runs"]
    ]
    assert runs and {r["error_code"] for r in runs} == {"upstream_url_not_allowed"}
    assert all(str(port) not in r["error"] and "127.0.0.1" not in r["error"] for r in runs)

    # Allowed host, closed port: the error names neither (nor an errno).
    settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS = {"ipfoxy": ["127.0.0.1"]}
    a.sub_account.refresh_from_db()
    run = usage_sync_sub_account(
        sub_account=a.sub_account, start=NOW - dt.timedelta(hours=1), end=NOW, now=NOW
    )
    shown = api.call(a.reseller_key, "get", f"/api/v1/reseller/sync-runs/{run.pk}/").json()
    assert shown["error_code"] == "upstream_unavailable"
    assert "upstream unreachable" in shown["error"]
    for detail in (str(port), "127.0.0.1", "Errno", "refused"):
        assert detail not in shown["error"], shown["error"]
    tally.add("hostile_requests", len(api.sent) + 1)


def test_invoice_pdfs_are_not_served_from_media(tenants, settings):
    """Issue 11.2: with DEBUG on (the embedded default) the stored PDF's media path is a 404:
    no URL serves MEDIA_ROOT; the PDF comes only from the tenancy-checked views."""
    import importlib

    import config.urls
    from billing.invoicing.delivery import invoice_pdf_store

    a, b = tenants
    stored = invoice_pdf_store(invoice=b.issued, now=NOW)
    assert Path(stored.pdf.path).is_file()
    api = Api()
    settings.DEBUG = True
    try:
        importlib.reload(config.urls)  # the URLconf as the embedded (DEBUG) default builds it
        clear_url_caches()
        for path in (f"/media/{stored.pdf.name}", "/media/invoices/", f"/{stored.pdf.name}"):
            with pytest.raises(Resolver404):
                resolve(path)
            assert Client().get(path).status_code == 404
        staff_a = Client()
        staff_a.force_login(factories.StaffUserFactory(reseller=a.reseller))
        assert staff_a.get(f"/media/{stored.pdf.name}").status_code == 404
    finally:
        settings.DEBUG = False
        importlib.reload(config.urls)
        clear_url_caches()
    pdf = f"/api/v1/reseller/invoices/{b.issued.pk}/pdf/"
    api.refused(a.reseller_key, "get", pdf, status=404)
    own = api.call(b.reseller_key, "get", pdf)
    assert own.status_code == 200 and own["Content-Type"] == "application/pdf"
    tally.add("hostile_requests", len(api.sent) + 4)


def test_admin_filters_never_list_another_resellers_objects(tenants, client):
    """Issue 11.3: every change list's filter sidebar of reseller A's staff, with reseller B's
    objects named so they would show."""
    a, b = tenants
    Plan.objects.filter(reseller=b.reseller).update(name="BB plan")
    b_names = ["BB Ltd", "BB customer", "BB second customer", "BB ipfoxy", "BB bytesflows",
               "BB plan"]  # fmt: skip
    client.force_login(factories.StaffUserFactory(reseller=a.reseller))
    pages = 0
    for _model_admin, model in _tenant_models():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        html = client.get(url).content.decode()
        for name in b_names:
            assert name not in html, (url, name)
        pages += 1
    assert pages > 10
    tally.add("hostile_requests", pages)


def test_admin_login_brute_force_is_locked_out(tenants, settings):
    """Issue 11.4: after AXES_FAILURE_LIMIT wrong passwords for one username from one
    address, even the right password is refused (429) until the cool-off."""
    staff = factories.StaffUserFactory(reseller=tenants[0].reseller, username="target")
    client = Client()
    login = reverse("admin:login")
    statuses = [
        client.post(login, {"username": "target", "password": f"guess-{n}"}).status_code
        for n in range(settings.AXES_FAILURE_LIMIT + 3)
    ]
    right = client.post(login, {"username": staff.username, "password": "pw-Staff-123"})
    assert statuses[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert set(statuses[settings.AXES_FAILURE_LIMIT - 1 :]) == {429}
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    tally.add("hostile_requests", len(statuses) + 1)


def test_reseller_keys_are_listed_without_secrets_and_revoked_at_once(tenants):
    """Issue 11.6: a reseller lists its keys (prefixes only) and revokes one: the next
    request with it is a 401; another reseller's key id is a 404 and stays valid."""
    a, b = tenants
    api = Api()
    leaked_row, leaked = api_key_create(reseller=a.reseller, name="leaked")
    listing = api.call(a.reseller_key, "get", "/api/v1/reseller/api-keys/")
    assert leaked_row.prefix in listing.content.decode()
    assert leaked not in listing.content.decode() and a.reseller_key not in listing.content.decode()
    assert api.call(leaked, "get", "/api/v1/reseller/customers/").status_code == 200
    revoked = api.call(a.reseller_key, "delete", f"/api/v1/reseller/api-keys/{leaked_row.pk}/")
    assert revoked.status_code == 200  # with the key and `customer_keys_revoked` (issue 15)
    api.refused(leaked, "get", "/api/v1/reseller/customers/", status=401)
    b_id = api.call(b.reseller_key, "get", "/api/v1/reseller/api-keys/").json()["results"][0]["id"]
    api.refused(a.reseller_key, "delete", f"/api/v1/reseller/api-keys/{b_id}/", status=404)
    assert api.call(b.reseller_key, "get", "/api/v1/reseller/customers/").status_code == 200
    api.refused(a.reseller_key, "post", "/api/v1/reseller/api-keys/", {"name": "x"}, status=403)
    tally.add("hostile_requests", len(api.sent))


# --------------------------------------------------------------------------- admin


def _tenant_models():
    """(model admin, model) for every admin registered for a tenant-owned model."""
    for model, model_admin in admin.site._registry.items():
        if hasattr(model, "tenant_path"):
            yield model_admin, model


def _objects_of(tenant: Tenant, model):
    reseller_field = model.tenant_path
    lookup = "pk" if reseller_field == "pk" else f"{reseller_field}_id"
    return list(model._default_manager.filter(**{lookup: tenant.reseller.pk})[:3])


def _bulk_actions(model_admin) -> list[str]:
    """The changelist's bulk actions by name, the site-wide `delete_selected` included."""
    names = [n for n in (model_admin.actions or []) if isinstance(n, str)]
    return [*names, "delete_selected"]


def _snapshot():
    return {
        "invoices": list(Invoice.objects.order_by("pk").values_list("pk", "status", "number")),
        "counts": _counts(),
    }


def test_staff_cannot_reach_another_resellers_objects_by_guessing_ids(tenants, client):
    a, b = tenants
    staff = factories.StaffUserFactory(reseller=a.reseller)
    client.force_login(staff)
    before = _snapshot()
    sent = 0
    for model_admin, model in _tenant_models():
        info = (model._meta.app_label, model._meta.model_name)
        actions = [action.name for action in getattr(model_admin, "object_actions", ())]
        for obj in _objects_of(b, model):
            for view in ("change", "history", "delete"):
                url = reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj.pk])
                assert client.get(url).status_code == 404, url
                sent += 1
            delete = reverse(f"admin:{info[0]}_{info[1]}_delete", args=[obj.pk])
            assert client.post(delete, {"post": "yes"}).status_code == 404, delete
            sent += 1
            change = reverse(f"admin:{info[0]}_{info[1]}_change", args=[obj.pk])
            assert client.post(change, {"name": "taken over"}).status_code == 404, change
            sent += 1
            for action in actions:
                url = reverse(f"admin:{info[0]}_{info[1]}_action", args=[obj.pk, action])
                assert client.post(url, {"reason": "x", "name": "k"}).status_code == 404, url
                sent += 1
        # Bulk actions posted with the other reseller's ids change nothing.
        bulk = _bulk_actions(model_admin)
        changelist = reverse(f"admin:{info[0]}_{info[1]}_changelist")
        ids = [obj.pk for obj in _objects_of(b, model)]
        for action in bulk:
            response = client.post(changelist, {"action": action, "_selected_action": ids})
            assert response.status_code in (200, 302), (changelist, action)
            sent += 1
    assert _snapshot() == before
    assert sent > 50
    tally.add("hostile_requests", sent)


def test_every_admin_action_needs_the_csrf_token(tenants):
    a, _ = tenants
    staff = factories.StaffUserFactory(reseller=a.reseller)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    before = _snapshot()
    sent = 0
    for model_admin, model in _tenant_models():
        info = (model._meta.app_label, model._meta.model_name)
        for obj in _objects_of(a, model):
            for action in getattr(model_admin, "object_actions", ()):
                url = reverse(f"admin:{info[0]}_{info[1]}_action", args=[obj.pk, action.name])
                assert client.post(url, {"reason": "x", "name": "k"}).status_code == 403, url
                sent += 1
            delete = reverse(f"admin:{info[0]}_{info[1]}_delete", args=[obj.pk])
            assert client.post(delete, {"post": "yes"}).status_code == 403
            sent += 1
        changelist = reverse(f"admin:{info[0]}_{info[1]}_changelist")
        ids = [obj.pk for obj in _objects_of(a, model)]
        for action in _bulk_actions(model_admin):
            response = client.post(changelist, {"action": action, "_selected_action": ids})
            assert response.status_code == 403, (changelist, action)
            sent += 1
        add = reverse(f"admin:{info[0]}_{info[1]}_add")
        assert client.post(add, {"name": "x"}).status_code == 403
        sent += 1
    assert _snapshot() == before
    tally.add("hostile_requests", sent)
