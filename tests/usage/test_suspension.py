"""Suspension that works, against the upstream simulator with passwords gating traffic: a
suspended customer's IPFoxy sub-accounts stop consuming at once (password rotated,
whitelist cleared), reinstating sets a new password that works and puts the whitelist back,
and every change is a recorded write that survives crashes and unknown outcomes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest

from accounts.models import Customer, Provider, SubAccount
from core.errors import ApplicationError
from tests import factories
from usage.models import AccessChange, Allocation
from usage.providers import build_connector
from usage.providers.ratelimit import InProcessBudget
from usage.providers.transport import RetryPolicy
from usage.services import access as access_service
from usage.services.access import (
    access_change_send,
    access_changes_resend_pending,
    new_proxy_password,
)
from usage.services.allocations import allocation_create, allocation_send
from usage.services.connectors import connector_for_upstream_account
from usage.services.suspension import (
    customer_reinstate,
    customer_suspend,
    sub_account_close_and_cut_off,
)
from usage.services.upstream_writes import LEASE
from usage.simulator import SimulatorConfig, start_simulator
from usage.simulator.faults import FaultRule
from webhooks.models import WebhookEndpoint, WebhookEvent

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
ACCOUNT = "FBSUSP0000001"
OTHER = "FBSUSP0000002"
FIRST_PASSWORD = "FirstPassw0rd1"
WHITELIST = ["203.0.113.7", "198.51.100.20"]
HOUR = 3600


class WorkerKilled(BaseException):
    """The worker process dies here: nothing in Flowbill catches it."""


@pytest.fixture
def sim():
    config = SimulatorConfig(
        seed=11, now=NOW, rate_limit_enabled=False, ipfoxy_password_gates_traffic=True
    )
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.fixture
def upstream(sim, reseller):
    return factories.UpstreamAccountFactory(reseller=reseller, base_url=sim.url, credentials=CREDS)


def provision(upstream, customer, account: str, *, whitelist=()) -> SubAccount:
    """A sub-account created upstream with 100 GiB, its client logged in with its password."""
    connector = connector_for_upstream_account(upstream_account=upstream)
    connector.create_sub_account(
        account=account,
        password=FIRST_PASSWORD,
        flow_mb=100 * 1024,
        idempotency_key=f"create-{account}",
    )
    if whitelist:
        connector.update_ip_whitelist(account=account, ips=list(whitelist))
    return factories.SubAccountFactory(
        customer=customer,
        upstream_account=upstream,
        upstream_id=account,
        proxy_login={"password": FIRST_PASSWORD},
    )


@pytest.fixture
def sub(upstream, customer) -> SubAccount:
    return provision(upstream, customer, ACCOUNT, whitelist=WHITELIST)


def used_mb(sim, account=ACCOUNT) -> Decimal:
    return Decimal(sim.sub_account(account)["used_mb"])


def consumes(sim, account=ACCOUNT, hours: int = 2) -> Decimal:
    """MB the sub-account uses while the simulator's clock moves `hours` on."""
    before = used_mb(sim, account)
    sim.advance(hours * HOUR)
    return used_mb(sim, account) - before


def send_all(sub_account: SubAccount, now=NOW) -> list[AccessChange]:
    """Send every pending change of the sub-account (the queued task, run here)."""
    rows = AccessChange.objects.filter(sub_account=sub_account, status="pending")
    return [access_change_send(change=row, now=now) for row in rows]


def suspend(customer, now=NOW, **kwargs) -> Customer:
    kwargs.setdefault("reason", "Unpaid invoice R1-0001")
    return customer_suspend(customer=customer, actor="login alice", now=now, **kwargs)


def reinstate(customer, now=NOW, **kwargs) -> Customer:
    return customer_reinstate(customer=customer, actor="login alice", now=now, **kwargs)


# --- cut off and restored -------------------------------------------------------------------


@pytest.mark.django_db
def test_suspending_rotates_the_password_clears_the_whitelist_and_stops_consumption(
    sim, sub, customer
):
    assert consumes(sim) > 0  # whitelisted and logged in: it runs

    suspended = suspend(customer)
    assert (suspended.status, suspended.suspended_by) == ("suspended", "staff")
    assert suspended.suspended_at == NOW
    change = AccessChange.objects.get(sub_account=sub)
    assert (change.action, change.status, change.reason) == (
        "block",
        "pending",
        "customer_suspended",
    )
    assert change.secret["ip_whitelist"] == []
    assert sim.sub_account(ACCOUNT)["password"] == FIRST_PASSWORD  # recorded before sending

    [sent] = send_all(sub)
    assert (sent.status, sent.attempts) == ("confirmed", 1)
    upstream_now = sim.sub_account(ACCOUNT)
    assert upstream_now["password"] == change.secret["password"] != FIRST_PASSWORD
    assert upstream_now["ip_whitelist"] == []
    sub.refresh_from_db()
    assert sub.access == "blocked"
    # The whitelist Flowbill did not know is kept for the reinstatement; the proxy password
    # shown stays the customer's (the throwaway one is never shown).
    assert sub.proxy_login == {"password": FIRST_PASSWORD, "ip_whitelist": WHITELIST}
    assert consumes(sim, hours=5) == 0
    sim.client_login(ACCOUNT, FIRST_PASSWORD)  # the old password is refused
    assert consumes(sim, hours=5) == 0


