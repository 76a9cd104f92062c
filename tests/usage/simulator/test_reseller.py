"""The IPFoxy reseller endpoints of the simulator: rules, pool, idempotency, consumption that
obeys the allocation, the one-minute flow cache, the shared rate limit and the write faults."""

import datetime as dt
from decimal import Decimal

import httpx
import pytest

from usage.simulator import SimulatorConfig, start_simulator

from .conftest import FLOW_LIST, IPFOXY_HEADERS, NOW, SUB_ACCOUNTS, flow_params

API = "/ip/open-api/"
CREATE = API + "create-sub-account"
ALLOCATE = API + "allocate-flow-sub-account"
FLOW = API + "get-sub-account-flow"
UPDATE_PASS = API + "update-pass"
WHITELIST = API + "update-ip-whitelist"
RESIDENTIAL = API + "residential-data"
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def form(**fields):
    """Fields as multipart form-data, as IPFoxy documents ("form-data format")."""
    return {name: (None, str(value)) for name, value in fields.items()}


def create(client, account="FBalpha00001", *, password="Secret12345", flow=1024, key=None, day=0):
    key = key or f"create-{account}"
    fields = form(account=account, password=password, flow=flow, idempotency_key=key, day=day)
    return client.post(CREATE, files=fields).json()


def allocate(client, account="FBalpha00001", *, flow=1024, key="alloc-000000001", day=0):
    fields = form(account=account, flow=flow, idempotency_key=key, day=day)
    return client.post(ALLOCATE, files=fields).json()


def listed(client, account):
    return client.get(SUB_ACCOUNTS, params={"account": account}).json()["data"]["list"][0]


def mb(text):
    return Decimal(text)


@pytest.fixture
def sim():
    config = SimulatorConfig(now=NOW, ipfoxy_pool_mb=10_000, rate_limit_enabled=False)
    with start_simulator(port=0, seed=7, config=config) as running:
        yield running


def test_create_answers_account_and_password_and_draws_the_pool(sim, ipfoxy):
    body = create(ipfoxy, flow=1024)

    assert body == {
        "data": {"account": "FBalpha00001", "password": "Secret12345"},
        "code": 0,
        "msg": "Success",
    }
    assert sim.pool() == {"total_mb": "10000", "allocated_mb": "1024", "remaining_mb": "8976"}
    row = listed(ipfoxy, "FBalpha00001")
    assert row["surplus_flow"] == "1048576"  # 1024 MB = 1,048,576 KB (binary)
    assert row["use_flow"] == "0"
    assert (row["status"], row["is_main"], row["password"]) == (1, 2, "Secret12345")
    assert row["ex_time"] == "2038-01-19 11:14:07"  # 2147483647: never expires (day 0)


def test_urlencoded_forms_are_accepted_too(ipfoxy):
    fields = {"account": "FBalpha00001", "password": "Secret12345", "flow": "5"}
    body = ipfoxy.post(CREATE, data={**fields, "idempotency_key": "urlenc-0001", "day": "0"})

    assert body.json()["code"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account", "short"),
        ("account", "has space 123"),
        ("account", "A" * 16),
        ("password", "tooshort"),
        ("flow", "1.5"),
        ("flow", "-1"),
        ("idempotency_key", "k" * 9),
        ("idempotency_key", "k" * 26),
        ("day", "7"),
        ("day", ""),
    ],
)
def test_create_refuses_parameters_outside_the_published_rules(sim, ipfoxy, field, value):
    fields = {
        "account": "FBalpha00001",
        "password": "Secret12345",
        "flow": "10",
        "idempotency_key": "create-rules-1",
        "day": "30",
        field: value,
    }

    body = ipfoxy.post(CREATE, files=form(**fields)).json()

    assert body["code"] == 60400 and body["data"] is None
    assert field in body["msg"]
    assert sim.pool()["allocated_mb"] == "0"


def test_allocate_refuses_zero_unknown_accounts_and_the_main_account(sim, ipfoxy):
    create(ipfoxy, flow=0)

    assert allocate(ipfoxy, flow=0)["code"] == 60400
    assert allocate(ipfoxy, account="FBnobody0001", key="alloc-nobody-1")["code"] == 60400
    assert allocate(ipfoxy, account="SIMMAIN", key="alloc-main-01")["code"] == 60400
    assert create(ipfoxy, "SIM00001", key="create-legacy1")["code"] == 60400  # exists
    assert sim.pool()["allocated_mb"] == "0"


