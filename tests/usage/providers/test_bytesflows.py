import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from usage.providers.base import (
    AuthError,
    BadResponseError,
    GrantRecord,
    TransientError,
    UnknownCodeError,
)
from usage.providers.bytesflows import ASSET_PATH, RECORDS_PATH, parse_records_page

from .conftest import BF_TOKEN, NOW

UTC = dt.UTC
ASSET = {
    "code": 200,
    "msg": "success",
    "data": {
        "totalTraffic": 188978561024,
        "dynamicTraffic": 188944515072,
        "balance": 12.30,
        "currency": "USD",
    },
}


def record(i, **overrides):
    row = {
        "id": str(100000 + i), "orderId": f"ORD-{i}", "sourceType": "order",
        "traffic": 1073741824, "trafficUsed": 524288 * i, "createTime": "2026-02-21 20:00:00",
        "expireTime": "2026-03-21 20:00:00", "status": 1,
    }  # fmt: skip
    return {**row, **overrides}


def records_body(rows, total=None, code=200):
    return {"code": code, "msg": "success", "data": {"records": rows, "total": total or len(rows)}}


def fetch(connector, token=BF_TOKEN):
    return connector.fetch_ledger(credentials={"token": token}, now=NOW)


def test_ledger_reads_asset_and_every_record_page(upstream, make_connector):
    rows = [record(i) for i in range(130)]
    upstream.add(ASSET_PATH, ASSET)
    upstream.add(RECORDS_PATH, records_body(rows[:100], 130), records_body(rows[100:], 130))
    snap = fetch(make_connector("bytesflows"))
    assert (snap.total_traffic, snap.available_traffic) == (188978561024, 188944515072)
    assert snap.balance == Decimal("12.30") and isinstance(snap.balance, Decimal)
    assert (snap.currency, snap.taken_at) == ("USD", NOW)
    assert (len(snap.records), snap.pages, snap.requests) == (130, 2, 3)
    assert snap.records[3] == GrantRecord(
        record_id="100003", order_id="ORD-3", source_type="order", traffic=1073741824,
        traffic_used=1572864, active=True,
        created_at=dt.datetime(2026, 2, 21, 20, tzinfo=UTC),
        expires_at=dt.datetime(2026, 3, 21, 20, tzinfo=UTC),
    )  # fmt: skip
    assert [dict(r.url.params) for r in upstream.requests[1:]] == [
        {"pageNo": "1", "pageSize": "100"},
        {"pageNo": "2", "pageSize": "100"},
    ]
    assert all(r.headers["Authorization"] == f"Bearer {BF_TOKEN}" for r in upstream.requests)


def test_record_times_follow_the_configured_timezone(upstream, make_connector):
    upstream.add(ASSET_PATH, ASSET).add(RECORDS_PATH, records_body([record(1)]))
    snap = fetch(make_connector("bytesflows", record_timezone="Asia/Shanghai"))
    assert snap.records[0].created_at == dt.datetime(2026, 2, 21, 12, tzinfo=UTC)


def test_total_change_midway_restarts_the_walk(upstream, make_connector):
    rows = [record(i) for i in range(151)]
    upstream.add(ASSET_PATH, ASSET)
    upstream.add(
        RECORDS_PATH,
        records_body(rows[:100], 150),
        records_body(rows[99:], 151),  # a new grant arrived: total changed, restart
        records_body(rows[:100], 151),
        records_body(rows[100:], 151),
    )
    snap = fetch(make_connector("bytesflows"))
    assert (len(snap.records), snap.pages, snap.requests) == (151, 4, 5)
    assert [r.url.params.get("pageNo") for r in upstream.requests[1:]] == ["1", "2", "1", "2"]


def test_more_records_than_total_is_a_bad_response(upstream, make_connector):
    upstream.add(ASSET_PATH, ASSET)
    upstream.add(RECORDS_PATH, records_body([record(1), record(2)], total=1))
    with pytest.raises(BadResponseError, match="total 1 disagrees with 2 records"):
        fetch(make_connector("bytesflows"))


def test_identical_duplicate_record_is_dropped(upstream, make_connector):
    upstream.add(ASSET_PATH, ASSET)
    upstream.add(RECORDS_PATH, records_body([record(1), record(2), record(1)]))
    assert len(fetch(make_connector("bytesflows")).records) == 2