@pytest.mark.django_db
def test_reinstating_sets_a_new_password_that_works_and_puts_the_whitelist_back(sim, sub, customer):
    suspend(customer)
    [block] = send_all(sub)
    assert consumes(sim) == 0

    reinstated = reinstate(customer, now=NOW + dt.timedelta(hours=3))
    assert (reinstated.status, reinstated.suspended_at, reinstated.suspension_reason) == (
        "active",
        None,
        "",
    )
    assert reinstated.suspended_by == ""
    [restore] = send_all(sub, now=NOW + dt.timedelta(hours=3))
    assert (restore.action, restore.status) == ("restore", "confirmed")
    new_password = restore.secret["password"]
    assert new_password not in (FIRST_PASSWORD, block.secret["password"])
    upstream_now = sim.sub_account(ACCOUNT)
    assert (upstream_now["password"], upstream_now["ip_whitelist"]) == (new_password, WHITELIST)
    sub.refresh_from_db()
    assert sub.access == "open"
    assert sub.proxy_login == {"password": new_password, "ip_whitelist": WHITELIST}
    assert consumes(sim) > 0  # the whitelisted IPs are let in again


@pytest.mark.django_db
def test_without_a_whitelist_only_the_new_password_lets_the_customer_back_in(
    sim, upstream, customer
):
    sub = provision(upstream, customer, OTHER)
    assert consumes(sim, OTHER) > 0
    suspend(customer)
    send_all(sub)
    assert consumes(sim, OTHER) == 0
    reinstate(customer)
    [restore] = send_all(sub)
    assert restore.secret["ip_whitelist"] == [] and sim.sub_account(OTHER)["ip_whitelist"] == []
    assert consumes(sim, OTHER) == 0  # the client still sends the old password
    sub.refresh_from_db()
    sim.client_login(OTHER, sub.proxy_login["password"])
    assert consumes(sim, OTHER) > 0


def test_proxy_passwords_are_strong_and_within_ipfoxys_rules():
    passwords = {new_proxy_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) == 15 and password.isalnum() and password.isascii()
        assert any(c.isupper() for c in password) and any(c.islower() for c in password)
        assert any(c.isdigit() for c in password)


# --- exactly once: crashes, unknown outcomes, supersede order -------------------------------


def short_timeout_connector(sim, upstream):
    return build_connector(
        provider=Provider.IPFOXY, base_url=sim.url, credentials=CREDS, client=httpx.Client(),
        budget=InProcessBudget(), budget_key=f"test:{upstream.pk}",
        retry=RetryPolicy(max_attempts=2), timeout=httpx.Timeout(0.3), sleep=lambda s: None,
    )  # fmt: skip


@pytest.mark.django_db
def test_an_unknown_outcome_stays_pending_and_the_sweep_settles_it(sim, sub, customer):
    suspend(customer)
    change = AccessChange.objects.get(sub_account=sub)
    sim.set_faults(
        timeout_after_apply=FaultRule(next=2, target="ipfoxy.update_pass"), slow_seconds=1
    )
    sent = access_change_send(
        change=change, now=NOW, connector=short_timeout_connector(sim, sub.upstream_account)
    )
    assert (sent.status, sent.error_code, sent.maybe_applied) == (
        "pending",
        "upstream_outcome_unknown",
        True,
    )
    assert sim.sub_account(ACCOUNT)["password"] == change.secret["password"]  # it happened
    assert sim.sub_account(ACCOUNT)["ip_whitelist"] == WHITELIST  # not this yet
    sim.reset_faults()

    assert access_changes_resend_pending(now=NOW + dt.timedelta(seconds=59)) == []
    assert access_changes_resend_pending(now=NOW + dt.timedelta(seconds=60)) == [change.pk]
    change.refresh_from_db()
    assert (change.status, change.attempts) == ("confirmed", 2)
    assert sim.sub_account(ACCOUNT)["ip_whitelist"] == []
    sub.refresh_from_db()
    assert (sub.access, sub.proxy_login["ip_whitelist"]) == ("blocked", WHITELIST)


