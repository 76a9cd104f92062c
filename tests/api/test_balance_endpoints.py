"""Balance and top-up API: the reseller's view of a customer's balance and ledger,
adjustments (201/400/404/409), the automatic top-up rule, top-ups (issue, list, 404 for
another reseller's customer), invoices showing `balance_applied`, and the customer's own
balance and top-ups."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.api_keys import api_key_create
from billing.balance.services import balance_adjust
from billing.invoicing.finalizing import invoice_finalize
from billing.topups.models import TopUp
from tests import factories
from tests.api.conftest import key_client
from tests.billing.test_balance import october_draft

R = "/api/v1/reseller"
NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def customer_api(customer):
    return key_client(api_key_create(reseller=customer.reseller, customer=customer, name="c")[1])


def test_adjusting_and_reading_a_customers_balance(reseller_api, customer):
    url = f"{R}/customers/{customer.pk}/balance/"
    assert reseller_api.get(url).json() == {
        "customer": customer.pk,
        "balances": [
            {
                "currency": "USD",
                "amount": "0.00",
                "auto_top_up_threshold": None,
                "auto_top_up_amount": None,
            }
        ],
        "entries": [],
    }
    response = reseller_api.post(
        f"{url}adjustments/", {"amount": "25.00", "reason": "Goodwill"}, format="json"
    )
    assert response.status_code == 201, response.content
    entry = response.json()
    assert (entry["kind"], entry["amount"], entry["currency"], entry["reason"]) == (
        "adjustment",
        "25.00",
        "USD",
        "Goodwill",
    )
    assert entry["created_by"].startswith("api-key ")
    refused = reseller_api.post(
        f"{url}adjustments/", {"amount": "-25.01", "reason": "Wire"}, format="json"
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "balance_insufficient")
    for body, code in (
        ({"amount": "5", "reason": ""}, "validation_error"),
        ({"amount": "5.001", "reason": "x"}, "invalid_amount"),
        ({"amount": "5", "reason": "x", "surprise": 1}, "validation_error"),
    ):
        bad = reseller_api.post(f"{url}adjustments/", body, format="json")
        assert (bad.status_code, bad.json()["code"]) == (400, code), bad.content
    body = reseller_api.get(url).json()
    assert body["balances"][0]["amount"] == "25.00" and len(body["entries"]) == 1


def test_another_resellers_customer_is_a_404(reseller_api):
    other = factories.CustomerFactory()
    for path in ("balance/", "top-ups/"):
        assert reseller_api.get(f"{R}/customers/{other.pk}/{path}").status_code == 404
    response = reseller_api.post(
        f"{R}/customers/{other.pk}/balance/adjustments/",
        {"amount": "5.00", "reason": "x"},
        format="json",
    )
    assert response.status_code == 404
    assert (
        reseller_api.post(
            f"{R}/customers/{other.pk}/top-ups/", {"amount": "5.00"}, format="json"
        ).status_code
        == 404
    )


def test_a_top_up_is_issued_listed_and_credited_when_paid(reseller_api, customer, customer_api):
    url = f"{R}/customers/{customer.pk}/top-ups/"
    response = reseller_api.post(url, {"amount": "100.00"}, format="json")
    assert response.status_code == 201, response.content
    top_up = response.json()
    assert (top_up["status"], top_up["amount"], top_up["bytes"]) == ("open", "100.00", None)
    invoice = reseller_api.get(f"{R}/invoices/{top_up['invoice']}/").json()
    assert (invoice["kind"], invoice["number"], invoice["tax"], invoice["total"]) == (
        "top_up",
        top_up["invoice_number"],
        "0.00",
        "100.00",
    )
    paid = reseller_api.post(f"{R}/invoices/{top_up['invoice']}/mark-paid/", {}, format="json")
    assert paid.status_code == 200, paid.content
    (listed,) = reseller_api.get(url).json()["results"]
    assert (listed["id"], listed["status"]) == (top_up["id"], "credited")
    mine = customer_api.get("/api/v1/balance/").json()
    assert mine["balances"][0]["amount"] == "100.00"
    assert mine["entries"][0]["kind"] == "top_up"
    assert [t["id"] for t in customer_api.get("/api/v1/top-ups/").json()["results"]] == [
        top_up["id"]
    ]
    for body in ({}, {"amount": "1", "bytes": 5}, {"amount": "0"}, {"bytes": 0}):
        bad = reseller_api.post(url, body, format="json")
        assert bad.status_code == 400, (body, bad.content)
    assert TopUp.objects.count() == 1


def test_an_invoice_shows_the_balance_applied_and_what_is_left_due(
    reseller_api, customer, customer_api
):
    balance_adjust(customer=customer, amount="50.00", reason="Prepaid", now=NOW)
    invoice = invoice_finalize(
        invoice=october_draft(customer), now=dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)
    )
    for api, path in ((reseller_api, f"{R}/invoices/"), (customer_api, "/api/v1/invoices/")):
        body = api.get(f"{path}{invoice.pk}/").json()
        assert (body["total"], body["balance_applied"], body["balance_due"]) == (
            "72.00",
            "50.00",
            "22.00",
        )
        (row,) = api.get(path).json()["results"]
        assert (row["balance_applied"], row["balance_due"], row["kind"]) == (
            "50.00",
            "22.00",
            "period",
        )
    assert Decimal(customer_api.get("/api/v1/balance/").json()["balances"][0]["amount"]) == 0


def test_the_automatic_top_up_rule_is_set_and_cleared(reseller_api, customer):
    url = f"{R}/customers/{customer.pk}/balance/auto-top-up/"
    response = reseller_api.post(url, {"threshold": "20.00", "amount": "100.00"}, format="json")
    assert response.status_code == 200, response.content
    (figure,) = response.json()["balances"]
    assert (figure["auto_top_up_threshold"], figure["auto_top_up_amount"]) == ("20.00", "100.00")
    assert TopUp.objects.get().automatic  # 0 is below 20: one was issued at once
    bad = reseller_api.post(url, {"threshold": "20.00", "amount": None}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "auto_top_up_rule_invalid")
    cleared = reseller_api.post(url, {"threshold": None, "amount": None}, format="json")
    assert cleared.json()["balances"][0]["auto_top_up_threshold"] is None
