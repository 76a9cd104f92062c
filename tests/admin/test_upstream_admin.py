"""The admin acts upstream through the same services as the API: provision a sub-account,
allocate traffic (ledger inline), suspend and reinstate a customer, close a sub-account, and
add an IPFoxy sub-account by hand only when the upstream lists it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import SubAccount
from tests import factories
from usage.models import AccessChange, Allocation, Provisioning, SubAccountTraffic
from usage.services.connectors import connector_for_upstream_account
from usage.simulator import SimulatorConfig, start_simulator

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
MIB = 1_048_576
GIB = 1024 * MIB


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=7, now=NOW, rate_limit_enabled=False, ipfoxy_pool_mb=100_000)
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.fixture
def world(db, client, sim):
    reseller = factories.ResellerFactory(slug="tokyo-proxies")
    staff = factories.StaffUserFactory(reseller=reseller, username="alice")
    client.force_login(staff)
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller,
        base_url=sim.url,
        credentials=CREDS,
        gateway_host="gate.example.net",
        gateway_port=7777,
    )
    customer = factories.CustomerFactory(reseller=reseller, name="Kite Data")
    return reseller, upstream, customer


def _action(client, model, obj, name, data=None):
    url = reverse(f"admin:{model}_action", args=[obj.pk, name])
    return client.post(url, data or {}, follow=True)


def _messages(response):
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def test_provision_from_the_customer_page_creates_it_upstream_with_its_initial_traffic(
    client, sim, world
):
    _, upstream, customer = world

    response = _action(
        client,
        "accounts_customer",
        customer,
        "provision",
        {"upstream_account": upstream.pk, "label": "Tokyo pool", "initial_gb": "1.5"},
    )

    sub = SubAccount.objects.get(customer=customer)
    assert sub.upstream_id.startswith("tokyop") and 10 <= len(sub.upstream_id) <= 15
    assert (sub.label, sub.provisioned_at is not None) == ("Tokyo pool", True)
    assert response.redirect_chain[-1][0] == reverse(
        "admin:accounts_subaccount_change", args=[sub.pk]
    )
    assert _messages(response)[0][0] == "success"
    allocation = Allocation.objects.get(sub_account=sub)
    assert (allocation.bytes, allocation.reason, allocation.status) == (
        1536 * MIB,
        "initial",
        "confirmed",
    )
    assert Decimal(sim.sub_account(sub.upstream_id)["allocated_mb"]) == 1536
    page = response.content.decode()
    assert f"customer-{sub.upstream_id}" in page
    assert sub.proxy_login["password"] in page
    assert "gate.example.net:7777" in page


def test_a_half_megabyte_is_refused_before_anything_is_recorded(client, world):
    _, upstream, customer = world
    response = _action(
        client,
        "accounts_customer",
        customer,
        "provision",
        {"upstream_account": upstream.pk, "initial_gb": "0.0001"},
    )
    assert _messages(response) == [
        ("error", "Refused: Initial traffic: 0.0001 GB is not a whole number of MB.")
    ]
    assert not Provisioning.objects.exists()


@pytest.fixture
def sub(world):
    _, upstream, customer = world
    connector_for_upstream_account(upstream_account=upstream).create_sub_account(
        account="tokyoadmin001",
        password="Passw0rd1234",
        flow_mb=0,
        idempotency_key="admin-create-1",
    )
    return factories.SubAccountFactory(
        customer=customer,
        upstream_account=upstream,
        upstream_id="tokyoadmin001",
        proxy_login={"password": "Passw0rd1234"},
    )


def test_allocate_from_the_sub_account_page_lists_the_ledger_row(client, sim, sub):
    response = _action(
        client, "accounts_subaccount", sub, "allocate", {"gb": "2", "expires_in_days": "30"}
    )

    allocation = Allocation.objects.get(sub_account=sub)
    assert (allocation.bytes, allocation.expires_in_days, allocation.created_by) == (
        2 * GIB,
        30,
        "login alice",
    )
    assert _messages(response) == [("success", f"Allocation of 2.00 GB to {sub}: confirmed.")]
    assert Decimal(sim.sub_account("tokyoadmin001")["allocated_mb"]) == 2048
    assert "2.00 GB (2,048 MB)" in response.content.decode()  # the ledger inline


def test_the_sub_account_list_shows_remaining_traffic(client, sub):
    SubAccountTraffic.objects.create(
        sub_account=sub,
        allocated_bytes=10 * GIB,
        used_bytes=4 * GIB,
        remaining_bytes=6 * GIB,
        as_of=NOW,
    )
    page = client.get(reverse("admin:accounts_subaccount_changelist")).content.decode()
    assert "6.00 GB" in page


def test_suspend_then_reinstate_from_the_customer_page(
    client, sim, sub, world, django_capture_on_commit_callbacks
):
    _, _, customer = world

    with django_capture_on_commit_callbacks(execute=True):  # the request commits: sent
        response = _action(client, "accounts_customer", customer, "suspend", {"reason": "Unpaid"})

    customer.refresh_from_db()
    sub.refresh_from_db()
    assert (customer.status, customer.suspension_reason, customer.suspended_by) == (
        "suspended",
        "Unpaid",
        "staff",
    )
    assert sub.access == "blocked"
    assert _messages(response)[0][0] == "success"
    assert "Reinstate" in response.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        _action(client, "accounts_customer", customer, "reinstate")

    customer.refresh_from_db()
    sub.refresh_from_db()
    assert (customer.status, sub.access) == ("active", "open")
    assert sub.proxy_login["password"] != "Passw0rd1234"
    assert list(
        AccessChange.objects.filter(sub_account=sub).order_by("pk").values_list("action", "status")
    ) == [("block", "confirmed"), ("restore", "confirmed")]


def test_suspend_needs_a_reason(client, world):
    _, _, customer = world
    response = _action(client, "accounts_customer", customer, "suspend", {"reason": ""})
    assert _messages(response)[0][0] == "error"
    customer.refresh_from_db()
    assert customer.status == "active"


def test_adding_an_ipfoxy_sub_account_the_upstream_does_not_list_is_refused(client, world):
    _, upstream, customer = world
    response = client.post(
        reverse("admin:accounts_subaccount_add"),
        {
            "customer": customer.pk,
            "upstream_account": upstream.pk,
            "upstream_id": "notthereatall1",
            "label": "",
            "status": "active",
        },
    )
    assert response.status_code == 200
    assert "does not list a sub-account" in response.content.decode()
    assert not SubAccount.objects.exists()