def kill_after(monkeypatch, method: str) -> None:
    """The next send dies right after the upstream applied `method`."""
    real = access_service.reseller_connector_for_sub_account

    class Dying:
        def __init__(self, connector):
            self.connector = connector

        def __getattr__(self, name):
            attr = getattr(self.connector, name)
            if name != method:
                return attr

            def call(**kwargs):
                attr(**kwargs)
                raise WorkerKilled(name)

            return call

    monkeypatch.setattr(
        access_service, "reseller_connector_for_sub_account", lambda **kw: Dying(real(**kw))
    )


@pytest.mark.django_db
def test_a_worker_killed_between_the_two_writes_is_recovered_by_the_sweep(
    sim, sub, customer, monkeypatch
):
    suspend(customer)
    change = AccessChange.objects.get(sub_account=sub)
    kill_after(monkeypatch, "update_password")
    with pytest.raises(WorkerKilled):
        access_change_send(change=change, now=NOW)
    monkeypatch.undo()
    change.refresh_from_db()
    assert (change.status, change.maybe_applied) == ("pending", True)
    assert sim.sub_account(ACCOUNT)["ip_whitelist"] == WHITELIST  # half done
    assert access_changes_resend_pending(now=NOW + LEASE - dt.timedelta(seconds=1)) == []

    assert access_changes_resend_pending(now=NOW + LEASE) == [change.pk]
    change.refresh_from_db()
    assert (change.status, change.attempts) == ("confirmed", 2)
    upstream_now = sim.sub_account(ACCOUNT)
    assert (upstream_now["password"], upstream_now["ip_whitelist"]) == (
        change.secret["password"],
        [],
    )
    sub.refresh_from_db()  # the whitelist was kept before the first send cleared nothing
    assert sub.proxy_login["ip_whitelist"] == WHITELIST


@pytest.mark.django_db
def test_reinstating_before_the_block_was_sent_supersedes_it_and_ends_open(sim, sub, customer):
    suspend(customer)  # its send never ran (the message is still queued)
    reinstate(customer)
    block, restore = AccessChange.objects.filter(sub_account=sub).order_by("pk")
    assert (block.action, block.status) == ("block", "superseded")
    assert (restore.action, restore.status) == ("restore", "pending")
    assert access_change_send(change=block, now=NOW) is None  # never sent now

    access_changes_resend_pending(now=NOW + LEASE)
    restore.refresh_from_db()
    assert restore.status == "confirmed"
    upstream_now = sim.sub_account(ACCOUNT)
    # Flowbill never knew the whitelist: the restore kept the one upstream.
    assert (upstream_now["password"], upstream_now["ip_whitelist"]) == (
        restore.secret["password"],
        WHITELIST,
    )
    sub.refresh_from_db()
    assert sub.access == "open" and sub.proxy_login["password"] == restore.secret["password"]
    assert sim.stats()["requests_by_endpoint"]["ipfoxy.update_pass"] == 1
    assert consumes(sim) > 0


@pytest.mark.django_db
def test_a_block_on_the_wire_holds_the_restore_back_until_its_lease_ends(
    sim, sub, customer, monkeypatch
):
    suspend(customer)
    block = AccessChange.objects.get(sub_account=sub)
    kill_after(monkeypatch, "update_ip_whitelist")  # the block is applied, not recorded
    with pytest.raises(WorkerKilled):
        access_change_send(change=block, now=NOW)
    monkeypatch.undo()

    reinstate(customer, now=NOW + dt.timedelta(seconds=5))
    block.refresh_from_db()
    restore = AccessChange.objects.get(sub_account=sub, status="pending")
    assert block.status == "superseded"
    assert restore.next_attempt_at == NOW + LEASE  # after the block's lease
    assert access_change_send(change=restore, now=NOW + dt.timedelta(minutes=1)) is None
    assert access_changes_resend_pending(now=NOW + LEASE - dt.timedelta(seconds=1)) == []

    assert access_changes_resend_pending(now=NOW + LEASE) == [restore.pk]
    restore.refresh_from_db()
    assert restore.status == "confirmed"
    upstream_now = sim.sub_account(ACCOUNT)
    assert (upstream_now["password"], upstream_now["ip_whitelist"]) == (
        restore.secret["password"],
        WHITELIST,
    )
    sub.refresh_from_db()
    assert sub.access == "open"


@pytest.mark.django_db
def test_suspend_reinstate_suspend_ends_blocked_with_one_pending_change(sim, sub, customer):
    suspend(customer)
    reinstate(customer)
    suspend(customer)
    statuses = list(
        AccessChange.objects.filter(sub_account=sub).order_by("pk").values_list("action", "status")
    )
    assert statuses == [("block", "superseded"), ("restore", "superseded"), ("block", "pending")]
    send_all(sub)
    sub.refresh_from_db()
    assert sub.access == "blocked"
    assert sim.sub_account(ACCOUNT)["ip_whitelist"] == []
    assert consumes(sim) == 0


