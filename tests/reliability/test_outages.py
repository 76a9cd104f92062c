"""The database or the broker briefly unavailable.

- Web: every kind of page answers 503 with a clear error and a Retry-After while the
  database (or the broker) cannot be reached, never a stack trace or the driver's message,
  stores nothing, and answers normally again once the service is back.
- Workers (real ones, behind a TCP proxy the drill cuts): tasks that meet the outage fail
  without taking the worker down, and the work converges once the service is back.
"""

from __future__ import annotations

import pytest
from django.db import OperationalError, connections
from kombu.exceptions import OperationalError as BrokerError

from accounts.api_keys import api_key_create
from accounts.models import Customer
from tests import factories
from tests.reliability import tally

# What the drivers say when the service is gone: host, port and user name must not leak.
DB_DOWN = 'connection to server at "10.0.0.5", port 5432 failed: FATAL: role "flowbill-prod"'
BROKER_DOWN = "Error 111 connecting to 10.0.0.6:6379. Connection refused."
LEAKS = ("10.0.0.5", "10.0.0.6", "flowbill-prod", "Traceback", "OperationalError", "psycopg")


@pytest.fixture
def tenant(db, client):
    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller)
    staff = factories.StaffUserFactory(reseller=reseller)
    client.force_login(staff)
    return {
        "reseller": reseller,
        "reseller_key": api_key_create(reseller=reseller, name="drill")[1],
        "customer_key": api_key_create(reseller=reseller, customer=customer, name="c")[1],
        "staff_client": client,
    }


def _requests(tenant):
    """(label, client method, path, body, key): one of each kind of page."""
    reseller_key, customer_key = tenant["reseller_key"], tenant["customer_key"]
    new_customer = {"name": "Outage Ltd", "email": "outage@example.com"}
    return [
        ("reseller list", "get", "/api/v1/reseller/customers/", None, reseller_key),
        ("reseller create", "post", "/api/v1/reseller/customers/", new_customer, reseller_key),
        ("reseller invoices", "get", "/api/v1/reseller/invoices/", None, reseller_key),
        ("sync on request", "post", "/api/v1/reseller/sync/", {}, reseller_key),
        ("customer me", "get", "/api/v1/me/", None, customer_key),
        ("customer usage", "get", "/api/v1/usage/current/", None, customer_key),
        ("admin index", "get", "/admin/", None, None),
        ("admin list", "get", "/admin/accounts/customer/", None, None),
        ("health check", "get", "/healthz", None, None),
    ]


def _send(tenant, method, path, body, key):
    from rest_framework.test import APIClient

    if key is None:
        client = tenant["staff_client"]
        return getattr(client, method)(path)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return getattr(api, method)(path, body, format="json")


def _assert_clear_503(response, service: str):
    text = response.content.decode()
    assert response.status_code == 503, text[:500]
    assert not any(leak in text for leak in LEAKS), text[:500]
    if response["Content-Type"].startswith("application/json"):
        body = response.json()
        if "code" in body:  # the API's error shape (the health check has its own)
            assert body["code"] == "service_unavailable"
            assert body["extra"]["service"] == service
            assert "try again" in body["message"]
    else:
        assert "temporarily unavailable" in text
    return text


def test_every_page_answers_503_while_the_database_is_down_then_recovers(tenant, monkeypatch):
    db = connections["default"]
    requests = _requests(tenant)
    customers_before = Customer.objects.count()

    def down(*args, **kwargs):
        raise db.Database.OperationalError(DB_DOWN)

    with monkeypatch.context() as outage:
        outage.setattr(db, "create_cursor", down)
        for label, method, path, body, key in requests:
            response = _send(tenant, method, path, body, key)
            _assert_clear_503(response, "database")
            if label != "health check":
                assert response["Retry-After"] == "30", label
            tally.add("outages")
    assert Customer.objects.count() == customers_before  # nothing stored

    for label, method, path, body, key in requests:
        assert _send(tenant, method, path, body, key).status_code < 400, label
    assert Customer.objects.count() == customers_before + 1  # the create went through now


def test_a_database_error_raised_inside_middleware_is_a_503_too(tenant, monkeypatch):
    """A session write fails in SessionMiddleware, after the view: no view can catch it."""

    def down(self, request, response):
        raise OperationalError(DB_DOWN)  # as Django's cursor wrapper raises it

    monkeypatch.setattr(
        "django.contrib.sessions.middleware.SessionMiddleware.process_response", down
    )
    client = tenant["staff_client"]
    client.raise_request_exception = False  # see the response a browser would get
    _assert_clear_503(client.get("/admin/"), "database")


def test_sync_on_request_answers_503_when_the_broker_is_down(tenant, monkeypatch):
    from celery.app.task import Task

    upstream = factories.UpstreamAccountFactory(reseller=tenant["reseller"])
    factories.SubAccountFactory(
        customer=Customer.objects.filter(reseller=tenant["reseller"]).first(),
        upstream_account=upstream,
    )

    def down(self, *args, **kwargs):
        raise BrokerError(BROKER_DOWN)

    monkeypatch.setattr(Task, "apply_async", down)
    response = _send(tenant, "post", "/api/v1/reseller/sync/", {}, tenant["reseller_key"])
    _assert_clear_503(response, "task broker")
    assert response["Retry-After"] == "30"
    tally.add("outages")


def test_a_bug_is_still_a_500_not_a_503(tenant, monkeypatch):
    """Only unreachable services become 503: a programming error must stay visible."""
    from django.test import Client

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("accounts.api.views.MeView.get", bug)
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Api-Key {tenant['customer_key']}")
    assert response.status_code == 500
