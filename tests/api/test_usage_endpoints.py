"""Usage endpoints: the series in the reseller's calendar, strict queries, 404s, sync on request.

The world: a reseller in Asia/Shanghai (UTC+8) whose customer has two sub-accounts, with
hours stored around UTC midnight and around Shanghai midnight (16:00Z), and days derived
from them by the same storage service sync uses.
"""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from accounts.api_keys import api_key_create
from accounts.models import Provider
from tests import factories
from tests.api.conftest import key_client
from tests.api.schema_check import assert_matches_schema
from usage import tasks
from usage.api.views import usage_gb
from usage.models import SyncRun, UsageDay, UsageHour
from usage.services.storage import days_recompute

GIB = 1_073_741_824
R = "/api/v1/reseller"
MISSING_ID = 987654


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.UTC)


def store_hours(sub_account, hours: dict[dt.datetime, int]) -> None:
    for hour, nbytes in hours.items():
        UsageHour.objects.create(sub_account=sub_account, hour_start=hour, bytes=nbytes)
    tz = sub_account.customer.reseller.tzinfo
    days_recompute(sub_account_id=sub_account.pk, hours=list(hours), tz=tz)


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    assert_matches_schema(response)
    body = response.json()
    assert (body["code"], body["message"]) == ("validation_error", "Invalid input.")
    return body["extra"]["fields"]


