import json
import time

import httpx
import pytest

from usage.simulator import FaultRule, FaultSettings, SimulatorConfig, start_simulator

from .conftest import ASSET, FLOW_LIST, IPFOXY_HEADERS, NOW, RECORDS, SUB_ACCOUNTS, flow_params


def flows(client, **params):
    return client.get(FLOW_LIST, params=flow_params(**params))


def test_latency_is_added_to_every_answer(sim, ipfoxy):
    sim.set_faults(latency_ms=150)

    started = time.perf_counter()
    assert flows(ipfoxy).json()["code"] == 0
    elapsed = time.perf_counter() - started

    assert elapsed >= 0.15


def test_slow_answer_stalls_the_next_request_only(sim, ipfoxy):
    sim.set_faults(slow=1, slow_seconds=0.5)

    with pytest.raises(httpx.ReadTimeout):
        ipfoxy.get(FLOW_LIST, params=flow_params(), timeout=0.2)
    # Later requests are answered without the stall: the fault was injected once only.
    assert flows(ipfoxy).json()["code"] == 0
    assert flows(ipfoxy).json()["code"] == 0
    assert sim.stats()["faults_injected"] == {"slow": 1}


def test_http_5xx_for_the_next_n_requests(sim, ipfoxy):
    sim.set_faults(http_5xx=2, http_5xx_status=502)

    statuses = [flows(ipfoxy).status_code for _ in range(3)]

    assert statuses == [502, 502, 200]


def test_http_429_carries_retry_after(sim, bf):
    sim.set_faults(http_429=1, retry_after=7)

    limited = bf.get(ASSET)

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert bf.get(ASSET).status_code == 200


def test_code_50000_fault_is_not_a_rate_limit_trip(sim, ipfoxy):
    sim.set_faults(code_50000=1)

    body = flows(ipfoxy).json()

    assert body == {"code": 50000, "msg": body["msg"], "data": None}
    stats = sim.stats()
    assert stats["faults_injected"] == {"code_50000": 1}
    assert stats["rate_limit_trips_total"] == 0


def test_code_60500_service_error(sim, ipfoxy):
    sim.set_faults(code_60500=1)

    assert ipfoxy.get(SUB_ACCOUNTS).json()["code"] == 60500


def test_malformed_json_is_cut_short(sim, bf):
    sim.set_faults(malformed_json=1)

    response = bf.get(RECORDS)

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_html_page_instead_of_json(sim, ipfoxy):
    sim.set_faults(html=1)

    response = flows(ipfoxy)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_disconnect_drops_the_connection_then_serves_again(sim, ipfoxy):
    sim.set_faults(disconnect=1)

    with pytest.raises(httpx.RemoteProtocolError):
        flows(ipfoxy)
    assert flows(ipfoxy).json()["code"] == 0


def test_count_mismatch_reports_more_than_the_rows(sim, ipfoxy, bf):
    sim.set_faults(count_mismatch=3)

    data = flows(ipfoxy, page_size=100).json()["data"]
    listed = ipfoxy.get(SUB_ACCOUNTS).json()["data"]
    records = bf.get(RECORDS).json()["data"]

    assert (data["count"], len(data["list"])) == ("75", 72)
    assert listed["total"] == "24"
    assert records["total"] == len(records["records"]) + 3


def test_duplicate_rows_repeat_the_first_row(sim, ipfoxy):
    sim.set_faults(duplicate_rows=1)

    rows = flows(ipfoxy).json()["data"]["list"]

    assert len(rows) == 21
    assert rows[0] == rows[1]


def test_count_changes_midway_through_paging(sim, ipfoxy):
    first = flows(ipfoxy, page_size=10).json()["data"]
    sim.set_faults(count_changes=1)
    second = flows(ipfoxy, page=2, page_size=10).json()["data"]
    third = flows(ipfoxy, page=2, page_size=10).json()["data"]

    assert first["count"] == "72"
    assert second["count"] == "73"
    # Everything shifted by one row: page 2 now starts with page 1's last row.
    assert second["list"][0] == first["list"][-1]
    assert third["count"] == "72"


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("negative_flow", lambda row: row["flow"].startswith("-")),
        ("non_numeric_flow", lambda row: row["flow"] == "N/A"),
        ("missing_flow", lambda row: "flow" not in row),
        ("foreign_rows", lambda row: row["account"] != "SIM00001"),
    ],
)
def test_hostile_row_faults_spoil_the_first_row(sim, ipfoxy, kind, check):
    sim.set_faults(**{kind: 1})

    spoiled = flows(ipfoxy).json()["data"]["list"]
    clean = flows(ipfoxy).json()["data"]["list"]

    assert check(spoiled[0])
    assert not check(clean[0])
    assert spoiled[1:] == clean[1:]


