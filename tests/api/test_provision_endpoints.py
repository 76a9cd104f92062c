"""The provisioning endpoints against the upstream simulator: `sub-accounts/provision/`
(201 with the login, 202 when the outcome is not known yet, refusals), polling
`sub-accounts/provisionings/`, the manual add check on `sub-accounts/`, and the customer's
`sub-accounts/` with its login and remaining traffic."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import Customer, Provider, SubAccount
from tests import factories
from tests.api.conftest import key_client
from usage.models import Allocation, Provisioning, SubAccountTraffic
from usage.providers import build_connector
from usage.providers.base import InsufficientBalanceError
from usage.providers.ratelimit import InProcessBudget
from usage.providers.transport import RetryPolicy
from usage.services import provisioning as prov
from usage.services.upstream_writes import writes_resend_pending
from usage.simulator import SimulatorConfig, start_simulator
from webhooks.models import WebhookEvent
from webhooks.services import webhook_endpoint_create

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
MIB = 1_048_576
GIB = 1024 * MIB
R = "/api/v1/reseller"
PROVISION = f"{R}/sub-accounts/provision/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=7, now=NOW, rate_limit_enabled=False, ipfoxy_pool_mb=100_000)
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.fixture
def upstream(sim, reseller):
    return factories.UpstreamAccountFactory(
        reseller=reseller, base_url=sim.url, credentials=CREDS,
        gateway_host="gate.example.com", gateway_port=8000,
    )  # fmt: skip


def creates(sim) -> int:
    return sim.stats()["requests_by_endpoint"].get("ipfoxy.create_sub_account", 0)


def one_shot_connectors(monkeypatch, sim):
    """Connectors that try once and never sleep (a rate-limited answer is final at once)."""

    def build(*, upstream_account, **kwargs):
        return build_connector(
            provider=Provider.IPFOXY, base_url=sim.url, credentials=CREDS,
            client=httpx.Client(), budget=InProcessBudget(),
            budget_key=f"test:{upstream_account.pk}", retry=RetryPolicy(max_attempts=1),
            timeout=httpx.Timeout(2.0), sleep=lambda s: None,
        )  # fmt: skip

    monkeypatch.setattr(prov, "connector_for_upstream_account", build)


def test_provision_answers_201_with_the_proxy_login_and_the_initial_traffic(
    sim, upstream, customer, reseller_api, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(
        reseller=customer.reseller, url="https://hooks.example.com/flowbill",
        enabled_events=["sub_account.provisioned"],
    )  # fmt: skip
    body = {"customer": customer.pk, "upstream_account": upstream.pk, "label": "Shop 1",
            "initial_bytes": 2 * GIB}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = reseller_api.post(PROVISION, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    name = data["upstream_id"]
    assert len(name) == 12 and name.isalnum()
    upstream_view = sim.sub_account(name)
    assert data["proxy_username"] == f"customer-{name}"
    assert data["proxy_password"] == upstream_view["password"]
    assert (
        data["proxy"] == f"http://customer-{name}:{upstream_view['password']}@gate.example.com:8000"
    )
    assert (data["status"], data["label"], data["customer"]) == ("active", "Shop 1", customer.pk)
    assert data["initial_allocation"]["bytes"] == 2 * GIB
    assert data["initial_allocation"]["status"] == "confirmed"
    assert Provisioning.objects.get().pk == data["provisioning"]
    assert creates(sim) == 1
    assert Decimal(upstream_view["allocated_mb"]) == 2048  # the initial traffic, once
    assert sim.stats()["requests_by_endpoint"]["ipfoxy.allocate_flow"] == 1
    assert WebhookEvent.objects.filter(type="sub_account.provisioned").count() == 1
    # The reseller's sub-account read shows the same login.
    detail = reseller_api.get(f"{R}/sub-accounts/{data['id']}/").json()
    assert (detail["proxy_username"], detail["proxy_password"], detail["proxy"]) == (
        data["proxy_username"], data["proxy_password"], data["proxy"],
    )  # fmt: skip


def test_provision_without_a_gateway_has_no_proxy_string(sim, upstream, customer, reseller_api):
    upstream.gateway_host = ""
    upstream.save()
    body = {
        "customer": customer.pk,
        "upstream_account": upstream.pk,
        "label": "",
        "initial_bytes": 0,
    }
    data = reseller_api.post(PROVISION, body, format="json").json()
    assert data["proxy"] is None and data["proxy_password"] and data["initial_allocation"] is None


def test_a_rate_limited_provision_answers_202_and_the_sweep_finishes_it(
    sim, upstream, customer, reseller_api, monkeypatch
):
    one_shot_connectors(monkeypatch, sim)
    sim.set_faults(code_50000={"next": 1, "target": "ipfoxy.create_sub_account"})
    body = {"customer": customer.pk, "upstream_account": upstream.pk, "label": "Shop 2",
            "initial_bytes": 0}  # fmt: skip
    response = reseller_api.post(PROVISION, body, format="json")
    assert response.status_code == 202, response.json()
    pending = response.json()
    assert (pending["status"], pending["error_code"], pending["sub_account"]) == (
        "pending", "upstream_rate_limited", None,
    )  # fmt: skip
    assert len(pending["upstream_id"]) == 12 and "password" not in str(pending).lower()
    assert not SubAccount.objects.exists() and sim.app.state.book.owned(CREDS["api_id"]) == []

    url = f"{R}/sub-accounts/provisionings/{pending['id']}/"
    assert reseller_api.get(url).json()["status"] == "pending"
    later = timezone.now() + dt.timedelta(minutes=2)
    assert writes_resend_pending(prov.PROVISIONING, now=later) == [pending["id"]]
    done = reseller_api.get(url).json()
    sub = SubAccount.objects.get()
    assert (done["status"], done["sub_account"], done["attempts"]) == ("confirmed", sub.pk, 2)
    assert sub.upstream_id == pending["upstream_id"]
    listed = reseller_api.get(f"{R}/sub-accounts/provisionings/?status=confirmed").json()
    assert [row["id"] for row in listed["results"]] == [pending["id"]]


def test_refusals_are_clear_errors(sim, upstream, customer, reseller, reseller_api, monkeypatch):
    base = {"customer": customer.pk, "upstream_account": upstream.pk, "label": ""}

    bad = reseller_api.post(PROVISION, {**base, "initial_bytes": MIB + 1}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_amount"
    assert list(bad.json()["extra"]["fields"]) == ["initial_bytes"]

    bytesflows = factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    refused = reseller_api.post(
        PROVISION, {**base, "upstream_account": bytesflows.pk}, format="json"
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "provider_has_no_reseller_api")

    foreign = factories.UpstreamAccountFactory(base_url=sim.url, credentials=CREDS)
    missing = reseller_api.post(PROVISION, {**base, "upstream_account": foreign.pk}, format="json")
    assert missing.status_code == 400 and "upstream_account" in missing.json()["extra"]["fields"]

    Customer.objects.filter(pk=customer.pk).update(status="suspended", suspended_at=NOW)
    suspended = reseller_api.post(PROVISION, base, format="json")
    assert (suspended.status_code, suspended.json()["code"]) == (409, "customer_suspended")
    Customer.objects.filter(pk=customer.pk).update(status="active", suspended_at=None)

    class Broke:
        def create_sub_account(self, **kwargs):
            raise InsufficientBalanceError("the main account's traffic is insufficient")

    monkeypatch.setattr(prov, "connector_for_upstream_account", lambda **kw: Broke())
    broke = reseller_api.post(PROVISION, base, format="json")
    assert (broke.status_code, broke.json()["code"]) == (409, "upstream_insufficient_balance")
    failed = Provisioning.objects.get(pk=broke.json()["extra"]["provisioning"])
    assert failed.status == "failed"
    assert creates(sim) == 0 and not SubAccount.objects.exists()


def test_initial_traffic_beyond_the_pool_still_creates_the_sub_account(
    sim, upstream, customer, reseller_api
):
    sim.set_pool(total_mb=1000)
    body = {"customer": customer.pk, "upstream_account": upstream.pk, "label": "",
            "initial_bytes": 2 * GIB}  # fmt: skip
    data = reseller_api.post(PROVISION, body, format="json").json()
    assert data["initial_allocation"]["status"] == "failed"
    assert data["initial_allocation"]["error_code"] == "upstream_insufficient_balance"
    assert Allocation.objects.get().status == "failed"
    assert sim.sub_account(data["upstream_id"]) is not None


# --- the manual add ------------------------------------------------------------------------


def test_a_manual_ipfoxy_add_is_checked_against_the_upstream_list(
    sim, upstream, customer, reseller_api
):
    body = {"customer": customer.pk, "upstream_account": upstream.pk, "upstream_id": "TYPO00001"}
    unknown = reseller_api.post(f"{R}/sub-accounts/", body, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "upstream_sub_account_unknown"
    assert list(unknown.json()["extra"]["fields"]) == ["upstream_id"]
    assert not SubAccount.objects.exists()

    known = reseller_api.post(
        f"{R}/sub-accounts/", {**body, "upstream_id": "SIM00002"}, format="json"
    )
    assert known.status_code == 201, known.json()
    assert known.json()["proxy_username"] == "customer-SIM00002"
    assert known.json()["proxy_password"].startswith("Sim")


def test_a_manual_add_the_upstream_cannot_answer_is_a_503(
    sim, upstream, customer, reseller_api, monkeypatch
):
    one_shot_connectors(monkeypatch, sim)
    sim.set_faults(http_5xx={"next": 1, "target": "ipfoxy.sub_accounts"})
    body = {"customer": customer.pk, "upstream_account": upstream.pk, "upstream_id": "SIM00001"}
    response = reseller_api.post(f"{R}/sub-accounts/", body, format="json")
    assert (response.status_code, response.json()["code"]) == (503, "upstream_unavailable")
    assert not SubAccount.objects.exists()


# --- the customer's view -------------------------------------------------------------------


def test_the_customer_sees_its_login_and_remaining_traffic_and_no_one_elses(
    sim, upstream, customer, reseller, reseller_api
):
    body = {"customer": customer.pk, "upstream_account": upstream.pk, "label": "Mine",
            "initial_bytes": 0}  # fmt: skip
    mine = SubAccount.objects.get(pk=reseller_api.post(PROVISION, body, format="json").json()["id"])
    SubAccountTraffic.objects.create(
        sub_account=mine, allocated_bytes=5 * GIB, used_bytes=GIB, remaining_bytes=4 * GIB,
        as_of=NOW,
    )  # fmt: skip
    unknown = factories.SubAccountFactory(customer=customer, upstream_account=upstream)
    other = factories.CustomerFactory(reseller=reseller)
    factories.SubAccountFactory(customer=other, upstream_account=upstream, upstream_id="OTHER00001")
    raw = api_key_create(reseller=reseller, customer=customer, name="shop")[1]

    rows = key_client(raw).get("/api/v1/sub-accounts/").json()["results"]
    assert [row["id"] for row in rows] == [mine.pk, unknown.pk]
    row = rows[0]
    assert row["proxy_username"] == f"customer-{mine.upstream_id}"
    assert row["proxy_password"] == sim.sub_account(mine.upstream_id)["password"]
    assert row["proxy"].endswith("@gate.example.com:8000")
    assert (row["allocated_bytes"], row["used_bytes"], row["remaining_bytes"]) == (
        5 * GIB, GIB, 4 * GIB,
    )  # fmt: skip
    assert row["traffic_as_of"] == "2026-03-10T12:30:00Z"
    assert "upstream_account" not in row and "credentials" not in row
    nothing_known = rows[1]
    assert nothing_known["proxy_password"] is None and nothing_known["proxy"] is None
    assert nothing_known["remaining_bytes"] is None and nothing_known["traffic_as_of"] is None
    assert "OTHER00001" not in str(rows)
