"""Provisioning IPFoxy sub-accounts against the upstream simulator: one account upstream per
request whatever dies when, the password it was given, the initial traffic through the
ledger once; names and passwords within IPFoxy's rules; refusals; the manual add check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from accounts.models import Customer, Provider, SubAccount
from core.errors import ApplicationError
from tests import factories
from usage.models import Allocation, Provisioning
from usage.providers import build_connector
from usage.providers.base import (
    DiscoveredSubAccount,
    InsufficientBalanceError,
    ParameterError,
    TransientError,
)
from usage.providers.ratelimit import InProcessBudget
from usage.providers.reseller import SubAccountPage
from usage.providers.transport import RetryPolicy
from usage.services import provisioning as prov
from usage.services.provisioning import (
    PROVISIONING,
    provisioning_name_new,
    provisioning_password_new,
    provisioning_prefix,
    provisioning_send,
    sub_account_add,
    sub_account_provision,
)
from usage.services.upstream_writes import LEASE, writes_resend_pending
from usage.simulator import SimulatorConfig, start_simulator
from webhooks.models import WebhookEvent
from webhooks.services import webhook_endpoint_create

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
MIB = 1_048_576
GIB = 1024 * MIB


class WorkerKilled(BaseException):
    """The worker process dies here: nothing in Flowbill catches it."""


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=7, now=NOW, rate_limit_enabled=False, ipfoxy_pool_mb=100_000)
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.fixture
def acme(db):
    return factories.ResellerFactory(slug="acme-proxies")


@pytest.fixture
def globex(acme) -> Customer:
    return factories.CustomerFactory(reseller=acme)


@pytest.fixture
def upstream(sim, acme):
    return factories.UpstreamAccountFactory(reseller=acme, base_url=sim.url, credentials=CREDS)


@pytest.fixture
def endpoint(acme):
    return webhook_endpoint_create(
        reseller=acme, url="https://hooks.example.com/flowbill",
        enabled_events=["sub_account.provisioned"],
    )[0]  # fmt: skip


def provision(customer, upstream_account, *, now=NOW, send_now=True, **kwargs) -> Provisioning:
    return sub_account_provision(
        customer=customer, upstream_account=upstream_account, actor="login alice", now=now,
        send_now=send_now, **kwargs,
    )  # fmt: skip


def upstream_accounts(sim) -> list[str]:
    return sim.app.state.book.owned(CREDS["api_id"])


def creates(sim) -> int:
    return sim.stats()["requests_by_endpoint"].get("ipfoxy.create_sub_account", 0)


def short_timeout_connector(sim, upstream_account):
    """The real IPFoxy connector with a 0.3 s read timeout, 2 attempts and no sleeping."""
    return build_connector(
        provider=Provider.IPFOXY, base_url=sim.url, credentials=CREDS, client=httpx.Client(),
        budget=InProcessBudget(), budget_key=f"test:{upstream_account.pk}",
        retry=RetryPolicy(max_attempts=2), timeout=httpx.Timeout(0.3), sleep=lambda s: None,
    )  # fmt: skip


# --- the happy path ------------------------------------------------------------------------


@pytest.mark.django_db
def test_provisioning_creates_one_account_upstream_with_its_password_and_allocates_once(
    sim, upstream, globex, endpoint, django_capture_on_commit_callbacks
):
    now = timezone.now()  # the ledger's queued send reads the clock
    with django_capture_on_commit_callbacks(execute=True):
        row = provision(globex, upstream, label="Globex resi", initial_bytes=5 * GIB, now=now)

    assert (row.status, row.attempts, row.maybe_applied) == ("confirmed", 1, False)
    assert upstream_accounts(sim) == [row.account]
    assert creates(sim) == 1
    sub = SubAccount.objects.get()
    assert (sub.upstream_id, sub.customer, sub.upstream_account, sub.label) == (
        row.account, globex, upstream, "Globex resi",
    )  # fmt: skip
    assert row.sub_account == sub and sub.provisioned_at == now
    upstream_view = sim.sub_account(row.account)
    assert sub.proxy_login == {"password": upstream_view["password"]}
    assert sub.proxy_password == row.secret["password"] == upstream_view["password"]
    assert sub.proxy_username == f"customer-{row.account}"
    # The initial traffic: one ledger row, sent once, 5 GiB upstream and from the pool.
    initial = Allocation.objects.get()
    assert (initial.reason, initial.bytes, initial.flow_mb, initial.status) == (
        "initial", 5 * GIB, 5120, "confirmed",
    )  # fmt: skip
    assert initial.created_by == "login alice"
    assert sim.stats()["requests_by_endpoint"]["ipfoxy.allocate_flow"] == 1
    assert Decimal(upstream_view["allocated_mb"]) == 5120 == Decimal(sim.pool()["allocated_mb"])
    # One webhook event, without the password.
    event = WebhookEvent.objects.get(type="sub_account.provisioned")
    assert event.data == {
        "id": sub.pk, "object": "sub_account", "upstream_id": row.account,
        "customer": globex.pk, "upstream_account": upstream.pk, "label": "Globex resi",
        "proxy_username": f"customer-{row.account}", "status": "active",
        "provisioned_at": now.isoformat(),
    }  # fmt: skip
    # Sending the row again does nothing: it is settled.
    assert provisioning_send(provisioning=row, now=now) is None
    assert creates(sim) == 1 and SubAccount.objects.count() == 1
    assert WebhookEvent.objects.filter(type="sub_account.provisioned").count() == 1


@pytest.mark.django_db
def test_without_send_now_the_row_is_committed_pending_and_sent_once_on_commit(
    sim, upstream, globex, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        row = provision(globex, upstream, now=timezone.now(), send_now=False)
        assert Provisioning.objects.get().status == "pending"  # committed before any request
        assert creates(sim) == 0
    assert len(callbacks) == 1
    row.refresh_from_db()
    assert row.status == "confirmed" and upstream_accounts(sim) == [row.account]
    assert not Allocation.objects.exists()  # no initial traffic asked


# --- names and passwords -------------------------------------------------------------------


def test_the_prefix_is_the_slugs_letters_and_digits_at_most_six():
    assert provisioning_prefix(slug="acme-proxies") == "acmepr"
    assert provisioning_prefix(slug="A-1") == "a1"
    assert provisioning_prefix(slug="---") == "fb"


@pytest.mark.django_db
def test_names_are_within_ipfoxy_rules_and_skip_names_already_held(upstream, globex, monkeypatch):
    names = {provisioning_name_new(upstream_account=upstream, prefix="acmepr") for _ in range(200)}
    assert len(names) == 200
    assert all(len(n) == 12 and n.startswith("acmepr") and n.isalnum() for n in names)
    assert all(n == n.lower() for n in names)
    # A name a sub-account of the upstream account holds is drawn again.
    factories.SubAccountFactory(
        customer=globex, upstream_account=upstream, upstream_id="acmepr000000"
    )
    draws = iter("0" * 6 + "1" * 6)
    monkeypatch.setattr(prov.secrets, "choice", lambda alphabet: next(draws))
    assert provisioning_name_new(upstream_account=upstream, prefix="acmepr") == "acmepr111111"


def test_passwords_are_14_mixed_letters_and_digits_and_differ():
    passwords = {provisioning_password_new() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) == 14 and password.isalnum() and password.isascii()
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password)


@pytest.mark.django_db
def test_the_password_is_stored_encrypted(sim, upstream, globex):
    row = provision(globex, upstream)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM usage_provisioning WHERE id = %s", [row.pk])
        (raw,) = cursor.fetchone()
        cursor.execute(
            "SELECT proxy_login FROM accounts_subaccount WHERE id = %s", [row.sub_account_id]
        )
        (raw_login,) = cursor.fetchone()
    assert row.secret["password"] not in str(raw) and row.secret["password"] not in str(raw_login)


# --- exactly once --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_timeout_after_the_upstream_created_it_is_recovered_by_the_sweep_with_the_same_key(
    sim, upstream, globex
):
    sim.set_faults(timeout_after_apply=2, slow_seconds=1)  # created, both answers lost
    row = provision(globex, upstream, connector=short_timeout_connector(sim, upstream))
    assert (row.status, row.error_code, row.maybe_applied) == (
        "pending", "upstream_outcome_unknown", True,
    )  # fmt: skip
    assert upstream_accounts(sim) == [row.account]  # it did happen upstream
    assert not SubAccount.objects.exists()
    key, name = row.idempotency_key, row.account

    assert writes_resend_pending(PROVISIONING, now=NOW + dt.timedelta(seconds=59)) == []
    assert writes_resend_pending(PROVISIONING, now=NOW + dt.timedelta(seconds=60)) == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.idempotency_key, row.account) == (
        "confirmed", 2, key, name,
    )  # fmt: skip
    assert upstream_accounts(sim) == [name]  # one account upstream
    assert SubAccount.objects.get().upstream_id == name  # one row here
    assert SubAccount.objects.get().proxy_password == sim.sub_account(name)["password"]


@pytest.mark.django_db
@pytest.mark.parametrize("point", ["before_send", "after_send"])
def test_a_worker_killed_around_the_send_is_recovered_once_the_lease_ends(
    sim, upstream, globex, monkeypatch, point
):
    row = provision(globex, upstream, send_now=False)
    real = prov.connector_for_upstream_account

    class Dying:
        def __init__(self, connector):
            self.connector = connector

        def create_sub_account(self, **kwargs):
            if point == "after_send":
                self.connector.create_sub_account(**kwargs)
            raise WorkerKilled(point)

    monkeypatch.setattr(prov, "connector_for_upstream_account", lambda **kw: Dying(real(**kw)))
    with pytest.raises(WorkerKilled):
        provisioning_send(provisioning=row, now=NOW)
    monkeypatch.undo()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.maybe_applied) == ("pending", 1, True)
    assert upstream_accounts(sim) == ([row.account] if point == "after_send" else [])

    assert writes_resend_pending(PROVISIONING, now=NOW + LEASE - dt.timedelta(seconds=1)) == []
    assert writes_resend_pending(PROVISIONING, now=NOW + LEASE) == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("confirmed", 2)
    assert upstream_accounts(sim) == [row.account]
    assert SubAccount.objects.filter(upstream_id=row.account).count() == 1
    assert writes_resend_pending(PROVISIONING, now=NOW + 2 * LEASE) == []


@pytest.mark.django_db
def test_a_name_taken_upstream_by_another_account_is_replaced_by_a_fresh_one(
    sim, upstream, globex, monkeypatch
):
    prov.connector_for_upstream_account(upstream_account=upstream).create_sub_account(
        account="acmeprtaken1", password="Someone3lse99", flow_mb=0, idempotency_key="other-key-01"
    )
    real = prov.provisioning_name_new
    names = iter(["acmeprtaken1"])
    monkeypatch.setattr(prov, "provisioning_name_new", lambda **kw: next(names, None) or real(**kw))
    row = provision(globex, upstream)
    assert row.status == "confirmed" and row.account != "acmeprtaken1"
    assert sorted(upstream_accounts(sim)) == sorted(["acmeprtaken1", row.account])
    assert sim.sub_account("acmeprtaken1")["password"] == "Someone3lse99"  # untouched
    assert sim.sub_account(row.account)["password"] == row.secret["password"]
    assert creates(sim) == 3  # the other's, the refused one, the renamed one
    assert SubAccount.objects.get().upstream_id == row.account


class _Refusing:
    """A connector whose create refuses the name; the list shows it with `listed_password`."""

    def __init__(self, listed_password: str | None):
        self.listed_password = listed_password
        self.creates = 0

    def create_sub_account(self, **kwargs):
        self.creates += 1
        self.account = kwargs["account"]
        raise ParameterError("account already exists")

    def sub_accounts_page(self, *, page=1, page_size=100, account=None):
        rows = ()
        if self.listed_password is not None:
            rows = (
                DiscoveredSubAccount(
                    upstream_id=account, enabled=True, is_main=False, used_bytes=0,
                    remaining_bytes=0, created_at=None, expires_at=None,
                    password=self.listed_password,
                ),
            )  # fmt: skip
        return SubAccountPage(page=page, page_size=page_size, total=len(rows), rows=rows)


@pytest.mark.django_db
def test_a_refused_name_listed_with_the_rows_password_is_the_rows_account_not_renamed(
    upstream, globex
):
    """An upstream that does not replay an earlier create of the same key: its account is
    found in the list with the row's password, so the row is confirmed under its name."""
    row = provision(globex, upstream, send_now=False)
    connector = _Refusing(listed_password=row.secret["password"])
    sent = provisioning_send(provisioning=row, now=NOW, connector=connector)
    assert (sent.status, sent.account, connector.creates) == ("confirmed", row.account, 1)