@pytest.fixture
def shanghai(db):
    """A Shanghai reseller; customer A with two sub-accounts, customer B with one."""
    reseller = factories.ResellerFactory(timezone="Asia/Shanghai")
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    alice = factories.CustomerFactory(reseller=reseller, name="Alice")
    bob = factories.CustomerFactory(reseller=reseller, name="Bob")
    a1 = factories.SubAccountFactory(customer=alice, upstream_account=upstream)
    a2 = factories.SubAccountFactory(customer=alice, upstream_account=upstream)
    b1 = factories.SubAccountFactory(customer=bob, upstream_account=upstream)
    store_hours(
        a1,
        {
            utc(2026, 9, 30, 15): GIB,  # 23:00 on Sep 30 in Shanghai
            utc(2026, 9, 30, 16): 2 * GIB,  # 00:00 on Oct 1 in Shanghai
            utc(2026, 9, 30, 23): 1_000,  # 07:00 on Oct 1
            utc(2026, 10, 1, 0): 500_000_000,  # UTC midnight: 08:00 on Oct 1
        },
    )
    store_hours(a2, {utc(2026, 10, 1, 15): GIB // 2, utc(2026, 10, 31, 16): 3 * GIB})
    store_hours(b1, {utc(2026, 10, 1, 2): 7 * GIB})
    return {
        "reseller": reseller,
        "upstream": upstream,
        "alice": alice,
        "bob": bob,
        "a1": a1,
        "a2": a2,
        "b1": b1,
        "alice_api": key_client(api_key_create(reseller=reseller, customer=alice, name="a")[1]),
        "reseller_api": key_client(api_key_create(reseller=reseller, name="r")[1]),
    }


def series(response) -> list[tuple[str, int, str]]:
    assert response.status_code == 200, response.content
    assert_matches_schema(response)
    return [(row["period"], row["bytes"], row["gb"]) for row in response.json()["results"]]


# --- customer scope: the series -------------------------------------------------------------


def test_days_are_shanghai_days_summed_over_the_customers_sub_accounts(shanghai):
    response = shanghai["alice_api"].get("/api/v1/usage/?from=2026-09-30&to=2026-10-02")
    body = response.json()
    assert (body["timezone"], body["unit_bytes"], body["granularity"]) == (
        "Asia/Shanghai",
        GIB,
        "day",
    )
    # Sep 30 holds only 15:00Z; Oct 1 holds 16:00Z, 23:00Z, 00:00Z and a2's 15:00Z (23:00).
    oct_1 = 2 * GIB + 1_000 + 500_000_000 + GIB // 2
    assert series(response) == [
        ("2026-09-30", GIB, "1.000"),
        ("2026-10-01", oct_1, "2.966"),
        ("2026-10-02", 0, "0.000"),
    ]
    assert body["total_bytes"] == GIB + oct_1
    assert body["total_gb"] == "3.966"


def test_a_90_day_range_has_90_rows_zero_filled(shanghai):
    response = shanghai["alice_api"].get("/api/v1/usage/?from=2026-08-10&to=2026-11-07")
    rows = series(response)
    assert len(rows) == 90
    assert rows[0][0] == "2026-08-10" and rows[-1][0] == "2026-11-07"
    assert [row for row in rows if row[1]] == [
        ("2026-09-30", GIB, "1.000"),
        ("2026-10-01", 2 * GIB + 1_000 + 500_000_000 + GIB // 2, "2.966"),
        ("2026-11-01", 3 * GIB, "3.000"),  # 2026-10-31 16:00Z is Nov 1 in Shanghai
    ]


def test_months_are_shanghai_months_and_a_partial_range_sums_its_days(shanghai):
    response = shanghai["alice_api"].get(
        "/api/v1/usage/?from=2026-09-01&to=2026-12-31&granularity=month"
    )
    assert series(response) == [
        ("2026-09-01", GIB, "1.000"),
        ("2026-10-01", 2 * GIB + 1_000 + 500_000_000 + GIB // 2, "2.966"),
        ("2026-11-01", 3 * GIB, "3.000"),
        ("2026-12-01", 0, "0.000"),
    ]
    partial = shanghai["alice_api"].get(
        "/api/v1/usage/?from=2026-10-01&to=2026-10-01&granularity=month"
    )
    assert series(partial) == [("2026-10-01", 2 * GIB + 1_000 + 500_000_000 + GIB // 2, "2.966")]


def test_hours_are_utc_hours_dated_in_shanghai_and_sum_to_the_day(shanghai):
    response = shanghai["alice_api"].get(
        "/api/v1/usage/?from=2026-10-01&to=2026-10-01&granularity=hour"
    )
    rows = series(response)
    assert len(rows) == 24
    assert rows[0] == ("2026-10-01T00:00:00+08:00", 2 * GIB, "2.000")  # 2026-09-30 16:00Z
    assert rows[7] == ("2026-10-01T07:00:00+08:00", 1_000, "0.000")
    assert rows[8] == ("2026-10-01T08:00:00+08:00", 500_000_000, "0.466")  # UTC midnight
    assert rows[23] == ("2026-10-01T23:00:00+08:00", GIB // 2, "0.500")
    days = UsageDay.objects.filter(
        sub_account__customer=shanghai["alice"], day=dt.date(2026, 10, 1)
    ).values_list("bytes", flat=True)
    assert sum(row[1] for row in rows) == sum(days) == 2 * GIB + 1_000 + 500_000_000 + GIB // 2


def test_an_hourly_day_across_the_dst_change_has_25_hours(db):
    reseller = factories.ResellerFactory(timezone="Europe/Berlin")
    sub = factories.SubAccountFactory(customer__reseller=reseller)
    store_hours(sub, {utc(2026, 10, 25, 0): 10, utc(2026, 10, 25, 1): 20})  # 02:00 CEST, CET
    api = key_client(api_key_create(reseller=reseller, customer=sub.customer, name="k")[1])
    rows = series(api.get("/api/v1/usage/?from=2026-10-25&to=2026-10-25&granularity=hour"))
    assert len(rows) == 25
    assert rows[2:4] == [
        ("2026-10-25T02:00:00+02:00", 10, "0.000"),
        ("2026-10-25T02:00:00+01:00", 20, "0.000"),
    ]


def test_unit_gb_divides_by_a_billion(shanghai):
    response = shanghai["alice_api"].get("/api/v1/usage/?from=2026-11-01&to=2026-11-01&unit=gb")
    assert response.json()["unit_bytes"] == 1_000_000_000
    assert series(response) == [("2026-11-01", 3 * GIB, "3.221")]


def test_sub_account_filter_narrows_to_one_of_the_customers_own(shanghai):
    url = f"/api/v1/usage/?from=2026-10-01&to=2026-10-01&sub_account={shanghai['a2'].pk}"
    assert series(shanghai["alice_api"].get(url)) == [("2026-10-01", GIB // 2, "0.500")]


def test_another_customers_or_resellers_sub_account_answers_404_like_a_missing_one(shanghai):
    foreign = factories.SubAccountFactory()  # another reseller
    api = shanghai["alice_api"]
    base = "/api/v1/usage/?from=2026-10-01&to=2026-10-01&sub_account="
    missing = api.get(f"{base}{MISSING_ID}")
    assert missing.status_code == 404
    assert_matches_schema(missing)
    for sub in (shanghai["b1"], foreign):
        response = api.get(f"{base}{sub.pk}")
        assert response.status_code == 404
        assert (
            response.json()
            == missing.json()
            == {
                "code": "not_found",
                "message": "Not found.",
                "extra": {},
            }
        )


def test_the_day_series_is_one_query_on_usage_days(shanghai):
    with CaptureQueriesContext(connection) as queries:
        response = shanghai["alice_api"].get("/api/v1/usage/?from=2026-08-10&to=2026-11-07")
    assert response.status_code == 200
    usage = [q["sql"] for q in queries.captured_queries if "usage_usage" in q["sql"]]
    assert len(usage) == 1
    assert "GROUP BY" in usage[0]


# --- customer scope: errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("from=2026-10-01&to=2026-10-02&foo=1&page=2", {
            "foo": ["Unknown query parameter."], "page": ["Unknown query parameter."]}),
        ("from=2026-10-01&to=2026-10-02&customer=1", {"customer": ["Unknown query parameter."]}),
        ("from=2026-10-01&from=2026-10-02&to=2026-10-03", {"from": ["Give this parameter once."]}),
        ("to=2026-10-01", {"from": ["This field is required."]}),
        ("from=2026-10-01&to=01/10/2026", {
            "to": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]}),
        ("from=2026-02-30&to=2026-03-01", {
            "from": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]}),
        ("from=2026-10-02&to=2026-10-01", {"to": ["Must not be before `from`."]}),
        ("from=2026-01-01&to=2027-02-05", {"to": ["At most 400 days with granularity=day."]}),
        ("from=2026-10-01&to=2026-11-01&granularity=hour", {
            "to": ["At most 31 days with granularity=hour."]}),
        ("from=2016-01-01&to=2026-01-01&granularity=month", {
            "to": ["At most 120 months with granularity=month."]}),
        ("from=2026-10-01&to=2026-10-01&granularity=week", {
            "granularity": ['"week" is not a valid choice.']}),
        ("from=2026-10-01&to=2026-10-01&unit=mb", {"unit": ['"mb" is not a valid choice.']}),
        ("from=2026-10-01&to=2026-10-01&sub_account=x", {
            "sub_account": ["A valid integer is required."]}),
        ("from=2026-10-01&to=2026-10-01&sub_account=99999999999999999999", {
            "sub_account": ["Ensure this value is less than or equal to 9223372036854775807."]}),
        ("from=9999-12-31&to=9999-12-31", {"from": ["Must be between 1970-01-01 and 9998-12-31."],
                                           "to": ["Must be between 1970-01-01 and 9998-12-31."]}),
    ],
)  # fmt: skip
def test_bad_queries_answer_400_naming_each_parameter(shanghai, query, errors):
    assert fields_of(shanghai["alice_api"].get(f"/api/v1/usage/?{query}")) == errors


def test_the_longest_ranges_are_accepted(shanghai):
    api = shanghai["alice_api"]
    assert len(series(api.get("/api/v1/usage/?from=2026-01-01&to=2027-02-04"))) == 400
    hours = api.get("/api/v1/usage/?from=2026-10-01&to=2026-10-31&granularity=hour")
    assert len(series(hours)) == 31 * 24
    months = api.get("/api/v1/usage/?from=2016-01-15&to=2025-12-01&granularity=month")
    assert len(series(months)) == 120


def test_keys_of_the_wrong_kind_get_403(shanghai):
    query = "?from=2026-10-01&to=2026-10-01"
    customer_on_reseller = shanghai["alice_api"].get(f"{R}/usage/{query}")
    reseller_on_customer = shanghai["reseller_api"].get(f"/api/v1/usage/{query}")
    assert customer_on_reseller.status_code == reseller_on_customer.status_code == 403
    assert customer_on_reseller.json()["code"] == "reseller_key_required"
    assert reseller_on_customer.json()["code"] == "customer_key_required"
    for response in (customer_on_reseller, reseller_on_customer, key_client(None).get(query)):
        if response.status_code != 404:
            assert_matches_schema(response)


# --- reseller scope -------------------------------------------------------------------------


def test_reseller_usage_sums_all_customers_or_one(shanghai):
    api = shanghai["reseller_api"]
    query = "from=2026-10-01&to=2026-10-01"
    alice_oct_1 = 2 * GIB + 1_000 + 500_000_000 + GIB // 2
    assert series(api.get(f"{R}/usage/?{query}")) == [
        ("2026-10-01", alice_oct_1 + 7 * GIB, "9.966")
    ]
    assert series(api.get(f"{R}/usage/?{query}&customer={shanghai['bob'].pk}")) == [
        ("2026-10-01", 7 * GIB, "7.000")
    ]
    assert series(
        api.get(
            f"{R}/usage/?{query}&customer={shanghai['alice'].pk}&sub_account={shanghai['a1'].pk}"
        )
    ) == [("2026-10-01", alice_oct_1 - GIB // 2, "2.466")]
    assert series(api.get(f"{R}/usage/?{query}&sub_account={shanghai['b1'].pk}&granularity=month"))[
        0
    ] == ("2026-10-01", 7 * GIB, "7.000")


def test_reseller_usage_hides_other_resellers_usage_and_objects(shanghai):
    other = factories.SubAccountFactory()
    store_hours(other, {utc(2026, 10, 1, 2): 5 * GIB})
    api = shanghai["reseller_api"]
    query = "from=2026-10-01&to=2026-10-01"
    total = series(api.get(f"{R}/usage/?{query}"))[0][1]
    assert total == 2 * GIB + 1_000 + 500_000_000 + GIB // 2 + 7 * GIB
    missing = api.get(f"{R}/usage/?{query}&customer={MISSING_ID}")
    assert missing.status_code == 404
    for param in (f"customer={other.customer_id}", f"sub_account={other.pk}"):
        response = api.get(f"{R}/usage/?{query}&{param}")
        assert response.status_code == 404, param
        assert response.json() == missing.json()


def test_reseller_usage_refuses_a_sub_account_of_another_customer_than_named(shanghai):
    url = (
        f"{R}/usage/?from=2026-10-01&to=2026-10-01"
        f"&customer={shanghai['alice'].pk}&sub_account={shanghai['b1'].pk}"
    )
    assert fields_of(shanghai["reseller_api"].get(url)) == {
        "sub_account": ["Not a sub-account of `customer`."]
    }


def test_reseller_usage_rejects_unknown_parameters(shanghai):
    url = f"{R}/usage/?from=2026-10-01&to=2026-10-01&customer_id=1"
    assert fields_of(shanghai["reseller_api"].get(url)) == {
        "customer_id": ["Unknown query parameter."]
    }


# --- reseller scope: sync on request --------------------------------------------------------


@pytest.fixture
def queued(monkeypatch):
    """Record the tasks the sync endpoint queues instead of running them."""
    calls = []
    for task in (tasks.usage_sync_sub_account_task, tasks.usage_snapshot_bytesflows_task):
        monkeypatch.setattr(
            task,
            "apply_async",
            lambda args, kwargs, task_id, name=task.name: calls.append(
                (name, args, kwargs, task_id)
            ),
        )
    return calls


@pytest.fixture
def post_sync(django_capture_on_commit_callbacks):
    """POST to the sync endpoint and run what it queued on commit (the test's transaction
    never commits)."""

    def post(api, body):
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(f"{R}/sync/", body)

    return post


def test_sync_of_all_queues_one_task_and_one_queued_run_per_active_sub_account(
    shanghai, queued, post_sync
):
    reseller = shanghai["reseller"]
    bf = factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    bf_sub = factories.SubAccountFactory(customer=shanghai["bob"], upstream_account=bf)
    factories.SubAccountFactory(
        customer=shanghai["bob"], upstream_account=shanghai["upstream"], status="suspended"
    )
    idle = factories.UpstreamAccountFactory(reseller=reseller, is_active=False)
    factories.SubAccountFactory(customer=shanghai["bob"], upstream_account=idle)
    factories.SubAccountFactory()  # another reseller's

    response = post_sync(shanghai["reseller_api"], {})
    assert response.status_code == 202, response.content
    assert_matches_schema(response)
    body = response.json()
    assert body["upstream_accounts"] == [shanghai["upstream"].pk, bf.pk]
    assert body["queued"] == 4
    # Nothing ran (the tasks were only recorded), yet every task has its queued run.
    assert len(body["sync_runs"]) == 4
    assert body["sync_runs"] == [t["sync_run"] for t in body["tasks"]]
    assert [kwargs for _, _, kwargs, _ in queued] == [
        {"sync_run_id": run_id} for run_id in body["sync_runs"]
    ]
    expected = [
        ("usage", shanghai["upstream"].pk, shanghai[name].pk) for name in ("a1", "a2", "b1")
    ] + [("snapshot", bf.pk, bf_sub.pk)]
    assert [(t["kind"], t["upstream_account"], t["sub_account"]) for t in body["tasks"]] == (
        expected
    )
    assert [t["task_id"] for t in body["tasks"]] == [task_id for *_, task_id in queued]
    start = dt.datetime.fromisoformat(body["window_start"])
    end = dt.datetime.fromisoformat(body["window_end"])
    assert end - start == dt.timedelta(hours=73)
    assert (end.minute, end.second) == (0, 0)
    runs = SyncRun.objects.filter(pk__in=body["sync_runs"]).order_by("pk")
    assert [
        (r.status, r.kind, r.upstream_account_id, r.sub_account_id, r.window_start, r.window_end)
        for r in runs
    ] == [("queued", "usage", up, sub, start, end) for _, up, sub in expected[:3]] + [
        ("queued", "snapshot", bf.pk, bf_sub.pk, None, None)
    ]
    assert SyncRun.objects.count() == 4
    names = [name for name, *_ in queued]
    assert names == ["usage.tasks.usage_sync_sub_account_task"] * 3 + [
        "usage.tasks.usage_snapshot_bytesflows_task"
    ]
    assert queued[0][1] == [shanghai["a1"].pk, start.isoformat(), end.isoformat()]
    assert queued[3][1] == [bf_sub.pk]


def test_sync_of_one_upstream_account(shanghai, queued, post_sync):
    other = factories.UpstreamAccountFactory(reseller=shanghai["reseller"])
    factories.SubAccountFactory(customer=shanghai["bob"], upstream_account=other)
    response = post_sync(shanghai["reseller_api"], {"upstream_account": shanghai["upstream"].pk})
    assert response.status_code == 202
    assert response.json()["upstream_accounts"] == [shanghai["upstream"].pk]
    assert len(response.json()["sync_runs"]) == 3
    assert set(SyncRun.objects.values_list("upstream_account_id", flat=True)) == {
        shanghai["upstream"].pk
    }
    assert [args[0] for _, args, *_ in queued] == [
        shanghai["a1"].pk,
        shanghai["a2"].pk,
        shanghai["b1"].pk,
    ]


def test_sync_refuses_foreign_missing_inactive_and_unknown_input(shanghai, queued):
    foreign = factories.UpstreamAccountFactory()
    idle = factories.UpstreamAccountFactory(reseller=shanghai["reseller"], is_active=False)
    api = shanghai["reseller_api"]
    for bad in (foreign.pk, MISSING_ID):
        assert fields_of(api.post(f"{R}/sync/", {"upstream_account": bad})) == {
            "upstream_account": [f'Invalid pk "{bad}" - object does not exist.']
        }
    inactive = api.post(f"{R}/sync/", {"upstream_account": idle.pk})
    assert inactive.status_code == 409
    assert_matches_schema(inactive)
    assert inactive.json() == {
        "code": "upstream_account_inactive",
        "message": "This upstream account is inactive; activate it before syncing.",
        "extra": {},
    }
    assert fields_of(api.post(f"{R}/sync/", {"sub_account": 1})) == {
        "sub_account": ["Unknown field."]
    }
    assert queued == []
    assert not SyncRun.objects.exists()
    assert shanghai["alice_api"].post(f"{R}/sync/", {}).status_code == 403


@pytest.mark.slow
def test_sync_returns_queued_runs_that_its_tasks_fill_on_the_simulator(
    db, django_capture_on_commit_callbacks, monkeypatch
):
    """Three active sub-accounts (and a suspended one): three run ids, queued before the
    tasks run; the tasks (held on commit, then run in-process as without a broker) fill
    those same rows; a second delivery of a finished run's task changes nothing."""
    from usage.services import history
    from usage.simulator import SimulatorConfig, start_simulator

    reseller = factories.ResellerFactory(timezone="Asia/Shanghai")
    config = SimulatorConfig(seed=3, rate_limit_enabled=False)
    with start_simulator(port=0, config=config) as sim:
        upstream = factories.UpstreamAccountFactory(
            reseller=reseller,
            base_url=sim.url,
            credentials={"api_id": "demo-api-id", "api_token": "demo-api-token"},
        )
        customer = factories.CustomerFactory(reseller=reseller)
        subs = [
            factories.SubAccountFactory(
                customer=customer, upstream_account=upstream, upstream_id=name
            )
            for name in ("SIM00001", "SIM00002", "SIM00003")
        ]
        factories.SubAccountFactory(
            customer=customer, upstream_account=upstream, upstream_id="SIM00004", status="suspended"
        )
        api = key_client(api_key_create(reseller=reseller, name="r")[1])
        with django_capture_on_commit_callbacks() as callbacks:
            response = api.post(f"{R}/sync/", {"upstream_account": upstream.pk})
        assert response.status_code == 202, response.content
        assert_matches_schema(response)
        body = response.json()
        ids = body["sync_runs"]
        assert len(ids) == 3 and len(callbacks) == 1  # one callback sends the three tasks
        start = dt.datetime.fromisoformat(body["window_start"])
        end = dt.datetime.fromisoformat(body["window_end"])
        runs = SyncRun.objects.filter(pk__in=ids).order_by("pk")
        assert [
            (r.sub_account_id, r.status, r.kind, r.window_start, r.window_end, r.started_at)
            for r in runs
        ] == [(sub.pk, "queued", "usage", start, end, None) for sub in subs]
        assert not UsageHour.objects.exists()

        for callback in callbacks:
            callback()
    runs = SyncRun.objects.filter(pk__in=ids).order_by("pk")
    assert [(run.sub_account_id, run.status, run.error) for run in runs] == [
        (sub.pk, "succeeded", "") for sub in subs
    ]
    assert all(run.rows_written > 0 and run.requests >= 1 for run in runs)
    assert SyncRun.objects.count() == 3  # the same rows, filled: nothing extra
    assert UsageHour.objects.filter(sub_account__in=subs).count() >= 3 * 72

    # A duplicate delivery of a finished run's task: no sync (the simulator is gone, and no
    # connector may even be built), no new row, the run unchanged.
    def no_connector(**kwargs):
        raise AssertionError("a finished run was synced again")

    monkeypatch.setattr(history, "connector_for_upstream_account", no_connector)
    before = list(SyncRun.objects.order_by("pk").values())
    again = tasks.usage_sync_sub_account_task.apply(
        args=[subs[0].pk, body["window_start"], body["window_end"]],
        kwargs={"sync_run_id": ids[0]},
    )
    assert again.get() == ids[0]
    assert list(SyncRun.objects.order_by("pk").values()) == before


# --- isolation matrix -----------------------------------------------------------------------


@pytest.mark.slow
def test_every_key_sees_only_its_own_usage_and_foreign_ids_answer_like_missing_ones(world):
    """Two resellers x two customers (tests/api/conftest.py): each sub-account used a
    distinct amount on 2026-10-01; every key asks for every sub-account and customer."""
    from tests.api.test_isolation import assert_clean

    amounts = {}
    for t_index, tenant in enumerate(world.tenants):
        for s_index, sub in enumerate(tenant.sub_accounts):
            amounts[sub.pk] = (t_index * 10 + s_index + 1) * GIB
            store_hours(sub, {utc(2026, 10, 1, 6): amounts[sub.pk]})
    all_subs = [sub for tenant in world.tenants for sub in tenant.sub_accounts]
    query = "from=2026-10-01&to=2026-10-01"
    for label, raw_key, tenant, customer in world.api_keys():
        api = key_client(raw_key)
        path = "/api/v1/usage/" if customer else f"{R}/usage/"
        own = [s for s in tenant.sub_accounts if customer is None or s.customer_id == customer.pk]
        whole = api.get(f"{path}?{query}")
        assert series(whole) == [
            ("2026-10-01", sum(amounts[s.pk] for s in own), whole.json()["results"][0]["gb"])
        ], label
        missing = api.get(f"{path}?{query}&sub_account={MISSING_ID}")
        assert missing.status_code == 404
        for sub in all_subs:
            response = api.get(f"{path}?{query}&sub_account={sub.pk}")
            if sub in own:
                assert series(response)[0][1] == amounts[sub.pk], label
            else:
                assert response.status_code == 404, (label, sub.pk)
                assert response.content == missing.content
            assert_clean(response, tenant, world)
        if customer is None:
            for other in world.tenants:
                for c in other.customers:
                    response = api.get(f"{path}?{query}&customer={c.pk}")
                    if other is tenant:
                        expected = sum(amounts[s.pk] for s in own if s.customer_id == c.pk)
                        assert series(response)[0][1] == expected
                    else:
                        assert response.content == missing.content, label
                if other is not tenant:  # (own accounts would sync: not here)
                    sync = api.post(f"{R}/sync/", {"upstream_account": other.upstream.pk})
                    assert sync.status_code == 400, label
                    assert_clean(sync, tenant, world)


# --- formatting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nbytes", "unit", "expected"),
    [
        (0, GIB, "0.000"),
        (500_000, 1_000_000_000, "0.001"),  # exactly half a thousandth: rounds up
        (499_999, 1_000_000_000, "0.000"),
        (1_500_000_000, 1_000_000_000, "1.500"),
        (GIB * 1234 + GIB // 2, GIB, "1234.500"),
        (2**63 - 1, GIB, "8589934592.000"),
    ],
)
def test_gb_is_three_decimals_rounded_half_up(nbytes, unit, expected):
    assert usage_gb(nbytes, unit) == expected


@given(nbytes=st.integers(min_value=0, max_value=2**63 - 1), unit=st.sampled_from([GIB, 10**9]))
def test_gb_matches_decimal_half_up(nbytes, unit):
    with localcontext() as ctx:
        ctx.prec = 60  # exact: 19 integer digits and more decimals than the rounding needs
        exact = (Decimal(nbytes) / Decimal(unit)).quantize(Decimal("0.001"), ROUND_HALF_UP)
    assert usage_gb(nbytes, unit) == str(exact)
