"""Every IPFoxy sub-account's traffic from `get-sub-account-list`, 100 per request, stored so
nothing else has to ask the upstream; and the per-sub-account read that serves a fresh stored
figure."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from celery.schedules import crontab

from accounts.api_keys import api_key_create
from accounts.models import Provider, SubAccount
from tests import factories
from tests.api.conftest import key_client
from usage import tasks
from usage.models import Allocation, SubAccountTraffic, UpstreamPoolBalance
from usage.providers.base import DiscoveredSubAccount, TransientError
from usage.providers.ratelimit import UnlimitedBudget
from usage.providers.reseller import PoolBalance, SubAccountFlow, SubAccountPage
from usage.schedule import BEAT_SCHEDULE
from usage.selectors import sub_account_traffic_stored
from usage.services.connectors import connector_for_upstream_account
from usage.services.traffic import (
    STORED_FRESH_FOR,
    sub_account_traffic,
    sub_account_traffic_refresh,
)
from usage.simulator import SimulatorConfig, start_simulator

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
MIB = 1_048_576
GIB = 1024 * MIB


def mb_to_bytes(mb: str) -> int:
    """The simulator's MB figure (two decimals) in bytes, binary, rounded half up."""
    return int((Decimal(mb) * MIB).to_integral_value(ROUND_HALF_UP))


# --- against the simulator -------------------------------------------------------------------


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=11, now=NOW, rate_limit_enabled=False, ipfoxy_sub_account_count=0)
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.mark.django_db
def test_250_sub_accounts_are_refreshed_from_3_list_requests_with_exact_bytes(
    sim, reseller, customer
):
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller, base_url=sim.url, credentials=CREDS
    )
    writer = connector_for_upstream_account(upstream_account=upstream, budget=UnlimitedBudget())
    names = [f"FBTRAFFIC{i:04d}" for i in range(250)]
    for i, name in enumerate(names):  # 1..250 MB each: the first ones run dry by the refresh
        writer.create_sub_account(
            account=name, password="Passw0rd1234", flow_mb=1 + i, idempotency_key=f"create-{i:06d}"
        )
    SubAccount.objects.bulk_create(
        SubAccount(customer=customer, upstream_account=upstream, upstream_id=name, label=name)
        for name in names
    )
    sim.advance(6 * 3600)  # six hours of use
    sim.reset_stats()

    result = sub_account_traffic_refresh(upstream_account=upstream, now=NOW)

    assert (result.requests, result.pages, result.listed) == (4, 3, 251)  # + main row, + pool
    assert (result.stored, result.ignored, result.missing, result.error_code) == (250, 1, [], "")
    assert sim.stats()["requests_by_endpoint"] == {
        "ipfoxy.sub_accounts": 3,
        "ipfoxy.residential_data": 1,
    }
    pool = UpstreamPoolBalance.objects.get(upstream_account=upstream)
    allocated_mb = sum(1 + i for i in range(250))  # drawn from the pool by the creations
    assert pool.total_bytes - pool.remaining_bytes == allocated_mb * MIB
    stored = {
        row.sub_account.upstream_id: row
        for row in SubAccountTraffic.objects.select_related("sub_account")
    }
    assert len(stored) == 250
    for name in names:
        upstream_view = sim.sub_account(name)
        row = stored[name]
        assert row.used_bytes == mb_to_bytes(upstream_view["used_mb"]), name
        assert row.remaining_bytes == mb_to_bytes(upstream_view["surplus_mb"]), name
        assert row.allocated_bytes == row.used_bytes + row.remaining_bytes
        assert row.upstream_enabled is True
        assert NOW <= row.as_of < NOW + dt.timedelta(seconds=30)
    # Real traffic moved: the smallest ran dry, the largest still has some left.
    dry = [name for name in names if stored[name].remaining_bytes == 0]
    assert names[0] in dry and 0 < len(dry) < 250
    assert stored[names[0]].used_bytes == MIB  # all of its 1 MB
    assert 0 < stored[names[-1]].remaining_bytes < 250 * MIB


