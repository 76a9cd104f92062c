import datetime as dt
import re
from decimal import Decimal

import httpx
import pytest

from usage.simulator import SimulatorConfig, start_simulator
from usage.simulator.traffic import hour_flow

from .conftest import FLOW_LIST, IPFOXY_HEADERS, NOW, SUB_ACCOUNTS, epoch, flow_params

PLUS8 = dt.timezone(dt.timedelta(hours=8))
FLOW_RE = re.compile(r"^\d+(\.\d{1,2})?$")


def test_flow_list_has_the_published_shape(ipfoxy):
    body = ipfoxy.get(FLOW_LIST, params=flow_params(page_size=100)).json()

    assert list(body) == ["data", "code", "msg"]
    assert body["code"] == 0
    assert body["msg"] == "Success"
    data = body["data"]
    assert list(data) == ["list", "unit", "count", "timezone"]
    assert data["unit"] == "MB"
    assert data["timezone"] == "+08:00"
    assert data["count"] == "72"
    assert len(data["list"]) == 72
    for row in data["list"]:
        assert list(row) == ["date", "account", "flow"]
        assert row["account"] == "SIM00001"
        assert FLOW_RE.match(row["flow"]), row["flow"]
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:00:00$", row["date"])


def test_flow_list_is_newest_first_with_plus8_labels_of_utc_hours(ipfoxy):
    rows = ipfoxy.get(FLOW_LIST, params=flow_params(page_size=100)).json()["data"]["list"]

    # NOW is 12:30 UTC = 20:30 +08:00: the newest bucket is the current (partial) hour.
    assert rows[0]["date"] == "2026-11-20 20:00:00"
    assert rows[1]["date"] == "2026-11-20 19:00:00"
    # 72 h before 12:30 UTC is 12:30 UTC three days earlier; the first whole hour is 13:00.
    assert rows[-1]["date"] == "2026-11-17 21:00:00"
    labels = [
        dt.datetime.strptime(r["date"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=PLUS8) for r in rows
    ]
    assert labels == sorted(labels, reverse=True)
    # A closed hour reports the model's value for that UTC hour.
    hour = dt.datetime(2026, 11, 20, 11, tzinfo=dt.UTC)
    assert rows[1]["flow"] == hour_flow(7, "SIM00001", hour)


def test_hour_at_end_time_is_included(ipfoxy):
    end = dt.datetime(2026, 11, 19, 10, tzinfo=dt.UTC)
    params = flow_params(start_time=epoch(end - dt.timedelta(hours=2)), end_time=epoch(end))

    rows = ipfoxy.get(FLOW_LIST, params=params).json()["data"]["list"]

    assert [r["date"] for r in rows] == [
        "2026-11-19 18:00:00",
        "2026-11-19 17:00:00",
        "2026-11-19 16:00:00",
    ]


def test_pages_cover_every_row_exactly_once(ipfoxy):
    full = ipfoxy.get(FLOW_LIST, params=flow_params(page_size=100)).json()["data"]["list"]
    pages = []
    for page in range(1, 9):
        data = ipfoxy.get(FLOW_LIST, params=flow_params(page=page, page_size=10)).json()["data"]
        assert data["count"] == "72"
        pages.append(data["list"])

    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 10, 10, 2]
    assert [row for page in pages for row in page] == full


def test_default_page_size_is_20(ipfoxy):
    data = ipfoxy.get(FLOW_LIST, params=flow_params()).json()["data"]

    assert len(data["list"]) == 20
    assert data["count"] == "72"


@pytest.mark.parametrize("page_size", [9, 101, 0, "x"])
def test_page_size_outside_10_to_100_is_60400(ipfoxy, page_size):
    body = ipfoxy.get(FLOW_LIST, params=flow_params(page_size=page_size)).json()

    assert body["code"] == 60400
    assert body["data"] is None


@pytest.mark.parametrize("missing", ["account", "start_time", "end_time", "unit"])
def test_missing_parameter_is_60400(ipfoxy, missing):
    params = flow_params()
    del params[missing]

    body = ipfoxy.get(FLOW_LIST, params=params).json()

    assert body == {"code": 60400, "msg": body["msg"], "data": None}


