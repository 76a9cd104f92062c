"""The credit-limit policy against the IPFoxy simulator: a top-up is sent upstream once, the
refreshed figure shows it, and the next run has nothing to do; two runs at once (PostgreSQL)
allocate once."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import customer_update
from billing.traffic_policy import customer_traffic_policy_apply
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, in_thread
from usage.models import Allocation, SubAccountTraffic
from usage.services.connectors import connector_for_upstream_account
from usage.services.traffic import sub_account_traffic_refresh
from usage.simulator import SimulatorConfig, start_simulator

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
MIB = 1_048_576
GIB = 1024 * MIB
ACCOUNT = "FBTOPUP000001"


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=7, now=NOW, rate_limit_enabled=False, ipfoxy_pool_mb=100_000)
    with start_simulator(port=0, config=config) as running:
        yield running


def world(sim):
    """A customer on credit_limit (500.00, 10 GiB chunks below 2 GiB) whose sub-account was
    created upstream with 1 GiB, and the stored figure of it."""
    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller)
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller, base_url=sim.url, credentials=CREDS
    )
    connector_for_upstream_account(upstream_account=upstream).create_sub_account(
        account=ACCOUNT, password="Passw0rd1234", flow_mb=1024, idempotency_key="create-0000001"
    )
    sub = factories.SubAccountFactory(
        customer=customer, upstream_account=upstream, upstream_id=ACCOUNT
    )
    customer_update(
        customer=customer,
        traffic_policy="credit_limit",
        credit_limit=Decimal("500.00"),
        topup_bytes=10 * GIB,
        topup_below_bytes=2 * GIB,
    )
    sub_account_traffic_refresh(upstream_account=upstream, now=NOW)
    return customer, sub


def allocated_upstream(sim) -> int:
    return int(Decimal(sim.sub_account(ACCOUNT)["allocated_mb"]) * MIB)


@pytest.mark.django_db
def test_a_top_up_is_sent_upstream_once_and_the_refreshed_figure_ends_the_need(
    sim, django_capture_on_commit_callbacks
):
    customer, sub = world(sim)
    assert SubAccountTraffic.objects.get(sub_account=sub).remaining_bytes == GIB

    now = timezone.now()  # the send task reads the clock: the run is "now" too
    with django_capture_on_commit_callbacks(execute=True):
        run = customer_traffic_policy_apply(customer=customer, now=now)

    [allocation] = Allocation.objects.filter(sub_account=sub)
    assert run.allocated == [allocation.pk]
    assert (allocation.status, allocation.reason, allocation.bytes) == (
        "confirmed",
        "auto_topup",
        10 * GIB,
    )
    assert allocated_upstream(sim) == 11 * GIB
    # Until the figure is read again the confirmed chunk counts as in flight: nothing more.
    assert customer_traffic_policy_apply(customer=customer, now=now).allocated == []
    later = timezone.now() + dt.timedelta(seconds=1)
    sub_account_traffic_refresh(upstream_account=sub.upstream_account, now=later)
    assert SubAccountTraffic.objects.get(sub_account=sub).remaining_bytes == 11 * GIB
    run = customer_traffic_policy_apply(customer=customer, now=later)
    assert run.candidates == 0 and Allocation.objects.count() == 1
    assert allocated_upstream(sim) == 11 * GIB


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_allocate_one_chunk(sim):
    customer, sub = world(sim)
    barrier = threading.Barrier(2)
    now = timezone.now()  # the send task reads the clock: the run is "now" too
    job = in_thread(barrier, lambda: customer_traffic_policy_apply(customer=customer, now=now))
    with ThreadPoolExecutor(2) as pool:
        runs = [f.result() for f in [pool.submit(job), pool.submit(job)]]
    assert sorted(len(run.allocated) for run in runs) == [0, 1]
    assert Allocation.objects.filter(sub_account=sub).count() == 1
    assert allocated_upstream(sim) == 11 * GIB