@pytest.mark.django_db
def test_the_traffic_endpoint_serves_the_refreshed_figure_without_asking_again(
    sim, reseller, customer
):
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller, base_url=sim.url, credentials=CREDS
    )
    connector_for_upstream_account(upstream_account=upstream).create_sub_account(
        account="FBTRAFFIC0001",
        password="Passw0rd1234",
        flow_mb=2048,
        idempotency_key="create-000001",
    )
    sub = factories.SubAccountFactory(
        customer=customer, upstream_account=upstream, upstream_id="FBTRAFFIC0001"
    )
    sub_account_traffic_refresh(upstream_account=upstream, now=dt.datetime.now(dt.UTC))
    sim.reset_stats()

    api = key_client(api_key_create(reseller=reseller, name="storefront")[1])
    response = api.get(f"/api/v1/reseller/sub-accounts/{sub.pk}/traffic/")

    assert response.status_code == 200, response.content
    assert response.json()["remaining_bytes"] == 2 * GIB
    assert response.json()["allocated_bytes"] == 2 * GIB
    assert sim.stats()["requests_by_endpoint"] == {}


# --- rules, with a scripted list -------------------------------------------------------------


def row(upstream_id: str, used: int, remaining: int, *, is_main=False, enabled=True):
    return DiscoveredSubAccount(
        upstream_id=upstream_id, enabled=enabled, is_main=is_main, used_bytes=used,
        remaining_bytes=remaining, created_at=None, expires_at=None,
    )  # fmt: skip


class ScriptedList:
    """A reseller connector whose sub-account list is the given pages (an exception in place
    of a page is raised when that page is asked for)."""

    provider = Provider.IPFOXY

    def __init__(self, *pages, flow: SubAccountFlow | None = None):
        self.pages = pages
        self.flow = flow
        self.requests = 0
        self.flow_reads = 0

    def iter_sub_account_pages(self, *, page_size: int = 100):
        total = sum(len(p) for p in self.pages if not isinstance(p, Exception))
        for number, page in enumerate(self.pages, start=1):
            self.requests += 1
            if isinstance(page, Exception):
                raise page
            yield SubAccountPage(page=number, page_size=page_size, total=total, rows=tuple(page))

    def pool_balance(self, *, account=None) -> PoolBalance:
        self.requests += 1
        return PoolBalance(
            account=None, total_bytes=500 * GIB, remaining_bytes=120 * GIB, raw_total="512000",
            raw_remaining="122880", fetched_at=NOW,
        )  # fmt: skip

    def sub_account_flow(self, *, account: str, priority: bool = True) -> SubAccountFlow:
        self.flow_reads += 1
        assert self.flow is not None and account == self.flow.account
        return self.flow


@pytest.fixture
def upstream(reseller):
    return factories.UpstreamAccountFactory(reseller=reseller)


def sub(customer, upstream, upstream_id: str, **kwargs) -> SubAccount:
    return factories.SubAccountFactory(
        customer=customer, upstream_account=upstream, upstream_id=upstream_id, **kwargs
    )


def figures(sub_account: SubAccount) -> tuple[int, int, int, dt.datetime]:
    stored = SubAccountTraffic.objects.get(sub_account=sub_account)
    return stored.allocated_bytes, stored.used_bytes, stored.remaining_bytes, stored.as_of