def test_same_key_replays_the_first_success_and_allocates_once(sim, ipfoxy):
    create(ipfoxy, flow=100, key="create-key-001")
    again = create(ipfoxy, flow=100, key="create-key-001")
    first = allocate(ipfoxy, flow=300, key="alloc-key-0001")
    replay = allocate(ipfoxy, flow=300, key="alloc-key-0001")

    assert again["code"] == 0 and again["data"]["password"] == "Secret12345"
    assert first == replay == {"data": {}, "code": 0, "msg": "Success"}
    assert sim.pool()["allocated_mb"] == "400"
    assert sim.sub_account("FBalpha00001")["allocated_mb"] == "400"


def test_same_key_with_other_parameters_is_a_parameter_error(sim, ipfoxy):
    create(ipfoxy, flow=100)
    allocate(ipfoxy, flow=300, key="alloc-key-0001")

    other_amount = allocate(ipfoxy, flow=301, key="alloc-key-0001")
    other_expiry = allocate(ipfoxy, flow=300, key="alloc-key-0001", day=30)
    other_operation = create(ipfoxy, "FBbeta000001", flow=300, key="alloc-key-0001")

    assert [b["code"] for b in (other_amount, other_expiry, other_operation)] == [60400] * 3
    assert "idempotency_key" in other_amount["msg"]
    assert sim.pool()["allocated_mb"] == "400"


def test_pool_exhausted_answers_60300_and_a_refusal_records_nothing(sim, ipfoxy):
    create(ipfoxy, flow=9000)

    refused = allocate(ipfoxy, flow=1001, key="alloc-big-0001")
    exact = allocate(ipfoxy, flow=1000, key="alloc-fits-001")
    sim.set_pool(add_mb=1)
    after_top_up = allocate(ipfoxy, flow=1, key="alloc-big-0001")  # same key, now fits

    assert refused["code"] == 60300 and refused["data"] is None
    assert exact["code"] == 0
    assert after_top_up["code"] == 0
    assert sim.pool() == {"total_mb": "10001", "allocated_mb": "10001", "remaining_mb": "0"}
    assert create(ipfoxy, "FBbeta000001", flow=1, key="create-beta-01")["code"] == 60300


def test_main_account_row_and_residential_data_show_the_pool(sim, ipfoxy):
    create(ipfoxy, flow=2500)

    main = ipfoxy.get(SUB_ACCOUNTS, params={"page_size": 10}).json()["data"]["list"][0]
    pool = ipfoxy.get(RESIDENTIAL).json()["data"]
    sub = ipfoxy.get(RESIDENTIAL, params={"account": "FBalpha00001"}).json()["data"]

    assert main["account"] == "SIMMAIN" and main["surplus_flow"] == str(7500 * 1024)
    assert (pool["total_mb"], pool["remain_mb"]) == ("10000", "7500")
    assert (sub["total_mb"], sub["remain_mb"]) == ("2500", "2500")