def test_counter_goes_backwards_on_the_next_read(sim, bf):
    def used():
        return {r["id"]: r["trafficUsed"] for r in bf.get(RECORDS).json()["data"]["records"]}

    before = used()
    sim.set_faults(counter_backwards=1)
    backwards = used()
    again = used()

    assert any(backwards[k] < before[k] for k in before)
    assert again == before


def test_a_next_budget_is_spent_only_where_the_fault_applies(sim, ipfoxy, bf):
    sim.set_faults(negative_flow=1)

    bf.get(ASSET)
    ipfoxy.get(SUB_ACCOUNTS)
    row = flows(ipfoxy).json()["data"]["list"][0]

    assert row["flow"].startswith("-")


def test_rules_narrow_to_a_target_and_an_account(sim, ipfoxy, bf):
    sim.set_faults(
        http_5xx=FaultRule(next=5, target="bytesflows"),
        html=FaultRule(next=5, account="SIM00002"),
    )

    assert flows(ipfoxy).status_code == 200
    assert flows(ipfoxy).json()["code"] == 0
    assert bf.get(ASSET).status_code == 503
    assert flows(ipfoxy, account="SIM00002").headers["content-type"].startswith("text/html")


def test_probability_mode_is_deterministic_per_seed():
    def outcomes(seed):
        faults = FaultSettings(rules={"http_5xx": FaultRule(probability=0.3)})
        config = SimulatorConfig(now=NOW, seed=seed, faults=faults, rate_limit_enabled=False)
        with start_simulator(config=config) as sim:
            client = httpx.Client(base_url=sim.url, headers=IPFOXY_HEADERS)
            return [client.get(SUB_ACCOUNTS).status_code for _ in range(40)]

    first, second = outcomes(5), outcomes(5)

    assert first == second
    assert 4 <= first.count(503) <= 20
    assert outcomes(6) != first


def test_faults_over_http_control_endpoints(sim, ipfoxy):
    set_response = httpx.post(
        sim.url + "/_sim/faults", json={"latency_ms": 5, "faults": {"http_5xx": {"next": 1}}}
    )
    state = httpx.get(sim.url + "/_sim/faults").json()
    failed = flows(ipfoxy)
    reset = httpx.post(sim.url + "/_sim/faults/reset").json()
    bad = httpx.post(sim.url + "/_sim/faults", json={"no_such_fault": 1})

    assert set_response.status_code == 200
    assert state["latency_ms"] == 5
    assert state["faults"]["http_5xx"]["next"] == 1
    assert failed.status_code == 503
    assert reset["faults"] == {}
    assert reset["latency_ms"] == 0
    assert bad.status_code == 400


def test_faults_from_start_config_and_stats_endpoint():
    faults = FaultSettings(rules={"code_50000": FaultRule(next=1)})
    with start_simulator(config=SimulatorConfig(now=NOW, faults=faults)) as other:
        client = httpx.Client(base_url=other.url, headers=IPFOXY_HEADERS)
        codes = [client.get(SUB_ACCOUNTS).json()["code"] for _ in range(2)]
        stats = httpx.get(other.url + "/_sim/stats").json()

    assert codes == [50000, 0]
    assert stats["faults_injected"] == {"code_50000": 1}
    assert stats["requests_by_endpoint"] == {"ipfoxy.sub_accounts": 2}
    assert stats["requests_by_credential"] == {"ipfoxy:demo-api-id": 2}
    assert stats["max_requests_per_60s"] == {"ipfoxy:demo-api-id": 2}


def test_clock_control_endpoint(sim):
    frozen = httpx.post(sim.url + "/_sim/clock", json={"now": "2026-11-01T00:00:00Z"}).json()
    advanced = httpx.post(sim.url + "/_sim/clock", json={"advance_seconds": 90}).json()

    assert frozen["mode"] == "fixed"
    assert advanced["now"] == "2026-11-01T00:01:30+00:00"
    assert sim.now().isoformat() == "2026-11-01T00:01:30+00:00"