@pytest.mark.django_db
def test_a_name_refused_after_every_rename_fails_the_row_without_creating(upstream, globex):
    row = provision(globex, upstream, send_now=False)
    connector = _Refusing(listed_password=None)
    sent = provisioning_send(provisioning=row, now=NOW, connector=connector)
    assert (sent.status, sent.error_code, connector.creates) == (
        "failed", "upstream_bad_parameter", 1 + prov.RENAMES,
    )  # fmt: skip
    assert not SubAccount.objects.exists()


# --- refusals ------------------------------------------------------------------------------


def _refused(code: str, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        provision(**kwargs)
    assert caught.value.code == code
    assert not Provisioning.objects.exists()
    return caught.value


@pytest.mark.django_db
def test_bytesflows_has_no_write_api(acme, globex):
    bytesflows = factories.UpstreamAccountFactory(
        reseller=acme, provider=Provider.BYTESFLOWS, credentials={}
    )
    error = _refused("provider_has_no_reseller_api", customer=globex, upstream_account=bytesflows)
    assert error.http_status == 409


@pytest.mark.django_db
def test_a_suspended_customer_gets_no_new_sub_account(sim, upstream, globex):
    Customer.objects.filter(pk=globex.pk).update(status="suspended", suspended_at=NOW)
    globex.refresh_from_db()
    error = _refused("customer_suspended", customer=globex, upstream_account=upstream)
    assert error.http_status == 409
    assert creates(sim) == 0


@pytest.mark.django_db
def test_upstream_accounts_inactive_without_credentials_or_of_another_reseller_are_refused(
    sim, upstream, globex
):
    other = factories.UpstreamAccountFactory(base_url=sim.url, credentials=CREDS)
    assert _refused("validation_error", customer=globex, upstream_account=other).extra == {
        "fields": {"upstream_account": ["Not one of the customer's reseller's."]}
    }
    upstream.credentials = {}
    upstream.save()
    _refused("upstream_credentials_missing", customer=globex, upstream_account=upstream)
    upstream.credentials, upstream.is_active = CREDS, False
    upstream.save()
    _refused("upstream_account_inactive", customer=globex, upstream_account=upstream)
    assert creates(sim) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("nbytes", [-MIB, MIB + 1, 1.5, "1048576", True])
def test_initial_bytes_must_be_zero_or_whole_mb(sim, upstream, globex, nbytes):
    error = _refused(
        "invalid_amount", customer=globex, upstream_account=upstream, initial_bytes=nbytes
    )
    assert list(error.extra["fields"]) == ["initial_bytes"]


@pytest.mark.django_db
def test_a_create_refused_for_insufficient_balance_fails_and_creates_nothing(upstream, globex):
    class Broke:
        def create_sub_account(self, **kwargs):
            raise InsufficientBalanceError("insufficient balance")

    row = provision(globex, upstream, connector=Broke())
    assert (row.status, row.error_code, row.maybe_applied) == (
        "failed", "upstream_insufficient_balance", False,
    )  # fmt: skip
    assert not SubAccount.objects.exists()


@pytest.mark.django_db
def test_initial_traffic_beyond_the_pool_fails_its_allocation_but_keeps_the_sub_account(
    sim, upstream, globex
):
    sim.set_pool(total_mb=1000)
    row = provision(globex, upstream, initial_bytes=2 * GIB)
    assert row.status == "confirmed" and upstream_accounts(sim) == [row.account]
    initial = Allocation.objects.get()
    assert (initial.status, initial.error_code, initial.reason) == (
        "failed", "upstream_insufficient_balance", "initial",
    )  # fmt: skip
    assert Decimal(sim.sub_account(row.account)["allocated_mb"]) == 0


@pytest.mark.django_db
def test_an_unreachable_upstream_leaves_the_row_pending_for_the_sweep(upstream, globex):
    class Down:
        def create_sub_account(self, **kwargs):
            error = TransientError("connection refused")
            error.may_have_applied = False
            raise error

    row = provision(globex, upstream, connector=Down())
    assert (row.status, row.error_code, row.maybe_applied) == (
        "pending", "upstream_unavailable", False,
    )  # fmt: skip
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=60)


