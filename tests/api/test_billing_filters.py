"""Billing lists parse their query strictly: unknown, repeated or bad parameters are 400
naming them; a foreign customer/plan in a filter is 404. Customer invoices filter by status
and months and sort newest first on request."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.api_keys import api_key_create
from billing.invoicing.voiding import invoice_void
from billing.models import InvoiceStatus
from tests import factories
from tests.api.conftest import key_client
from tests.billing.factories import PlanFactory, SubscriptionFactory
from tests.billing.test_credit_notes import make_issued_invoice

R = "/api/v1/reseller"
NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


@pytest.fixture
def months(customer, settings, tmp_path):
    """August (paid), September (void), October (finalized) invoices of one customer."""
    settings.MEDIA_ROOT = tmp_path
    aug = make_issued_invoice(customer, period_start=dt.date(2026, 8, 1), status=InvoiceStatus.PAID)
    sep = make_issued_invoice(customer, period_start=dt.date(2026, 9, 1))
    invoice_void(invoice=sep, now=NOW)
    oct_ = make_issued_invoice(customer, period_start=dt.date(2026, 10, 1))
    return aug, sep, oct_


@pytest.fixture
def customer_api(reseller, customer):
    return key_client(api_key_create(reseller=reseller, customer=customer, name="c")[1])


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_customer_invoices_filters_and_ordering(customer_api, months):
    aug, sep, oct_ = months
    url = "/api/v1/invoices/"
    assert _ids(customer_api.get(url)) == [aug.pk, sep.pk, oct_.pk]
    assert _ids(customer_api.get(url, {"ordering": "-period_start"})) == [oct_.pk, sep.pk, aug.pk]
    assert _ids(customer_api.get(url, {"ordering": "-number"})) == [oct_.pk, sep.pk, aug.pk]
    assert _ids(customer_api.get(url, {"status": "paid"})) == [aug.pk]
    assert _ids(customer_api.get(url, {"status": "void"})) == [sep.pk]
    assert _ids(customer_api.get(url, {"period": "2026-09"})) == [sep.pk]
    assert _ids(customer_api.get(url, {"period_from": "2026-09"})) == [sep.pk, oct_.pk]
    assert _ids(customer_api.get(url, {"period_to": "2026-09"})) == [aug.pk, sep.pk]
    assert _ids(
        customer_api.get(
            url, {"period_from": "2026-09", "period_to": "2026-09", "ordering": "-period_start"}
        )
    ) == [sep.pk]
    assert _ids(customer_api.get(url, {"period": "2026-11"})) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bogus": "1"}, "bogus"),
        ({"status": "draft"}, "status"),  # drafts are never the customer's
        ({"status": "bogus"}, "status"),
        ({"period": "2026-13"}, "period"),
        ({"period_from": "2026-1"}, "period_from"),
        ({"period_from": "2026-10", "period_to": "2026-09"}, "period_to"),
        ({"ordering": "total"}, "ordering"),
        ({"status": ["paid", "void"]}, "status"),  # repeated
    ],
)
def test_customer_invoices_bad_parameters_are_400(customer_api, months, params, field):
    response = customer_api.get("/api/v1/invoices/", params)
    assert response.status_code == 400, response.content
    assert field in response.json()["extra"]["fields"]


def test_plans_list_filters_is_active_and_refuses_unknown(reseller_api, reseller):
    active = PlanFactory(reseller=reseller)
    retired = PlanFactory(reseller=reseller, is_active=False)
    PlanFactory()  # another reseller's
    assert _ids(reseller_api.get(f"{R}/plans/")) == [active.pk, retired.pk]
    assert _ids(reseller_api.get(f"{R}/plans/", {"is_active": "true"})) == [active.pk]
    assert _ids(reseller_api.get(f"{R}/plans/", {"is_active": "false"})) == [retired.pk]
    for params, field in (({"active": "1"}, "active"), ({"is_active": "perhaps"}, "is_active")):
        response = reseller_api.get(f"{R}/plans/", params)
        assert response.status_code == 400 and field in response.json()["extra"]["fields"]


def test_subscriptions_list_filters_and_404_for_foreign_ids(reseller_api, reseller):
    plan_a, plan_b = PlanFactory(reseller=reseller), PlanFactory(reseller=reseller)
    one = SubscriptionFactory(customer=factories.CustomerFactory(reseller=reseller), plan=plan_a)
    two = SubscriptionFactory(customer=factories.CustomerFactory(reseller=reseller), plan=plan_b)
    url = f"{R}/subscriptions/"
    assert _ids(reseller_api.get(url)) == [one.pk, two.pk]
    assert _ids(reseller_api.get(url, {"customer": two.customer_id})) == [two.pk]
    assert _ids(reseller_api.get(url, {"plan": plan_a.pk})) == [one.pk]
    foreign = SubscriptionFactory()
    for params in (
        {"customer": foreign.customer_id},
        {"plan": foreign.plan_id},
        {"customer": 999999},
    ):
        response = reseller_api.get(url, params)
        assert response.status_code == 404, (params, response.content)
    for params, field in (({"customer": "x"}, "customer"), ({"status": "active"}, "status")):
        response = reseller_api.get(url, params)
        assert response.status_code == 400 and field in response.json()["extra"]["fields"]


def test_reseller_invoices_and_credit_notes_refuse_bad_parameters(reseller_api, months, customer):
    url = f"{R}/invoices/"
    assert len(_ids(reseller_api.get(url, {"customer": customer.pk}))) == 3
    for params, status, field in (
        ({"status": "bogus"}, 400, "status"),
        ({"period": "2026-13"}, 400, "period"),
        ({"sort": "x"}, 400, "sort"),
        ({"customer": factories.CustomerFactory().pk}, 404, None),
    ):
        response = reseller_api.get(url, params)
        assert response.status_code == status, (params, response.content)
        if field:
            assert field in response.json()["extra"]["fields"]
    response = reseller_api.get(f"{R}/credit-notes/", {"invoice": 1})
    assert response.status_code == 400 and "invoice" in response.json()["extra"]["fields"]
