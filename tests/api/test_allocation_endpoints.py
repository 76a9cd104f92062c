"""`sub-accounts/{id}/allocations/` and `sub-accounts/{id}/traffic/` (reseller scope).

Allocations are recorded here and sent by a task queued on commit: in these tests (one
transaction per test) that task never runs unless a test says so, so a 201 shows `pending`.
The traffic read and the in-process send talk to the upstream simulator.
"""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import Provider
from tests import factories
from tests.api.conftest import key_client
from tests.api.schema_check import assert_matches_schema
from usage.models import Allocation
from usage.services.connectors import connector_for_upstream_account
from usage.simulator import SimulatorConfig, start_simulator

R = "/api/v1/reseller"
MIB = 1_048_576
GIB = 1024 * MIB
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
ACCOUNT = "FBAPIALLOC001"


@pytest.fixture
def ipfoxy_sub(customer, upstream_account):
    return factories.SubAccountFactory(
        customer=customer, upstream_account=upstream_account, upstream_id=ACCOUNT
    )


def allocations_url(sub_account_id) -> str:
    return f"{R}/sub-accounts/{sub_account_id}/allocations/"


def traffic_url(sub_account_id) -> str:
    return f"{R}/sub-accounts/{sub_account_id}/traffic/"


def post(api, sub_account_id, body):
    response = api.post(allocations_url(sub_account_id), body, format="json")
    assert_matches_schema(response)
    return response


@pytest.mark.django_db
@pytest.mark.slow
def test_post_records_a_pending_allocation_and_answers_201(reseller_api, reseller, ipfoxy_sub):
    response = post(reseller_api, ipfoxy_sub.pk, {"bytes": 10 * GIB, "expires_in_days": 30})
    assert response.status_code == 201, response.content
    body = response.json()
    allocation = Allocation.objects.get()
    prefix = reseller.api_keys.get().prefix
    assert {k: body[k] for k in ("id", "bytes", "status", "reason")} == {
        "id": allocation.pk,
        "bytes": 10 * GIB,
        "status": "pending",
        "reason": "manual",
    }
    assert dt.datetime.fromisoformat(body["created_at"]) == allocation.created_at
    assert (body["flow_mb"], body["expires_in_days"], body["created_by"]) == (
        10240,
        30,
        f"key {prefix}",
    )
    assert body["idempotency_key"] == allocation.idempotency_key
    assert (body["attempts"], body["sent_at"], body["confirmed_at"]) == (0, None, None)


@pytest.mark.django_db
def test_post_defaults_to_no_expiry_and_takes_an_order_reason(reseller_api, ipfoxy_sub):
    body = post(reseller_api, ipfoxy_sub.pk, {"bytes": GIB, "reason": "order"}).json()
    assert (body["expires_in_days"], body["reason"]) == (0, "order")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "nbytes", [MIB + MIB // 2, 0, -1, 1.5, "1.5", "abc", 2**63, True], ids=repr
)
def test_bytes_not_a_positive_whole_number_of_mb_is_400_invalid_amount(
    reseller_api, ipfoxy_sub, nbytes
):
    response = post(reseller_api, ipfoxy_sub.pk, {"bytes": nbytes})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_amount"
    assert list(body["extra"]["fields"]) == ["bytes"]
    assert not Allocation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "bytes"),
        ({"bytes": GIB, "expires_in_days": 7}, "expires_in_days"),
        ({"bytes": GIB, "reason": "auto_topup"}, "reason"),
        ({"bytes": GIB, "status": "confirmed"}, "status"),
    ],
)
def test_other_bad_fields_are_400_validation_error(reseller_api, ipfoxy_sub, body, field):
    response = post(reseller_api, ipfoxy_sub.pk, body)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["extra"]["fields"]) == [field]


@pytest.mark.django_db
def test_another_resellers_sub_account_is_404_like_a_missing_one(reseller_api, ipfoxy_sub):
    other = factories.SubAccountFactory(upstream_id="FBOTHERTENANT1")
    for url in (allocations_url, traffic_url):
        foreign = reseller_api.get(url(other.pk))
        missing = reseller_api.get(url(987654))
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json() == missing.json()
    assert post(reseller_api, other.pk, {"bytes": GIB}).status_code == 404
    assert not Allocation.objects.exists()


@pytest.mark.django_db
def test_customer_keys_cannot_allocate(reseller, customer, ipfoxy_sub):
    api = key_client(api_key_create(reseller=reseller, customer=customer, name="c")[1])
    assert api.post(allocations_url(ipfoxy_sub.pk), {"bytes": GIB}).status_code == 403
    assert api.get(traffic_url(ipfoxy_sub.pk)).status_code == 403