@pytest.mark.django_db
def test_rows_of_no_open_flowbill_sub_account_are_ignored(customer, upstream):
    mine = sub(customer, upstream, "FBKNOWN00001")
    closed = sub(customer, upstream, "FBCLOSED0001", status=SubAccount.Status.CLOSED)
    other_upstream = factories.UpstreamAccountFactory(reseller=customer.reseller)
    elsewhere = sub(customer, other_upstream, "FBELSEWHERE1")
    listed = ScriptedList(
        [
            row("FBMAIN000001", 70 * GIB, 930 * GIB, is_main=True),  # the pool, not a customer's
            row("FBKNOWN00001", 3 * GIB, 7 * GIB),
            row("FBUNKNOWN001", 1 * GIB, 1 * GIB),  # not adopted yet: discovery's business
            row("FBCLOSED0001", 2 * GIB, 0),  # its sub-account is closed
            row("FBELSEWHERE1", 5 * GIB, 5 * GIB),  # known under another upstream account only
        ]
    )

    result = sub_account_traffic_refresh(
        upstream_account=upstream, now=NOW, connector=listed, clock=lambda: 0.0
    )

    assert (result.listed, result.stored, result.ignored, result.missing) == (5, 1, 4, [])
    assert figures(mine) == (10 * GIB, 3 * GIB, 7 * GIB, NOW)
    assert not SubAccountTraffic.objects.filter(sub_account__in=[closed, elsewhere]).exists()


@pytest.mark.django_db
def test_a_sub_account_missing_from_the_list_is_left_untouched_and_reported(customer, upstream):
    listed_sub = sub(customer, upstream, "FBLISTED0001")
    gone = sub(customer, upstream, "FBGONE000001")
    suspended_gone = sub(customer, upstream, "FBGONE000002", status=SubAccount.Status.SUSPENDED)
    sub(customer, upstream, "FBGONE000003", status=SubAccount.Status.CLOSED)  # not expected
    earlier = NOW - dt.timedelta(hours=2)
    SubAccountTraffic.objects.create(
        sub_account=gone, allocated_bytes=4 * GIB, used_bytes=GIB, remaining_bytes=3 * GIB,
        upstream_enabled=True, as_of=earlier,
    )  # fmt: skip

    result = sub_account_traffic_refresh(
        upstream_account=upstream,
        now=NOW,
        connector=ScriptedList([row("FBLISTED0001", 0, 5 * GIB)]),
    )

    assert result.complete and result.stored == 1
    assert result.missing == sorted([gone.pk, suspended_gone.pk])
    assert figures(gone) == (4 * GIB, GIB, 3 * GIB, earlier)
    assert figures(listed_sub)[:3] == (5 * GIB, 0, 5 * GIB)


@pytest.mark.django_db
def test_pages_arrive_over_time_and_each_is_stamped_when_it_arrived(customer, upstream):
    first, second = sub(customer, upstream, "FBPAGE000001"), sub(customer, upstream, "FBPAGE000002")
    ticks = iter([100.0, 100.5, 161.0])  # start, page 1 after 0.5 s, page 2 a minute later
    result = sub_account_traffic_refresh(
        upstream_account=upstream,
        now=NOW,
        connector=ScriptedList([row("FBPAGE000001", 1, 2)], [row("FBPAGE000002", 3, 4)]),
        clock=lambda: next(ticks),
    )
    assert (result.pages, result.requests, result.stored) == (2, 3, 2)  # + the pool
    assert figures(first)[3] == NOW + dt.timedelta(seconds=0.5)
    assert figures(second)[3] == NOW + dt.timedelta(seconds=61)


@pytest.mark.django_db
def test_a_walk_cut_short_keeps_its_pages_and_reports_the_error_but_no_missing(customer, upstream):
    first, second = sub(customer, upstream, "FBCUT0000001"), sub(customer, upstream, "FBCUT0000002")
    listed = ScriptedList([row("FBCUT0000001", GIB, GIB)], TransientError("HTTP 503 from upstream"))

    result = sub_account_traffic_refresh(upstream_account=upstream, now=NOW, connector=listed)

    assert (result.error_code, result.pages, result.requests) == ("upstream_unavailable", 1, 2)
    assert not result.complete and result.missing == []  # unknown: the list was not seen whole
    assert figures(first)[:3] == (2 * GIB, GIB, GIB)
    assert not SubAccountTraffic.objects.filter(sub_account=second).exists()


