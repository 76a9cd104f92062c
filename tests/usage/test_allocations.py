"""The allocation ledger against the upstream simulator: exactly once, whatever dies when.

The "kill" drills end the send at each point a worker can die (after the claim and before the
request; after the upstream applied it and before the row is updated) by raising an
exception nothing catches, then run the recovery sweep: the simulator's allocated total then
equals the ledger's confirmed total, and no key was applied twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from accounts.models import Provider, SubAccount
from config.celery import app as celery_app
from tests import factories
from usage.models import Allocation
from usage.providers import build_connector
from usage.providers.ratelimit import InProcessBudget
from usage.providers.transport import RetryPolicy
from usage.services import allocations as ledger
from usage.services.allocations import (
    LEASE,
    RESEND_AFTER,
    allocation_create,
    allocation_send,
    allocations_resend_pending,
)
from usage.services.connectors import connector_for_upstream_account
from usage.simulator import SimulatorConfig, start_simulator

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
MIB = 1_048_576
GIB = 1024 * MIB
ACCOUNT = "FBALLOC000001"


class WorkerKilled(BaseException):
    """The worker process dies here: nothing in Flowbill catches it."""


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=7, now=NOW, rate_limit_enabled=False, ipfoxy_pool_mb=100_000)
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.fixture
def sub(sim, reseller, customer) -> SubAccount:
    """An IPFoxy sub-account provisioned in the simulator with no traffic yet."""
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller, base_url=sim.url, credentials=CREDS
    )
    connector_for_upstream_account(upstream_account=upstream).create_sub_account(
        account=ACCOUNT, password="Passw0rd1234", flow_mb=0, idempotency_key="create-0000001"
    )
    return factories.SubAccountFactory(
        customer=customer, upstream_account=upstream, upstream_id=ACCOUNT
    )


def upstream_allocated(sim) -> tuple[int, int]:
    """(bytes the sub-account was ever allocated, bytes drawn from the main pool)."""
    account = Decimal(sim.sub_account(ACCOUNT)["allocated_mb"])
    pool = Decimal(sim.pool()["allocated_mb"])
    return int(account * MIB), int(pool * MIB)


def ledger_confirmed(sub_account: SubAccount) -> int:
    rows = Allocation.objects.filter(sub_account=sub_account, status="confirmed")
    return sum(rows.values_list("bytes", flat=True))


def create(sub_account, nbytes=10 * GIB, *, now=NOW, **kwargs) -> Allocation:
    return allocation_create(
        sub_account=sub_account, bytes=nbytes, actor="login alice", now=now, **kwargs
    )


def kill_at(monkeypatch, point: str) -> None:
    """Make the next sends die at `point`: "before_send" (claimed, nothing sent) or
    "after_send" (the upstream applied it, the row not updated yet)."""
    real = ledger.reseller_connector_for_sub_account

    class Dying:
        def __init__(self, connector):
            self.connector = connector

        def allocate_flow(self, **kwargs):
            if point == "before_send":
                raise WorkerKilled(point)
            self.connector.allocate_flow(**kwargs)
            raise WorkerKilled(point)

    monkeypatch.setattr(
        ledger,
        "reseller_connector_for_sub_account",
        lambda **kwargs: Dying(real(**kwargs)),
    )


# --- the happy path ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_allocation_is_recorded_pending_then_sent_once_on_commit_and_confirmed(
    sim, sub, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        # The queued task reads the clock: the row is made "now" too.
        allocation = create(sub, expires_in_days=30, now=timezone.now())
        assert Allocation.objects.get().status == "pending"  # committed before any request
    assert len(callbacks) == 1
    allocation.refresh_from_db()
    assert (allocation.status, allocation.attempts, allocation.flow_mb) == ("confirmed", 1, 10240)
    assert allocation.confirmed_at is not None and allocation.maybe_applied is False
    assert upstream_allocated(sim) == (10 * GIB, 10 * GIB) == (ledger_confirmed(sub),) * 2
    lots = sim.sub_account(ACCOUNT)["lots"]
    assert [lot["remaining_mb"] for lot in lots] == ["10240"]
    assert lots[0]["expires"] is not None  # 30 days


@pytest.mark.django_db
def test_every_allocation_gets_its_own_idempotency_key_within_ipfoxy_rules(sub):
    keys = {create(sub, MIB).idempotency_key for _ in range(20)}
    assert len(keys) == 20
    assert all(10 <= len(key) <= 25 and key.isalnum() for key in keys)


# --- exactly once: kill the worker at each point, then recover ------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("point", ["before_send", "after_send"])
def test_a_worker_killed_at_each_point_is_recovered_by_the_sweep_exactly_once(
    sim, sub, monkeypatch, point
):
    allocation = create(sub, 10 * GIB)
    kill_at(monkeypatch, point)
    with pytest.raises(WorkerKilled):
        allocation_send(allocation=allocation, now=NOW)
    monkeypatch.undo()

    allocation.refresh_from_db()
    assert (allocation.status, allocation.attempts, allocation.maybe_applied) == (
        "pending",
        1,
        True,
    )
    applied = 10 * GIB if point == "after_send" else 0
    assert upstream_allocated(sim) == (applied, applied)
    # While the dead worker's lease runs, nothing resends it (it might still be on the wire).
    assert allocations_resend_pending(now=NOW + LEASE - dt.timedelta(seconds=1)) == []

    assert allocations_resend_pending(now=NOW + LEASE) == [allocation.pk]
    allocation.refresh_from_db()
    assert (allocation.status, allocation.attempts) == ("confirmed", 2)
    assert upstream_allocated(sim) == (10 * GIB, 10 * GIB) == (ledger_confirmed(sub),) * 2
    assert allocations_resend_pending(now=NOW + 2 * LEASE) == []  # settled: never again


@pytest.mark.django_db
def test_kills_at_every_point_leave_the_upstream_total_equal_to_the_ledger_total(
    sim, sub, monkeypatch
):
    """Three allocations: one dies before its send, one after the upstream applied it, one
    goes through; a message lost besides (a fourth, never sent). After one sweep the
    simulator holds exactly what the ledger confirms, each key applied once."""
    killed_before, killed_after, fine, lost = (create(sub, n * GIB) for n in (1, 2, 4, 8))
    for allocation, point in ((killed_before, "before_send"), (killed_after, "after_send")):
        kill_at(monkeypatch, point)
        with pytest.raises(WorkerKilled):
            allocation_send(allocation=allocation, now=NOW)
        monkeypatch.undo()
    assert allocation_send(allocation=fine, now=NOW).status == "confirmed"
    assert upstream_allocated(sim) == (6 * GIB, 6 * GIB)  # 2 (applied, unrecorded) + 4

    recovered = allocations_resend_pending(now=NOW + LEASE)
    assert sorted(recovered) == sorted([killed_before.pk, killed_after.pk, lost.pk])
    assert set(Allocation.objects.values_list("status", flat=True)) == {"confirmed"}
    assert ledger_confirmed(sub) == 15 * GIB
    assert upstream_allocated(sim) == (15 * GIB, 15 * GIB)
    # One lot per applied allocation: no key was applied twice.
    lots = sorted(int(lot["remaining_mb"]) for lot in sim.sub_account(ACCOUNT)["lots"])
    assert lots == [1024, 2048, 4096, 8192]


@pytest.mark.django_db
def test_a_lost_message_is_sent_by_the_sweep_after_a_minute(sim, sub):
    allocation = create(sub)  # its on-commit task never runs here: the message is "lost"
    assert allocations_resend_pending(now=NOW + RESEND_AFTER / 2) == []
    assert allocations_resend_pending(now=NOW + RESEND_AFTER) == [allocation.pk]
    allocation.refresh_from_db()
    assert (allocation.status, allocation.attempts) == ("confirmed", 1)
    assert upstream_allocated(sim) == (10 * GIB, 10 * GIB)


@pytest.mark.django_db
def test_a_second_delivery_of_the_task_sends_nothing(sim, sub):
    allocation = create(sub)
    task = celery_app.tasks["usage.tasks.allocation_send_task"]
    assert task.apply(args=[allocation.pk, NOW.isoformat()]).get() == "confirmed"
    assert task.apply(args=[allocation.pk, NOW.isoformat()]).get() is None
    assert sim.stats()["requests_by_endpoint"]["ipfoxy.allocate_flow"] == 1
    assert upstream_allocated(sim) == (10 * GIB, 10 * GIB)


# --- outcomes the upstream decides ---------------------------------------------------------


def short_timeout_connector(sim, upstream):
    """The real IPFoxy connector with a 0.3 s read timeout, 2 attempts and no sleeping."""
    return build_connector(
        provider=Provider.IPFOXY, base_url=sim.url, credentials=CREDS, client=httpx.Client(),
        budget=InProcessBudget(), budget_key=f"test:{upstream.pk}",
        retry=RetryPolicy(max_attempts=2), timeout=httpx.Timeout(0.3), sleep=lambda s: None,
    )  # fmt: skip


@pytest.mark.django_db
def test_an_unknown_outcome_stays_pending_and_the_resend_with_the_same_key_confirms_once(sim, sub):
    allocation = create(sub)
    sim.set_faults(timeout_after_apply=2, slow_seconds=1)  # applied, both answers lost
    sent = allocation_send(
        allocation=allocation,
        now=NOW,
        connector=short_timeout_connector(sim, sub.upstream_account),
    )
    assert (sent.status, sent.error_code, sent.maybe_applied) == (
        "pending",
        "upstream_outcome_unknown",
        True,
    )
    assert sent.next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert upstream_allocated(sim) == (10 * GIB, 10 * GIB)  # it did happen upstream

    assert allocations_resend_pending(now=NOW + dt.timedelta(seconds=59)) == []
    assert allocations_resend_pending(now=NOW + dt.timedelta(seconds=60)) == [allocation.pk]
    allocation.refresh_from_db()
    assert (allocation.status, allocation.attempts) == ("confirmed", 2)
    assert upstream_allocated(sim) == (10 * GIB, 10 * GIB) == (ledger_confirmed(sub),) * 2


@pytest.mark.django_db
def test_an_empty_upstream_pool_fails_the_allocation_and_applies_nothing(sim, sub):
    sim.set_pool(total_mb=1000)
    allocation = create(sub, 1024 * MIB)
    sent = allocation_send(allocation=allocation, now=NOW)
    assert (sent.status, sent.error_code, sent.maybe_applied) == (
        "failed",
        "upstream_insufficient_balance",
        False,
    )
    assert upstream_allocated(sim) == (0, 0)
    assert allocations_resend_pending(now=NOW + dt.timedelta(days=2)) == []
    # A smaller one still fits.
    small = create(sub, 1000 * MIB)
    assert allocation_send(allocation=small, now=NOW).status == "confirmed"
    assert upstream_allocated(sim) == (1000 * MIB, 1000 * MIB) == (ledger_confirmed(sub),) * 2


@pytest.mark.django_db
def test_refused_credentials_fail_an_allocation_never_sent_before(sim, sub):
    upstream = sub.upstream_account
    upstream.credentials = {"api_id": "demo-api-id", "api_token": "wrong-token-1"}
    upstream.save()
    allocation = create(sub)
    sent = allocation_send(allocation=allocation, now=NOW)
    assert (sent.status, sent.error_code) == ("failed", "upstream_auth_failed")
    assert "wrong-token-1" not in sent.error
    assert upstream_allocated(sim) == (0, 0)