@pytest.mark.django_db
def test_changes_go_out_once_the_suspension_commits(
    sim, sub, customer, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        suspend(customer, now=timezone.now())
    assert len(callbacks) >= 1
    assert AccessChange.objects.get(sub_account=sub).status == "confirmed"
    assert sim.sub_account(ACCOUNT)["ip_whitelist"] == []


# --- which sub-accounts, allocations, webhooks ----------------------------------------------


@pytest.mark.django_db
def test_bytesflows_and_closed_sub_accounts_get_no_access_change(sim, sub, customer, reseller):
    bytesflows = factories.SubAccountFactory(
        customer=customer,
        upstream_account=factories.UpstreamAccountFactory(
            reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
        ),
    )
    closed = provision(sub.upstream_account, customer, OTHER)
    closed.status, closed.active_to = SubAccount.Status.CLOSED, dt.date(2026, 3, 1)
    closed.save()
    suspend(customer)
    assert list(AccessChange.objects.values_list("sub_account_id", flat=True)) == [sub.pk]
    reinstate(customer)
    assert not AccessChange.objects.filter(sub_account__in=[bytesflows, closed]).exists()


@pytest.mark.django_db
def test_a_pending_allocation_fails_at_its_claim_once_the_customer_is_suspended(sim, sub, customer):
    allocation = allocation_create(
        sub_account=sub, bytes=1024 * 1_048_576, actor="login alice", now=NOW
    )
    suspend(customer)
    sent = allocation_send(allocation=allocation, now=NOW)
    assert (sent.status, sent.error_code) == ("failed", "customer_suspended")
    assert Allocation.objects.get().status == "failed"
    assert sim.sub_account(ACCOUNT)["allocated_mb"] == "102400"  # the creation's only


@pytest.mark.django_db
def test_webhooks_are_emitted_once_for_each_suspension_and_reinstatement(sim, sub, customer):
    WebhookEndpoint.objects.create(
        reseller=customer.reseller,
        url="https://hooks.example.com/flowbill",
        enabled_events=["customer.suspended", "customer.reinstated"],
        signing={"secret": "whsec_test"},
    )
    suspend(customer, reason="Invoice R1-0001 unpaid")
    with pytest.raises(ApplicationError) as again:
        suspend(customer)
    assert again.value.code == "customer_already_suspended"
    reinstate(customer, now=NOW + dt.timedelta(days=1))
    with pytest.raises(ApplicationError) as twice:
        reinstate(customer)
    assert twice.value.code == "customer_not_suspended"

    events = list(WebhookEvent.objects.order_by("pk").values_list("type", "data"))
    assert [kind for kind, _ in events] == ["customer.suspended", "customer.reinstated"]
    assert events[0][1] == {
        "id": customer.pk,
        "object": "customer",
        "status": "suspended",
        "suspended_at": NOW.isoformat(),
        "suspension_reason": "Invoice R1-0001 unpaid",
        "suspended_by": "staff",
    }
    assert events[1][1] == {
        "id": customer.pk,
        "object": "customer",
        "status": "active",
        "suspended_at": None,
        "suspension_reason": "",
        "suspended_by": None,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("reason", "message"),
    [("", "Say why"), ("   ", "Say why"), ("x" * 501, "At most 500")],
)
def test_staff_must_give_a_reason_of_at_most_500_characters(customer, reason, message):
    with pytest.raises(ApplicationError) as refused:
        suspend(customer, reason=reason)
    assert refused.value.code == "validation_error"
    assert message in refused.value.extra["fields"]["reason"][0]
    customer.refresh_from_db()
    assert customer.status == "active"
    assert suspend(customer, reason="y" * 500).suspension_reason == "y" * 500


@pytest.mark.django_db
def test_an_overdue_reinstatement_leaves_a_staff_suspension_alone(customer):
    suspend(customer)
    with pytest.raises(ApplicationError) as refused:
        reinstate(customer, by="overdue")
    assert refused.value.code == "customer_suspended_by_staff"
    customer.refresh_from_db()
    assert customer.status == "suspended"


# --- closing one sub-account ----------------------------------------------------------------


@pytest.mark.django_db
def test_closing_a_sub_account_cuts_it_off_and_a_reinstatement_does_not_reopen_it(
    sim, sub, customer
):
    closed = sub_account_close_and_cut_off(
        sub_account=sub, on_day=dt.date(2026, 3, 10), actor="login alice", now=NOW
    )
    assert (closed.status, closed.active_to) == ("closed", dt.date(2026, 3, 10))
    [block] = send_all(sub)
    assert (block.action, block.reason, block.status) == (
        "block",
        "sub_account_closed",
        "confirmed",
    )
    assert sim.sub_account(ACCOUNT)["ip_whitelist"] == []
    assert consumes(sim) == 0
    suspend(customer)
    reinstate(customer)
    assert AccessChange.objects.filter(sub_account=sub).count() == 1
