"""`customers/{id}/suspend/`, `.../reinstate/` and `sub-accounts/{id}/close/` over HTTP:
the customer answered with its suspension fields, the access changes recorded, the codes of
every refusal, and a suspended customer's keys still reading what it owes."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.api_keys import api_key_create
from accounts.models import Provider
from tests import factories
from tests.api.conftest import key_client
from usage.models import AccessChange

C = "/api/v1/reseller/customers"
S = "/api/v1/reseller/sub-accounts"


@pytest.fixture
def ipfoxy_sub(customer, reseller):
    return factories.SubAccountFactory(
        customer=customer,
        upstream_account=factories.UpstreamAccountFactory(reseller=reseller),
        upstream_id="FBAPI00000001",
    )


@pytest.mark.django_db
def test_suspend_answers_the_customer_and_records_a_block_per_ipfoxy_sub_account(
    reseller_api, customer, ipfoxy_sub, reseller
):
    bytesflows = factories.SubAccountFactory(
        customer=customer,
        upstream_account=factories.UpstreamAccountFactory(
            reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
        ),
    )
    response = reseller_api.post(
        f"{C}/{customer.pk}/suspend/", {"reason": "Invoice R1-0007 unpaid"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == customer.pk
    assert (body["status"], body["suspension_reason"], body["suspended_by"]) == (
        "suspended",
        "Invoice R1-0007 unpaid",
        "staff",
    )
    assert dt.datetime.fromisoformat(body["suspended_at"]) is not None
    [change] = AccessChange.objects.all()
    assert (change.sub_account_id, change.action, change.status) == (
        ipfoxy_sub.pk,
        "block",
        "pending",
    )
    assert change.created_by.startswith("key ")
    assert not AccessChange.objects.filter(sub_account=bytesflows).exists()

    again = reseller_api.post(f"{C}/{customer.pk}/suspend/", {"reason": "again"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "customer_already_suspended")


@pytest.mark.django_db
def test_reinstate_clears_the_suspension_and_records_a_restore(reseller_api, customer, ipfoxy_sub):
    reseller_api.post(f"{C}/{customer.pk}/suspend/", {"reason": "late"}, format="json")
    response = reseller_api.post(f"{C}/{customer.pk}/reinstate/", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["suspended_at"], body["suspension_reason"]) == (
        "active",
        None,
        "",
    )
    block, restore = AccessChange.objects.order_by("pk")
    assert (block.status, restore.action, restore.status) == ("superseded", "restore", "pending")

    again = reseller_api.post(f"{C}/{customer.pk}/reinstate/", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "customer_not_suspended")


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}])
def test_suspend_without_a_reason_or_with_a_long_one_is_a_400_naming_reason(
    reseller_api, customer, payload
):
    response = reseller_api.post(f"{C}/{customer.pk}/suspend/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["extra"]["fields"]) == ["reason"]
    customer.refresh_from_db()
    assert customer.status == "active"


@pytest.mark.django_db
def test_unknown_fields_another_resellers_customer_and_customer_keys_are_refused(
    reseller_api, customer
):
    unknown = reseller_api.post(f"{C}/{customer.pk}/reinstate/", {"why": "x"}, format="json")
    assert (unknown.status_code, list(unknown.json()["extra"]["fields"])) == (400, ["why"])
    foreign = factories.CustomerFactory()
    for action, body in (("suspend", {"reason": "x"}), ("reinstate", {})):
        response = reseller_api.post(f"{C}/{foreign.pk}/{action}/", body, format="json")
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    _, raw = api_key_create(reseller=customer.reseller, customer=customer, name="shop")
    own = key_client(raw).post(f"{C}/{customer.pk}/suspend/", {"reason": "x"}, format="json")
    assert own.status_code == 403
    foreign.refresh_from_db()
    assert foreign.status == "active"


@pytest.mark.django_db
def test_a_suspended_customers_key_keeps_read_access(reseller_api, customer, ipfoxy_sub):
    _, raw = api_key_create(reseller=customer.reseller, customer=customer, name="shop")
    client = key_client(raw)
    reseller_api.post(f"{C}/{customer.pk}/suspend/", {"reason": "unpaid"}, format="json")

    me = client.get("/api/v1/me/")
    assert me.status_code == 200, me.content
    assert me.json()["status"] == "suspended"
    assert client.get("/api/v1/invoices/").status_code == 200
    assert client.get("/api/v1/usage/?from=2026-10-01&to=2026-10-02").status_code == 200


@pytest.mark.django_db
def test_closing_an_ipfoxy_sub_account_over_the_api_records_its_block(reseller_api, ipfoxy_sub):
    response = reseller_api.post(f"{S}/{ipfoxy_sub.pk}/close/", {"on": "2026-10-20"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["active_to"]) == ("closed", "2026-10-20")
    [change] = AccessChange.objects.all()
    assert (change.sub_account_id, change.action, change.reason) == (
        ipfoxy_sub.pk,
        "block",
        "sub_account_closed",
    )
    again = reseller_api.post(f"{S}/{ipfoxy_sub.pk}/close/", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "sub_account_closed")
    assert AccessChange.objects.count() == 1