@pytest.mark.django_db
def test_a_refresh_replaces_the_previous_figures(customer, upstream):
    one = sub(customer, upstream, "FBAGAIN00001")
    for used, left, now in ((GIB, 9 * GIB, NOW), (4 * GIB, 6 * GIB, NOW + dt.timedelta(hours=1))):
        sub_account_traffic_refresh(
            upstream_account=upstream,
            now=now,
            connector=ScriptedList([row("FBAGAIN00001", used, left, enabled=False)]),
            clock=lambda: 0.0,
        )
    assert SubAccountTraffic.objects.count() == 1
    assert figures(one) == (10 * GIB, 4 * GIB, 6 * GIB, NOW + dt.timedelta(hours=1))
    assert SubAccountTraffic.objects.get().upstream_enabled is False


@pytest.mark.django_db
def test_bytesflows_and_switched_off_upstream_accounts_are_skipped_without_a_request(reseller):
    bytesflows = factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    switched_off = factories.UpstreamAccountFactory(reseller=reseller, is_active=False)
    never = ScriptedList(AssertionError("no request may be sent"))
    for upstream_account, why in (
        (bytesflows, "provider_has_no_reseller_api"),
        (switched_off, "upstream_account_inactive"),
    ):
        result = sub_account_traffic_refresh(
            upstream_account=upstream_account, now=NOW, connector=never
        )
        assert (result.skipped, result.requests, result.complete) == (why, 0, False)
    assert never.requests == 0


@pytest.mark.django_db
def test_stored_figures_are_read_per_reseller_without_a_request(customer, upstream):
    one = sub(customer, upstream, "FBSTORED0001")
    foreign = factories.SubAccountFactory()
    sub_account_traffic_refresh(
        upstream_account=upstream, now=NOW, connector=ScriptedList([row("FBSTORED0001", 1, 2)])
    )
    SubAccountTraffic.objects.create(
        sub_account=foreign, allocated_bytes=3, used_bytes=1, remaining_bytes=2, as_of=NOW
    )
    stored = sub_account_traffic_stored(
        reseller=customer.reseller, sub_account_ids=[one.pk, foreign.pk]
    )
    assert list(stored) == [one.pk] and stored[one.pk].remaining_bytes == 2


# --- the read on request --------------------------------------------------------------------


def flow(account: str, used: int, remaining: int, at: dt.datetime) -> SubAccountFlow:
    return SubAccountFlow(
        account=account, used_bytes=used, remaining_bytes=remaining, raw_used="",
        raw_remaining="", raw_unit="KB", fetched_at=at, max_age=dt.timedelta(minutes=1),
    )  # fmt: skip


def stored_at(sub_account: SubAccount, at: dt.datetime, remaining: int = 5 * GIB) -> None:
    SubAccountTraffic.objects.create(
        sub_account=sub_account, allocated_bytes=remaining, used_bytes=0,
        remaining_bytes=remaining, upstream_enabled=True, as_of=at,
    )  # fmt: skip


