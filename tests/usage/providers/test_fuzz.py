"""Whatever the body, a connector returns a valid result or raises an UpstreamError."""

import datetime as dt
import json
import random
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usage.providers import build_connector
from usage.providers.base import LedgerSnapshot, UpstreamError, UsageReport
from usage.providers.ratelimit import UnlimitedBudget
from usage.providers.transport import RetryPolicy

from .conftest import API_ID, API_TOKEN, BF_TOKEN, NOW

START = dt.datetime(2025, 6, 26, 5, tzinfo=dt.UTC)
END = START + dt.timedelta(hours=6)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.decimals(min_value=-(10**6), max_value=10**15, places=3)
    | st.text(max_size=30)
    | st.sampled_from(["1453.16", "-1", "0", "1e5", "+08:00", "2025-06-26 13:00:00", "SUB001"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


ANY = object()


def field(name, *likely):
    """Mostly a plausible value, sometimes any JSON at all."""
    if not likely:
        return json_values
    choices = [*likely, *likely, *likely, *likely, ANY]  # about one in five: any JSON at all
    return st.sampled_from(choices).flatmap(lambda v: json_values if v is ANY else st.just(v))


LABELS = [f"2025-06-26 {h}:00:00" for h in range(12, 20)]  # +08:00: 04:00-11:00 UTC


flow_rows = st.fixed_dictionaries(
    {
        "date": field("date", *LABELS, "2025-06-26 13:30:00"),
        "account": field("account", "SUB001", "SUB001", "SUB001", "SUB002"),
        "flow": field("flow", "1453.16", "0", "12", 7, Decimal("0.5"), "-3", "abc"),
    },
)
sub_rows = st.fixed_dictionaries(
    {
        "account": field("account", "SUB001", "SUB002", "MAIN"),
        "status": field("status", 1, 2, "1"),
        "use_flow": field("use_flow", "1024", "0.5", "-1"),
        "surplus_flow": field("surplus_flow", "2048.5", "0"),
        "is_main": field("is_main", 0, 1),
        "created_time": field("created_time", 1719370800, "2025-01-01 00:00:00", "0"),
        "ex_time": field("ex_time", 0, "2025-12-31 23:59:59", 10**13),
    },
)


@st.composite
def ipfoxy_data(draw):
    """A `data` object whose count usually matches its rows, so walks can succeed."""
    kind = draw(st.sampled_from(["flow", "flow", "flow", "sub", "any"]))
    rows = draw(
        {
            "flow": st.lists(flow_rows, max_size=5),
            "sub": st.lists(sub_rows, max_size=3),
            "any": json_values,
        }[kind]
    )
    size = str(len(rows)) if isinstance(rows, list) else "0"
    return {
        "list": rows,
        "count": draw(field("count", size, size, size, "1", "4", 3)),
        "total": draw(field("total", size, size, size, "2")),
        "timezone": draw(field("timezone", "+08:00", "+08:00", "+08:00", "-05:30", "+8")),
        "unit": draw(field("unit", "MB", "MB", "MB", "GB")),
    }


ipfoxy_bodies = st.fixed_dictionaries(
    {"code": field("code", 0, 0, 0, 0, 50000, 60401, "0"), "data": ipfoxy_data()}
)
records = st.fixed_dictionaries(
    {
        "id": field("id", "1", "2", 3),
        "orderId": field("orderId", "ORD-1"),
        "sourceType": field("sourceType", "order", "sign"),
        "traffic": field("traffic", 1073741824, 0, -1),
        "trafficUsed": field("trafficUsed", 524288, 0),
        "createTime": field("createTime", "2026-02-21 20:00:00"),
        "expireTime": field("expireTime", "2026-03-21 20:00:00", None),
        "status": field("status", 1, 0),
    },
)
bytesflows_bodies = st.fixed_dictionaries(
    {
        "code": field("code", 200, 200, 200, 200, 401, 500),
        "data": st.fixed_dictionaries(
            {
                "records": st.one_of(st.lists(records, max_size=4), json_values),
                "total": field("total", 0, 1, 2, "2"),
                "totalTraffic": field("totalTraffic", 188978561024),
                "dynamicTraffic": field("dynamicTraffic", 188944515072),
                "balance": field("balance", Decimal("0.00"), "12.5"),
                "currency": field("currency", "USD"),
            },
        ),
    },
)
raw_bodies = st.binary(max_size=60) | st.sampled_from([b"<html></html>", b"", b"null", b"[]"])


def bodies_of(structured):
    """Lists of page bodies, mostly well-formed JSON so the parsers get exercised deeply."""
    return st.lists(
        st.one_of(
            structured.map(encode),
            structured.map(encode),
            structured.map(encode),
            json_values.map(encode),
            raw_bodies,
        ),
        min_size=1,
        max_size=4,
    )


class DecimalEncoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, Decimal):
            return float(o)  # test input only: the body text the upstream would send
        return super().default(o)


def encode(body):
    return body if isinstance(body, bytes) else json.dumps(body, cls=DecimalEncoder).encode()


def connector(provider, bodies):
    def handler(request):
        return httpx.Response(200, content=bodies[min(handler.calls, len(bodies) - 1)])

    handler.calls = 0

    def counting(request):
        response = handler(request)
        handler.calls += 1
        return response

    return build_connector(
        provider=provider,
        base_url="https://upstream.test",
        credentials={"api_id": API_ID, "api_token": API_TOKEN},
        client=httpx.Client(transport=httpx.MockTransport(counting)),
        budget=UnlimitedBudget(),
        budget_key="fuzz",
        retry=RetryPolicy(max_attempts=2),
        sleep=lambda s: None,
        wall_clock=lambda: NOW,
        rng=random.Random(1),
    )


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(bodies_of(ipfoxy_bodies))
def test_ipfoxy_usage_parser_returns_a_report_or_an_upstream_error(bodies):
    try:
        report = connector("ipfoxy", bodies).fetch_hourly_usage(
            upstream_id="SUB001", start=START, end=END, now=NOW
        )
    except UpstreamError:
        return
    assert isinstance(report, UsageReport)
    for hour in report.hours:
        assert START <= hour.hour_start < END and hour.hour_start.utcoffset() == dt.timedelta(0)
        assert isinstance(hour.bytes, int) and hour.bytes >= 0
    assert len({h.hour_start for h in report.hours}) == len(report.hours)


@FUZZ
@given(bodies_of(ipfoxy_bodies))
@pytest.mark.slow
def test_ipfoxy_sub_account_parser_returns_rows_or_an_upstream_error(bodies):
    try:
        rows = connector("ipfoxy", bodies).list_sub_accounts()
    except UpstreamError:
        return
    assert all(r.used_bytes >= 0 and r.remaining_bytes >= 0 for r in rows)


@FUZZ
@given(bodies_of(bytesflows_bodies))
@pytest.mark.slow
def test_bytesflows_ledger_parser_returns_a_snapshot_or_an_upstream_error(bodies):
    try:
        snap = connector("bytesflows", bodies).fetch_ledger(
            credentials={"token": BF_TOKEN}, now=NOW
        )
    except UpstreamError:
        return
    assert isinstance(snap, LedgerSnapshot) and isinstance(snap.balance, Decimal)
    assert all(r.traffic >= 0 and r.traffic_used >= 0 for r in snap.records)
    assert len({r.record_id for r in snap.records}) == len(snap.records)