@pytest.mark.django_db
def test_bytesflows_sub_accounts_are_409_for_allocations_and_traffic(
    reseller_api, reseller, customer
):
    bytesflows = factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    sub = factories.SubAccountFactory(
        customer=customer,
        upstream_account=bytesflows,
        upstream_id="alice",
        credentials={"token": "bf-alice"},
    )
    refused = post(reseller_api, sub.pk, {"bytes": GIB})
    read = reseller_api.get(traffic_url(sub.pk))
    assert_matches_schema(read)
    for response in (refused, read):
        assert response.status_code == 409
        assert response.json()["code"] == "provider_has_no_reseller_api"


@pytest.mark.django_db
def test_a_suspended_customer_is_409(reseller_api, ipfoxy_sub):
    ipfoxy_sub.customer.status = "suspended"
    ipfoxy_sub.customer.suspended_at = timezone.now()
    ipfoxy_sub.customer.save()
    response = post(reseller_api, ipfoxy_sub.pk, {"bytes": GIB})
    assert (response.status_code, response.json()["code"]) == (409, "customer_suspended")


@pytest.mark.django_db
def test_the_list_is_the_sub_accounts_ledger_newest_first_with_filters(
    reseller_api, customer, upstream_account, ipfoxy_sub
):
    other_sub = factories.SubAccountFactory(
        customer=customer, upstream_account=upstream_account, upstream_id="FBAPIALLOC002"
    )
    ids = [post(reseller_api, ipfoxy_sub.pk, {"bytes": n * GIB}).json()["id"] for n in (1, 2)]
    post(reseller_api, other_sub.pk, {"bytes": GIB})
    Allocation.objects.filter(pk=ids[0]).update(status="failed", error_code="x")

    listed = reseller_api.get(allocations_url(ipfoxy_sub.pk))
    assert_matches_schema(listed)
    assert [row["id"] for row in listed.json()["results"]] == [ids[1], ids[0]]
    failed = reseller_api.get(allocations_url(ipfoxy_sub.pk), {"status": "failed"})
    assert [row["id"] for row in failed.json()["results"]] == [ids[0]]
    bad = reseller_api.get(allocations_url(ipfoxy_sub.pk), {"customer": customer.pk})
    assert bad.status_code == 400


# --- with the simulator --------------------------------------------------------------------


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=3, now=dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC))
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.fixture
def sim_sub(sim, reseller, customer):
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller, base_url=sim.url, credentials=CREDS
    )
    connector_for_upstream_account(upstream_account=upstream).create_sub_account(
        account=ACCOUNT, password="Passw0rd1234", flow_mb=0, idempotency_key="api-create-001"
    )
    return factories.SubAccountFactory(
        customer=customer, upstream_account=upstream, upstream_id=ACCOUNT
    )


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_send_runs_before_the_answer_which_says_confirmed(
    reseller_api, sim, sim_sub
):
    response = post(reseller_api, sim_sub.pk, {"bytes": 2 * GIB})
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["attempts"]) == ("confirmed", 1)
    assert sim.sub_account(ACCOUNT)["allocated_mb"] == "2048"


@pytest.mark.django_db
def test_traffic_is_what_the_upstream_counts(reseller_api, sim, sim_sub):
    connector_for_upstream_account(upstream_account=sim_sub.upstream_account).allocate_flow(
        account=ACCOUNT, flow_mb=3072, idempotency_key="api-alloc-0001"
    )
    sim.advance(2 * 3600)  # two hours of use
    before = timezone.now()
    response = reseller_api.get(traffic_url(sim_sub.pk))
    assert_matches_schema(response)
    assert response.status_code == 200, response.content
    body = response.json()
    upstream = sim.sub_account(ACCOUNT)
    used = round(float(upstream["used_mb"]) * MIB)
    assert 0 < body["used_bytes"] == pytest.approx(used, abs=MIB // 100)
    assert body["allocated_bytes"] == body["used_bytes"] + body["remaining_bytes"] == 3 * GIB
    assert dt.datetime.fromisoformat(body["as_of"]) >= before.replace(microsecond=0)


@pytest.mark.django_db
def test_traffic_answers_502_with_the_upstream_code_when_it_fails(reseller_api, sim, sim_sub):
    upstream = sim_sub.upstream_account
    upstream.credentials = {"api_id": "demo-api-id", "api_token": "wrong-token-22"}
    upstream.save()
    response = reseller_api.get(traffic_url(sim_sub.pk))
    assert_matches_schema(response)
    assert response.status_code == 502
    body = response.json()
    assert (body["code"], body["extra"]["retryable"]) == ("upstream_auth_failed", False)
    assert "wrong-token-22" not in response.content.decode()