def test_start_older_than_90_days_is_60400_and_exactly_90_days_is_fine(ipfoxy):
    ninety = NOW - dt.timedelta(days=90)
    too_old = ipfoxy.get(
        FLOW_LIST, params=flow_params(start_time=epoch(ninety) - 1, end_time=epoch(ninety) + 7200)
    ).json()
    fine = ipfoxy.get(
        FLOW_LIST, params=flow_params(start_time=epoch(ninety), end_time=epoch(ninety) + 7200)
    ).json()

    assert too_old["code"] == 60400
    assert fine["code"] == 0
    assert fine["data"]["count"] == "2"


def test_daily_unit_sums_the_local_days_hours(ipfoxy):
    end = dt.datetime(2026, 11, 19, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 +08:00
    start = dt.datetime(2026, 11, 18, 16, tzinfo=dt.UTC)  # 2026-11-19 00:00 +08:00
    daily = ipfoxy.get(
        FLOW_LIST, params=flow_params(start_time=epoch(start), end_time=epoch(end), unit=2)
    ).json()["data"]
    hourly = ipfoxy.get(
        FLOW_LIST,
        params=flow_params(start_time=epoch(start), end_time=epoch(end), page_size=100),
    ).json()["data"]

    assert daily["count"] == "1"
    assert daily["list"][0]["date"] == "2026-11-19 00:00:00"
    assert hourly["count"] == "24"
    assert Decimal(daily["list"][0]["flow"]) == sum(Decimal(r["flow"]) for r in hourly["list"])


def test_some_hours_are_zero_and_some_carry_two_decimals(ipfoxy):
    flows = []
    for page in (1, 2, 3):
        data = ipfoxy.get(
            FLOW_LIST, params=flow_params(hours=24 * 12, page=page, page_size=100)
        ).json()["data"]
        flows += [r["flow"] for r in data["list"]]

    assert "0" in flows
    assert any(re.match(r"^\d+\.\d\d$", f) for f in flows)


def test_bad_credentials_are_60401_with_http_200(sim):
    for headers in (
        {},
        {"api-id": "demo-api-id", "api-token": "wrong"},
        {"api-id": "someone-else", "api-token": "demo-api-token"},
    ):
        response = httpx.get(sim.url + FLOW_LIST, params=flow_params(), headers=headers)
        assert response.status_code == 200
        assert response.json() == {"code": 60401, "msg": "Authentication failed", "data": None}


def test_rate_limit_trips_at_the_61st_request_in_a_minute(sim, ipfoxy):
    codes = [ipfoxy.get(SUB_ACCOUNTS, params={"page_size": 10}).json()["code"] for _ in range(60)]
    tripped = ipfoxy.get(FLOW_LIST, params=flow_params()).json()
    sim.advance(59)
    still = ipfoxy.get(FLOW_LIST, params=flow_params()).json()
    sim.advance(1)
    after = ipfoxy.get(FLOW_LIST, params=flow_params()).json()

    assert codes == [0] * 60
    assert tripped["code"] == 50000
    assert tripped["data"] is None
    assert still["code"] == 50000
    assert after["code"] == 0
    stats = sim.stats()
    assert stats["rate_limit_trips"] == {"demo-api-id": 2}
    assert stats["max_requests_per_60s"]["ipfoxy:demo-api-id"] == 62


def test_rate_limit_can_be_switched_off(sim, ipfoxy):
    sim.set_rate_limit(enabled=False)

    codes = {ipfoxy.get(SUB_ACCOUNTS).json()["code"] for _ in range(70)}

    assert codes == {0}
    assert sim.stats()["rate_limit_trips_total"] == 0


def test_rate_limit_is_per_api_id():
    config = SimulatorConfig(now=NOW, ipfoxy_keys={"a": "ta", "b": "tb"}, rate_limit_per_minute=3)
    with start_simulator(config=config) as sim:
        a = [
            httpx.get(sim.url + SUB_ACCOUNTS, headers={"api-id": "a", "api-token": "ta"})
            for _ in range(4)
        ]
        b = httpx.get(sim.url + SUB_ACCOUNTS, headers={"api-id": "b", "api-token": "tb"})

    assert [r.json()["code"] for r in a] == [0, 0, 0, 50000]
    assert b.json()["code"] == 0


def test_sub_account_list_shape_and_paging(ipfoxy):
    first = ipfoxy.get(SUB_ACCOUNTS, params={"page": 1, "page_size": 10}).json()
    rest = [
        ipfoxy.get(SUB_ACCOUNTS, params={"page": p, "page_size": 10}).json()["data"]["list"]
        for p in (2, 3)
    ]

    assert first["code"] == 0
    assert first["data"]["total"] == "21"
    rows = first["data"]["list"] + rest[0] + rest[1]
    assert [r["account"] for r in rows] == ["SIMMAIN"] + [f"SIM{i:05d}" for i in range(1, 21)]
    main = rows[0]
    assert list(main) == [  # the published row (is_main 1 main, 2 sub)
        "account",
        "password",
        "status",
        "use_flow",
        "surplus_flow",
        "ip_whitelist",
        "is_main",
        "created_time",
        "ex_time",
        "unit",
    ]
    assert main["is_main"] == 1
    assert {r["is_main"] for r in rows[1:]} == {2}
    assert {r["status"] for r in rows} == {1, 2}
    for row in rows:
        assert isinstance(row["use_flow"], str)
        assert Decimal(row["use_flow"]) > 0
        assert Decimal(row["surplus_flow"]) >= 0
        created = dt.datetime.strptime(row["created_time"] + " +0800", "%Y-%m-%d %H:%M:%S %z")
        assert created < NOW
    assert ipfoxy.get(SUB_ACCOUNTS, params={"page_size": 101}).json()["code"] == 60400


def test_use_flow_grows_by_exactly_the_hours_reported_in_between(sim, ipfoxy):
    def use_flow_kb():
        rows = ipfoxy.get(SUB_ACCOUNTS, params={"page_size": 10}).json()["data"]["list"]
        return Decimal(next(r for r in rows if r["account"] == "SIM00003")["use_flow"])

    hour_start = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    before = use_flow_kb()
    partial_then = sim.expected_hourly_flows(
        account="SIM00003", start=hour_start, end=hour_start + dt.timedelta(hours=1)
    )[hour_start]
    # Five hours on: past local midnight, so a whole +08:00 day closes in between.
    sim.set_clock(now=NOW + dt.timedelta(hours=5))
    after = use_flow_kb()
    since = sim.expected_hourly_flows(
        account="SIM00003", start=hour_start, end=NOW + dt.timedelta(hours=5)
    )

    assert len(since) == 6
    grown_mb = sum(Decimal(v) for v in since.values()) - Decimal(partial_then)
    assert after - before == grown_mb * 1024
    assert after > before


def test_same_seed_gives_identical_bodies_and_another_seed_does_not():
    def bodies(seed):
        with start_simulator(seed=seed, config=SimulatorConfig(now=NOW)) as sim:
            client = httpx.Client(base_url=sim.url, headers=IPFOXY_HEADERS)
            return [
                client.get(FLOW_LIST, params=flow_params("ACME-1", page_size=100)).content,
                client.get(FLOW_LIST, params=flow_params("ACME-1", unit=2)).content,
                client.get(SUB_ACCOUNTS, params={"page_size": 100}).content,
                client.get(
                    "/api/v1/user/traffic/records", headers={"Authorization": "Bearer bf-x"}
                ).content,
            ]

    assert bodies(3) == bodies(3)
    assert bodies(3)[0] != bodies(4)[0]


def test_hour_value_does_not_depend_on_window_or_paging(ipfoxy):
    wide = ipfoxy.get(FLOW_LIST, params=flow_params(hours=90, page=1, page_size=100)).json()
    narrow = ipfoxy.get(
        FLOW_LIST,
        params=flow_params(
            start_time=epoch(dt.datetime(2026, 11, 19, 3, tzinfo=dt.UTC)),
            end_time=epoch(dt.datetime(2026, 11, 19, 3, tzinfo=dt.UTC)),
        ),
    ).json()

    by_date = {r["date"]: r["flow"] for r in wide["data"]["list"]}
    assert narrow["data"]["list"][0]["flow"] == by_date["2026-11-19 11:00:00"]


def test_revision_changes_one_past_bucket(sim, ipfoxy):
    hour = dt.datetime(2026, 11, 19, 3, tzinfo=dt.UTC)
    before = ipfoxy.get(FLOW_LIST, params=flow_params(page_size=100)).json()["data"]["list"]

    sim.revise(account="SIM00001", hour=hour, flow="1453.16")
    after = ipfoxy.get(FLOW_LIST, params=flow_params(page_size=100)).json()["data"]["list"]

    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert changed == [
        (
            {"date": "2026-11-19 11:00:00", "account": "SIM00001", "flow": before_flow},
            {"date": "2026-11-19 11:00:00", "account": "SIM00001", "flow": "1453.16"},
        )
        for before_flow in [hour_flow(7, "SIM00001", hour)]
    ]
    # Another account is unaffected.
    other = ipfoxy.get(FLOW_LIST, params=flow_params("SIM00002", page_size=100)).json()
    assert "1453.16" not in [r["flow"] for r in other["data"]["list"]]


def test_revision_over_http_control_endpoint(sim, ipfoxy):
    response = httpx.post(
        sim.url + "/_sim/revisions",
        json={"account": "SIM00001", "hour": "2026-11-19T03:00:00Z", "flow": "7"},
    )
    rows = ipfoxy.get(FLOW_LIST, params=flow_params(page_size=100)).json()["data"]["list"]

    assert response.json()["revisions"] == [
        {"account": "SIM00001", "hour": "2026-11-19T03:00:00Z", "flow": "7"}
    ]
    assert {r["date"]: r["flow"] for r in rows}["2026-11-19 11:00:00"] == "7"
    bad = httpx.post(
        sim.url + "/_sim/revisions",
        json={"account": "SIM00001", "hour": "2026-11-19T03:30:00Z", "flow": "7"},
    )
    assert bad.status_code == 400


def test_current_hour_grows_until_it_closes(sim, ipfoxy):
    def newest():
        return ipfoxy.get(FLOW_LIST, params=flow_params()).json()["data"]["list"][0]

    at_half = newest()
    sim.set_clock(now=NOW + dt.timedelta(minutes=30))
    later = flow_params(end=NOW + dt.timedelta(minutes=30))
    closed_hour = ipfoxy.get(FLOW_LIST, params=later).json()["data"]["list"][1]

    full = hour_flow(7, "SIM00001", dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC))
    assert at_half["date"] == closed_hour["date"] == "2026-11-20 20:00:00"
    assert Decimal(at_half["flow"]) <= Decimal(full)
    assert closed_hour["flow"] == full


def test_any_account_name_has_traffic_and_configured_list_is_used():
    config = SimulatorConfig(now=NOW, ipfoxy_sub_accounts=("ALPHA", "BETA"))
    with start_simulator(config=config) as sim:
        client = httpx.Client(base_url=sim.url, headers=IPFOXY_HEADERS)
        listed = client.get(SUB_ACCOUNTS).json()["data"]
        flows = client.get(FLOW_LIST, params=flow_params("never-configured")).json()["data"]

    assert [r["account"] for r in listed["list"]] == ["SIMMAIN", "ALPHA", "BETA"]
    assert listed["total"] == "3"
    assert flows["count"] == "72"


def test_ten_thousand_configured_sub_accounts_page_quickly():
    config = SimulatorConfig(now=NOW, ipfoxy_sub_account_count=10_000, rate_limit_enabled=False)
    with start_simulator(config=config) as sim:
        client = httpx.Client(base_url=sim.url, headers=IPFOXY_HEADERS)
        last = client.get(SUB_ACCOUNTS, params={"page": 101, "page_size": 100}).json()["data"]

    assert last["total"] == "10001"
    assert [r["account"] for r in last["list"]] == ["SIM10000"]