def test_duplicate_record_left_out_of_the_total_is_dropped_too(upstream, make_connector):
    upstream.add(ASSET_PATH, ASSET)
    upstream.add(RECORDS_PATH, records_body([record(1), record(2), record(1)], total=2))
    assert len(fetch(make_connector("bytesflows")).records) == 2


def test_conflicting_duplicate_record_fails(upstream, make_connector):
    upstream.add(ASSET_PATH, ASSET)
    upstream.add(RECORDS_PATH, records_body([record(1), record(1, trafficUsed=5)]))
    with pytest.raises(BadResponseError, match="conflicting duplicate record 100001"):
        fetch(make_connector("bytesflows"))


def test_traffic_used_above_traffic_is_kept_as_sent(upstream, make_connector):
    upstream.add(ASSET_PATH, ASSET)
    upstream.add(RECORDS_PATH, records_body([record(1, traffic=10, trafficUsed=11)]))
    assert fetch(make_connector("bytesflows")).records[0].traffic_used == 11


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, json={"code": 401, "msg": "Unauthorized"}),
        httpx.Response(403, text="forbidden"),
        httpx.Response(200, json={"code": 401, "msg": "token expired"}),
        httpx.Response(200, json={"code": 403, "msg": "forbidden"}),
    ],
)
def test_expired_token_is_an_auth_error_and_never_retried(
    upstream, make_connector, sleeps, response
):
    upstream.add(ASSET_PATH, response)
    with pytest.raises(AuthError, match="BytesFlows token expired or invalid") as info:
        fetch(make_connector("bytesflows"))
    assert len(upstream.requests) == 1 and sleeps.calls == []
    assert BF_TOKEN not in str(info.value) + repr(info.value)


def test_missing_token_is_an_auth_error_without_a_request(upstream, make_connector):
    with pytest.raises(AuthError, match="token missing"):
        make_connector("bytesflows").fetch_ledger(credentials={}, now=NOW)
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("code", "error"), [(500, TransientError), (503, TransientError), (418, UnknownCodeError)]
)
def test_other_body_codes(upstream, make_connector, code, error):
    upstream.add(ASSET_PATH, {"code": code, "msg": "x"})
    with pytest.raises(error):
        fetch(make_connector("bytesflows"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("traffic", True, "not an integer"),
        ("traffic", 10.5, "not a whole number"),
        ("trafficUsed", -1, "negative"),
        ("traffic", "1 GB", "not an integer"),
        ("traffic", None, "missing"),
        ("id", None, "`id`"),
        ("createTime", "yesterday", "YYYY-MM-DD"),
    ],
)
def test_hostile_record_fields_are_bad_responses(field, value, message):
    data = {"records": [record(1, **{field: value})], "total": 1}
    data = json.loads(json.dumps(data), parse_float=Decimal)
    with pytest.raises(BadResponseError, match=message):
        parse_records_page(data, tz=UTC)


def test_integral_numbers_and_digit_strings_are_accepted():
    data = {
        "records": [record(1, traffic=Decimal("1024.0"), trafficUsed="512", id=7)],
        "total": "1",
    }
    _, (row,) = parse_records_page(data, tz=UTC)
    assert (row.record_id, row.traffic, row.traffic_used) == ("7", 1024, 512)


def test_html_instead_of_json_is_a_bad_response(upstream, make_connector):
    upstream.add(ASSET_PATH, httpx.Response(200, text="<!DOCTYPE html><html>login</html>"))
    with pytest.raises(BadResponseError, match="HTML"):
        fetch(make_connector("bytesflows"))


def test_balance_never_becomes_float(upstream, make_connector):
    body = (
        b'{"code":200,"data":{"totalTraffic":1,"dynamicTraffic":0,'
        b'"balance":0.1000000000000000055511,"currency":"USD"}}'
    )
    upstream.add(ASSET_PATH, httpx.Response(200, content=body))
    upstream.add(RECORDS_PATH, records_body([]))
    assert fetch(make_connector("bytesflows")).balance == Decimal("0.1000000000000000055511")