def test_consumption_obeys_the_allocation_and_every_counter_agrees(sim, ipfoxy):
    create(ipfoxy, flow=50)
    allocate(ipfoxy, flow=30, key="alloc-second-1", day=30)
    sim.advance(2 * 3600)
    middle = sim.sub_account("FBalpha00001")
    sim.advance(6 * 86400)  # far longer than 80 MB lasts at this account's pace

    state = sim.sub_account("FBalpha00001")
    end = NOW.replace(minute=0) + 6 * DAY  # the window starts at the hour it was created in
    window = {"hours": 24 * 6, "end": end, "page_size": 100}
    first = ipfoxy.get(FLOW_LIST, params=flow_params("FBalpha00001", **window)).json()["data"]
    pages = [first["list"]] + [
        ipfoxy.get(FLOW_LIST, params=flow_params("FBalpha00001", **window, page=page)).json()[
            "data"
        ]["list"]
        for page in range(2, -(-int(first["count"]) // 100) + 1)
    ]
    flow_list_mb = sum(mb(row["flow"]) for rows in pages for row in rows)
    daily = ipfoxy.get(FLOW_LIST, params=flow_params("FBalpha00001", **window, unit=2)).json()[
        "data"
    ]["list"]
    row = listed(ipfoxy, "FBalpha00001")

    assert Decimal(0) < mb(middle["used_mb"]) < 80  # it was consuming, not yet dry
    assert state["used_mb"] == "80" and state["surplus_mb"] == "0"  # ran dry, no further
    assert flow_list_mb == 80 == sum(mb(r["flow"]) for r in daily)
    assert mb(row["use_flow"]) == flow_list_mb * 1024  # KB, exact
    assert row["surplus_flow"] == "0"
    assert mb(state["allocated_mb"]) == mb(state["used_mb"]) + mb(state["surplus_mb"])
    assert sim.pool()["remaining_mb"] == str(10_000 - 80)
    dry_at = max(sim.hourly_usage("FBalpha00001"))
    assert sum(len(rows) for rows in pages) == 24 * 6 + 1  # end_time is inclusive
    assert dry_at < end - 24 * HOUR  # the last day used nothing


def test_an_allocation_wakes_a_dry_sub_account_and_only_the_new_traffic_is_used(sim, ipfoxy):
    create(ipfoxy, flow=10)
    sim.advance(5 * 86400)
    assert sim.sub_account("FBalpha00001")["surplus_mb"] == "0"

    allocate(ipfoxy, flow=20, key="alloc-topup-01")
    sim.advance(5 * 86400)

    state = sim.sub_account("FBalpha00001")
    assert (state["allocated_mb"], state["used_mb"], state["surplus_mb"]) == ("30", "30", "0")


def test_expired_traffic_is_forfeited_and_the_never_expiring_lot_is_kept(sim, ipfoxy):
    create(ipfoxy, flow=0)
    sim.set_sub_account_status("FBalpha00001", 2)  # disabled: nothing is used meanwhile
    allocate(ipfoxy, flow=100, key="alloc-expiring", day=30)
    allocate(ipfoxy, flow=40, key="alloc-forever1", day=0)
    row = listed(ipfoxy, "FBalpha00001")
    sim.advance(30 * 86400 + 1)

    state = sim.sub_account("FBalpha00001")
    assert row["ex_time"] == "2038-01-19 11:14:07"  # some traffic never expires
    assert state["used_mb"] == "0"
    assert (state["expired_mb"], state["surplus_mb"], state["allocated_mb"]) == ("100", "40", "140")


def test_a_disabled_sub_account_uses_no_traffic(sim, ipfoxy):
    create(ipfoxy, flow=500)
    sim.advance(3600)
    used = sim.sub_account("FBalpha00001")["used_mb"]
    sim.set_sub_account_status("FBalpha00001", 2)
    sim.advance(3 * 86400)

    assert sim.sub_account("FBalpha00001")["used_mb"] == used
    assert listed(ipfoxy, "FBalpha00001")["status"] == 2


def test_update_pass_keeps_traffic_flowing_with_the_new_password_by_default(sim, ipfoxy):
    create(ipfoxy, flow=5000)
    answer = ipfoxy.post(UPDATE_PASS, files=form(account="FBalpha00001", password="NewSecret999"))
    sim.advance(3 * 3600)

    assert answer.json() == {"data": {}, "code": 0, "msg": "Success"}
    assert listed(ipfoxy, "FBalpha00001")["password"] == "NewSecret999"
    assert mb(sim.sub_account("FBalpha00001")["used_mb"]) > 0


def test_with_password_gating_a_rotation_stops_traffic_until_the_client_uses_it():
    config = SimulatorConfig(now=NOW, ipfoxy_password_gates_traffic=True, rate_limit_enabled=False)
    with start_simulator(config=config) as sim:
        client = httpx.Client(base_url=sim.url, headers=IPFOXY_HEADERS)
        create(client, flow=5000)
        sim.advance(3600)
        before = sim.sub_account("FBalpha00001")["used_mb"]
        client.post(UPDATE_PASS, files=form(account="FBalpha00001", password="NewSecret999"))
        sim.advance(6 * 3600)
        cut_off = sim.sub_account("FBalpha00001")["used_mb"]
        client.post(WHITELIST, files=form(account="FBalpha00001", ip="203.0.113.7"))
        sim.advance(6 * 3600)
        whitelisted = sim.sub_account("FBalpha00001")["used_mb"]
        client.post(WHITELIST, files=form(account="FBalpha00001", ip=""))
        sim.advance(6 * 3600)
        cleared = sim.sub_account("FBalpha00001")["used_mb"]
        sim.client_login("FBalpha00001", "NewSecret999")
        sim.advance(6 * 3600)
        resumed = sim.sub_account("FBalpha00001")["used_mb"]

    assert mb(before) > 0
    assert cut_off == before  # the old password no longer works
    assert mb(whitelisted) > mb(cut_off)  # a whitelisted IP needs no password
    assert cleared == whitelisted
    assert mb(resumed) > mb(cleared)


def test_ip_whitelist_is_listed_normalised_and_validated(sim, ipfoxy):
    create(ipfoxy, flow=1)

    ok = ipfoxy.post(WHITELIST, files=form(account="FBalpha00001", ip=" 203.0.113.7,2001:db8::1,"))
    bad = ipfoxy.post(WHITELIST, files=form(account="FBalpha00001", ip="203.0.113.7,evil.example"))

    assert ok.json()["code"] == 0
    assert listed(ipfoxy, "FBalpha00001")["ip_whitelist"] == "203.0.113.7,2001:db8::1"
    assert bad.json()["code"] == 60400


def test_sub_account_flow_is_cached_for_a_minute(sim, ipfoxy):
    create(ipfoxy, flow=0)
    first = ipfoxy.get(FLOW, params={"account": "FBalpha00001"}).json()["data"]
    allocate(ipfoxy, flow=10, key="alloc-cached-1")
    sim.advance(59)
    cached = ipfoxy.get(FLOW, params={"account": "FBalpha00001"}).json()["data"]
    sim.advance(1)
    fresh = ipfoxy.get(FLOW, params={"account": "FBalpha00001"}).json()["data"]

    assert (
        first
        == cached
        == {
            "surplus_flow": "0",
            "use_flow": "0",
            "mob_surplus_flow": "0",
            "mob_use_flow": "0",
            "unit": "KB",
        }
    )
    used_kb = mb(fresh["use_flow"])
    assert mb(fresh["surplus_flow"]) + used_kb == 10 * 1024
    assert ipfoxy.get(FLOW, params={"account": "FBnobody0001"}).json()["code"] == 60400


def test_another_api_id_cannot_see_or_touch_the_sub_account():
    keys = {"demo-api-id": "demo-api-token", "other-id": "other-token"}
    config = SimulatorConfig(now=NOW, ipfoxy_keys=keys, rate_limit_enabled=False)
    with start_simulator(config=config) as sim:
        mine = httpx.Client(base_url=sim.url, headers=IPFOXY_HEADERS)
        theirs = httpx.Client(
            base_url=sim.url, headers={"api-id": "other-id", "api-token": "other-token"}
        )
        create(mine, flow=10)
        codes = [
            allocate(theirs, flow=1)["code"],
            theirs.get(FLOW, params={"account": "FBalpha00001"}).json()["code"],
            theirs.get(SUB_ACCOUNTS, params={"account": "FBalpha00001"}).json()["data"]["total"],
        ]
        pools = (sim.pool()["allocated_mb"], sim.pool("other-id")["allocated_mb"])

    assert codes == [60400, 60400, "0"]
    assert pools == ("10", "0")


def test_the_list_pages_configured_then_provisioned_sub_accounts(sim, ipfoxy):
    for i in range(12):
        create(ipfoxy, f"FBpaged{i:05d}", flow=1)

    page_3 = ipfoxy.get(SUB_ACCOUNTS, params={"page": 3, "page_size": 10}).json()["data"]
    page_4 = ipfoxy.get(SUB_ACCOUNTS, params={"page": 4, "page_size": 10}).json()["data"]

    assert page_3["total"] == "33"  # SIMMAIN + 20 configured + 12 provisioned
    provisioned = [f"FBpaged{i:05d}" for i in range(12)]
    assert [r["account"] for r in page_3["list"]] == ["SIM00020", *provisioned[:9]]
    assert [r["account"] for r in page_4["list"]] == provisioned[9:]


def test_an_allocation_to_a_configured_sub_account_adds_to_its_surplus(sim, ipfoxy):
    before = mb(listed(ipfoxy, "SIM00002")["surplus_flow"])

    assert allocate(ipfoxy, account="SIM00002", flow=100, key="alloc-legacy-1")["code"] == 0
    assert mb(listed(ipfoxy, "SIM00002")["surplus_flow"]) == before + 100 * 1024
    assert sim.pool()["allocated_mb"] == "100"


def test_writes_are_post_only_and_reads_get_only(sim, ipfoxy):
    assert ipfoxy.get(CREATE).status_code == 405
    assert ipfoxy.post(FLOW).status_code == 405


def test_bad_credentials_are_60401_and_change_nothing(sim):
    headers = {"api-id": "demo-api-id", "api-token": "wrong"}
    with httpx.Client(base_url=sim.url, headers=headers) as client:
        body = create(client, flow=10)

    assert body == {"code": 60401, "msg": "Authentication failed", "data": None}
    assert sim.pool()["allocated_mb"] == "0"


def test_writes_share_the_rate_limit_with_every_endpoint(sim, ipfoxy):
    sim.set_rate_limit(enabled=True, per_minute=5)
    create(ipfoxy, flow=1)
    for _ in range(3):
        ipfoxy.get(FLOW_LIST, params=flow_params())
    allocate(ipfoxy, flow=1, key="alloc-fifth-01")

    limited = allocate(ipfoxy, flow=1, key="alloc-sixth-01")

    assert limited == {"code": 50000, "msg": limited["msg"], "data": None}
    assert sim.pool()["allocated_mb"] == "2"
    sim.advance(60)
    assert allocate(ipfoxy, flow=1, key="alloc-sixth-01")["code"] == 0


def test_timeout_after_apply_applies_the_write_and_never_answers(sim, ipfoxy):
    create(ipfoxy, flow=0)
    sim.set_faults(timeout_after_apply=1, slow_seconds=0.5)

    with pytest.raises(httpx.ReadTimeout):
        ipfoxy.post(
            ALLOCATE,
            files=form(account="FBalpha00001", flow=64, idempotency_key="alloc-lost-01", day=0),
            timeout=0.2,
        )
    retried = allocate(ipfoxy, flow=64, key="alloc-lost-01")

    assert retried["code"] == 0
    assert sim.pool()["allocated_mb"] == "64"  # applied once, replayed once
    assert sim.stats()["faults_injected"] == {"timeout_after_apply": 1}


def test_timeout_after_apply_also_drops_a_patient_clients_connection(sim, ipfoxy):
    create(ipfoxy, flow=0)
    sim.set_faults(timeout_after_apply="next:1,target:ipfoxy.allocate_flow", slow_seconds=0.1)

    with pytest.raises(httpx.RemoteProtocolError):
        allocate(ipfoxy, flow=64, key="alloc-lost-02")

    assert sim.pool()["allocated_mb"] == "64"


@pytest.mark.parametrize("kind", ["code_50000", "code_60500", "http_5xx", "disconnect"])
def test_faults_before_the_write_leave_it_unapplied(sim, ipfoxy, kind):
    create(ipfoxy, flow=0)
    sim.set_faults(**{kind: "next:1,target:ipfoxy_writes"})
    fields = form(account="FBalpha00001", flow=64, idempotency_key="alloc-fault-01", day=0)

    try:
        answer = ipfoxy.post(ALLOCATE, files=fields)
    except httpx.RemoteProtocolError:
        answer = None

    assert (answer is None) == (kind == "disconnect")
    assert sim.stats()["faults_injected"] == {kind: 1}
    assert sim.pool()["allocated_mb"] == "0"
    assert allocate(ipfoxy, flow=64, key="alloc-fault-01")["code"] == 0
    assert sim.pool()["allocated_mb"] == "64"


def test_a_provisioned_sub_account_cannot_be_revised(sim, ipfoxy):
    create(ipfoxy, flow=10)

    with pytest.raises(ValueError, match="provisioned"):
        sim.revise(account="FBalpha00001", hour=NOW.replace(minute=0) - HOUR, flow="5")


def test_control_endpoints_show_and_change_the_book(sim, ipfoxy):
    create(ipfoxy, flow=10)

    topped = httpx.post(sim.url + "/_sim/reseller/pool", json={"add_mb": 5}).json()
    disabled = httpx.post(
        sim.url + "/_sim/reseller/status", json={"account": "FBalpha00001", "status": 2}
    )
    book = httpx.get(sim.url + "/_sim/reseller").json()
    unknown = httpx.post(sim.url + "/_sim/reseller/status", json={"account": "X", "status": 2})

    assert topped == {"total_mb": "10005", "allocated_mb": "10", "remaining_mb": "9995"}
    assert disabled.json() == {"ok": True}
    assert book["pools"]["demo-api-id"]["remaining_mb"] == "9995"
    account = book["sub_accounts"]["FBalpha00001"]
    assert (account["status"], account["allocated_mb"], account["owner"]) == (
        2,
        "10",
        "demo-api-id",
    )
    assert unknown.status_code == 400