@pytest.mark.django_db
def test_a_figure_stored_less_than_a_minute_ago_is_served_as_is(customer, upstream):
    one = sub(customer, upstream, "FBREAD000001")
    stored_at(one, NOW - STORED_FRESH_FOR + dt.timedelta(seconds=1))
    upstream_read = ScriptedList(flow=flow("FBREAD000001", GIB, GIB, NOW))

    traffic = sub_account_traffic(sub_account=one, now=NOW, connector=upstream_read)

    assert (traffic.remaining_bytes, upstream_read.flow_reads) == (5 * GIB, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("why", ["a minute old", "an allocation confirmed since"])
def test_an_old_figure_is_read_again_from_the_upstream_and_stored(customer, upstream, why):
    one = sub(customer, upstream, "FBREAD000002")
    read_at = NOW - (STORED_FRESH_FOR if why == "a minute old" else dt.timedelta(seconds=10))
    stored_at(one, read_at)
    if why == "an allocation confirmed since":
        Allocation.objects.create(
            sub_account=one, idempotency_key="confirmed-since-1", bytes=GIB, flow_mb=1024,
            created_by="system", status=Allocation.Status.CONFIRMED, next_attempt_at=read_at,
            created_at=read_at, confirmed_at=read_at + dt.timedelta(seconds=5),
        )  # fmt: skip
    upstream_read = ScriptedList(flow=flow("FBREAD000002", 2 * GIB, 7 * GIB, NOW))

    traffic = sub_account_traffic(sub_account=one, now=NOW, connector=upstream_read)

    assert upstream_read.flow_reads == 1
    assert (traffic.allocated_bytes, traffic.used_bytes, traffic.remaining_bytes) == (
        9 * GIB,
        2 * GIB,
        7 * GIB,
    )
    assert figures(one) == (9 * GIB, 2 * GIB, 7 * GIB, NOW)
    assert SubAccountTraffic.objects.get(sub_account=one).upstream_enabled is True  # kept


@pytest.mark.django_db
def test_a_read_on_request_never_replaces_a_newer_stored_figure(customer, upstream):
    one = sub(customer, upstream, "FBREAD000003")
    newer = NOW + dt.timedelta(seconds=2)  # a refresh page that arrived during the read
    stored_at(one, newer, remaining=3 * GIB)
    upstream_read = ScriptedList(flow=flow("FBREAD000003", 0, 4 * GIB, NOW))

    traffic = sub_account_traffic(
        sub_account=one, now=newer + STORED_FRESH_FOR, connector=upstream_read
    )

    assert upstream_read.flow_reads == 1
    assert (traffic.remaining_bytes, traffic.as_of) == (3 * GIB, newer)


@pytest.mark.django_db
def test_a_first_read_on_request_creates_the_stored_figure(customer, upstream):
    one = sub(customer, upstream, "FBREAD000004")
    upstream_read = ScriptedList(flow=flow("FBREAD000004", GIB, 0, NOW))
    traffic = sub_account_traffic(sub_account=one, now=NOW, connector=upstream_read)
    assert figures(one) == (GIB, GIB, 0, NOW)
    assert traffic.upstream_enabled is None  # a read of one sub-account does not say


# --- task and beat --------------------------------------------------------------------------


def test_the_refresh_runs_every_ten_minutes_from_beat():
    entry = BEAT_SCHEDULE["usage-sub-account-traffic-refresh"]
    assert entry["task"] == "usage.tasks.sub_account_traffic_refresh_all_task"
    assert entry["schedule"] == crontab(minute="*/10")
    assert tasks.TRAFFIC_REFRESH_EXPIRES == 600  # a refresh not started by the next one: dropped


@pytest.mark.django_db
def test_the_fan_out_queues_one_refresh_per_active_ipfoxy_upstream_account(reseller, monkeypatch):
    ipfoxy = [factories.UpstreamAccountFactory(reseller=reseller) for _ in range(2)]
    factories.UpstreamAccountFactory(reseller=reseller, is_active=False)
    factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    queued = []
    monkeypatch.setattr(
        tasks.sub_account_traffic_refresh_task,
        "apply_async",
        lambda args, expires: queued.append((args, expires)),
    )

    assert tasks.sub_account_traffic_refresh_all_task() == 2
    assert queued == [([u.pk], 600) for u in sorted(ipfoxy, key=lambda u: u.pk)]


@pytest.mark.django_db
def test_the_refresh_task_loads_the_upstream_account_and_reports_its_counts(
    customer, upstream, monkeypatch
):
    sub(customer, upstream, "FBTASK000001")
    monkeypatch.setattr(
        "usage.services.traffic.connector_for_upstream_account",
        lambda upstream_account: ScriptedList(
            [row("FBTASK000001", 1, 1), row("FBOTHER00001", 1, 1)]
        ),
    )
    task = tasks.sub_account_traffic_refresh_task
    assert task.acks_late and task.soft_time_limit < task.time_limit

    counts = task.apply(args=[upstream.pk, NOW.isoformat()]).get()

    assert counts == {
        "upstream_account": upstream.pk, "requests": 2, "pages": 1, "listed": 2, "stored": 1,
        "ignored": 1, "missing": 0, "error_code": "", "skipped": "",
    }  # fmt: skip