# --- the manual add ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_manually_added_ipfoxy_id_must_be_listed_upstream(sim, upstream, globex):
    with pytest.raises(ApplicationError) as caught:
        sub_account_add(customer=globex, upstream_account=upstream, upstream_id="NOSUCH0001")
    assert caught.value.code == "upstream_sub_account_unknown"
    assert caught.value.http_status == 400 and list(caught.value.extra["fields"]) == ["upstream_id"]
    assert not SubAccount.objects.exists()

    listed = sub_account_add(
        customer=globex, upstream_account=upstream, upstream_id="SIM00001", label="legacy"
    )
    assert listed.upstream_id == "SIM00001" and listed.label == "legacy"
    assert listed.proxy_password and listed.proxy_password.startswith("Sim")
    assert listed.proxy_login["ip_whitelist"] == []


@pytest.mark.django_db
def test_a_manual_add_the_upstream_cannot_answer_is_a_503_not_an_accept(sim, upstream, globex):
    sim.set_faults(http_5xx={"next": 10, "target": "ipfoxy.sub_accounts"})
    with pytest.raises(ApplicationError) as caught:
        sub_account_add(customer=globex, upstream_account=upstream, upstream_id="SIM00001")
    assert (caught.value.code, caught.value.http_status) == ("upstream_unavailable", 503)
    assert not SubAccount.objects.exists()


@pytest.mark.django_db
def test_a_manual_bytesflows_add_asks_no_upstream(acme, globex):
    bytesflows = factories.UpstreamAccountFactory(
        reseller=acme, provider=Provider.BYTESFLOWS, credentials={}
    )
    sub = sub_account_add(
        customer=globex, upstream_account=bytesflows, upstream_id="globex-dc-1",
        credentials={"token": "bf-token-1"},
    )  # fmt: skip
    assert sub.upstream_id == "globex-dc-1" and sub.proxy_username is None
    assert sub.proxy_password is None and sub.proxy_url is None
