import datetime as dt
import itertools
import re

import httpx

from usage.simulator import SimulatorConfig, start_simulator

from .conftest import ASSET, NOW, RECORDS

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def all_records(client, **params):
    return client.get(RECORDS, params={"pageSize": 100, **params}).json()["data"]["records"]


def test_asset_has_the_published_shape(bf):
    response = bf.get(ASSET)

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["code", "msg", "data"]
    assert body["code"] == 200
    assert body["msg"] == "success"
    data = body["data"]
    assert list(data) == ["totalTraffic", "dynamicTraffic", "balance", "currency"]
    assert isinstance(data["totalTraffic"], int)
    assert isinstance(data["dynamicTraffic"], int)
    assert data["currency"] == "USD"
    # The balance is a JSON number printed with two decimals.
    assert re.search(r'"balance":\d+\.\d\d,', response.text)


def test_records_have_the_published_shape(bf):
    body = bf.get(RECORDS).json()

    assert body["code"] == 200
    records = body["data"]["records"]
    assert body["data"]["total"] == len(records)
    assert 1 <= len(records) <= 3
    for record in records:
        assert list(record) == [
            "id", "orderId", "sourceType", "traffic", "trafficUsed",
            "createTime", "expireTime", "status",
        ]  # fmt: skip
        assert record["sourceType"] in {"order", "sign"}
        assert isinstance(record["traffic"], int)
        assert 0 <= record["trafficUsed"] <= record["traffic"]
        assert TIME_RE.match(record["createTime"])
        assert TIME_RE.match(record["expireTime"])
        assert record["status"] in {0, 1}
    times = [r["createTime"] for r in records]
    assert times == sorted(times, reverse=True)


def test_asset_is_consistent_with_the_active_records(sim):
    for name in ("alice", "bob", "carol", "dave", "erin", "frank"):
        client = httpx.Client(base_url=sim.url, headers={"Authorization": f"Bearer bf-{name}"})
        asset = client.get(ASSET).json()["data"]
        active = [r for r in all_records(client) if r["status"] == 1]

        assert asset["totalTraffic"] == sum(r["traffic"] for r in active)
        assert asset["dynamicTraffic"] == asset["totalTraffic"] - sum(
            r["trafficUsed"] for r in active
        )


def test_counters_grow_monotonically_with_the_clock(sim, bf):
    snapshots = []
    for _ in range(6):
        snapshots.append({r["id"]: r["trafficUsed"] for r in all_records(bf)})
        sim.advance(6 * 3600)

    for earlier, later in itertools.pairwise(snapshots):
        for record_id, used in earlier.items():
            assert later[record_id] >= used
    assert sum(snapshots[-1].values()) > sum(snapshots[0].values())


def test_usage_is_capped_at_the_grant_and_frozen_after_expiry(sim, bf):
    sim.set_clock(now=NOW + dt.timedelta(days=800))

    records = all_records(bf)
    sim.advance(86400)

    assert records == all_records(bf)
    assert {r["status"] for r in records} == {0}
    assert all(r["trafficUsed"] <= r["traffic"] for r in records)
    assert bf.get(ASSET).json()["data"]["totalTraffic"] == 0


def test_paging_and_source_type_filter(bf):
    everything = all_records(bf)
    pages = [
        bf.get(RECORDS, params={"pageNo": n, "pageSize": 1}).json()["data"] for n in (1, 2, 3, 4)
    ]
    orders = bf.get(RECORDS, params={"sourceType": "order"}).json()["data"]

    assert [r for p in pages for r in p["records"]] == everything
    assert {p["total"] for p in pages} == {len(everything)}
    assert orders["records"] == [r for r in everything if r["sourceType"] == "order"]
    assert orders["total"] == len(orders["records"])
    assert bf.get(RECORDS, params={"pageNo": 0}).json()["code"] == 400


def test_unknown_or_missing_token_is_http_401_token_expired(sim):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic bf-alice"}):
        response = httpx.get(sim.url + ASSET, headers=headers)

        assert response.status_code == 401
        assert response.json() == {"code": 401, "msg": "token expired", "data": None}


def test_expired_token_gets_401_until_restored(sim, bf):
    assert bf.get(ASSET).status_code == 200

    sim.expire_token("bf-alice")
    expired = [bf.get(ASSET), bf.get(RECORDS)]
    sim.restore_token("bf-alice")

    assert [r.status_code for r in expired] == [401, 401]
    assert bf.get(ASSET).status_code == 200
    assert httpx.get(sim.url + ASSET, headers={"Authorization": "Bearer bf-bob"}).status_code == 200


def test_token_expiry_over_http_control_endpoint(sim, bf):
    httpx.post(sim.url + "/_sim/tokens/expire", json={"token": "bf-alice"})

    assert bf.get(RECORDS).status_code == 401


def test_configured_token_maps_to_an_account_and_prefix_can_be_disabled():
    config = SimulatorConfig(
        now=NOW, bytesflows_tokens={"tok-123": "alice"}, bytesflows_token_prefix=None
    )
    with start_simulator(config=config) as sim:
        mapped = httpx.get(sim.url + RECORDS, headers={"Authorization": "Bearer tok-123"})
        prefixed = httpx.get(sim.url + RECORDS, headers={"Authorization": "Bearer bf-alice"})
        sim.add_token(token="tok-456", account="alice")
        added = httpx.get(sim.url + RECORDS, headers={"Authorization": "Bearer tok-456"})
    with start_simulator(config=SimulatorConfig(now=NOW)) as default:
        reference = httpx.get(default.url + RECORDS, headers={"Authorization": "Bearer bf-alice"})

    assert mapped.json() == reference.json() == added.json()
    assert prefixed.status_code == 401


def test_cookie_token_is_accepted(sim):
    response = httpx.get(sim.url + ASSET, headers={"Cookie": "lang=en; token=bf-alice"})

    assert response.status_code == 200
