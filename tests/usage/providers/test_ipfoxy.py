import datetime as dt
from decimal import Decimal

import httpx
import pytest

from usage.providers import ipfoxy_parse, parsing
from usage.providers.base import (
    AuthError,
    BadResponseError,
    HourlyUsage,
    InsufficientBalanceError,
    ParameterError,
    RateLimitedError,
    TransientError,
    UnknownCodeError,
)
from usage.providers.ipfoxy import FLOW_PATH, SUB_ACCOUNTS_PATH, parse_flow_page

from .conftest import API_ID, API_TOKEN, NOW, flow_body, flow_row

UTC = dt.UTC
START = dt.datetime(2025, 6, 26, 5, tzinfo=UTC)
END = dt.datetime(2025, 6, 26, 8, tzinfo=UTC)
THREE_HOURS = [
    flow_row("2025-06-26 15:00:00", "0"),
    flow_row("2025-06-26 14:00:00", "22"),
    flow_row("2025-06-26 13:00:00", "1453.16"),
]


def fetch(connector, start=START, end=END, now=NOW, account="SUB001"):
    return connector.fetch_hourly_usage(upstream_id=account, start=start, end=end, now=now)


def test_labels_in_plus_eight_become_utc_hours_and_mb_become_exact_bytes(upstream, make_connector):
    upstream.add(FLOW_PATH, flow_body(THREE_HOURS))
    report = fetch(make_connector())
    assert [h.hour_start for h in report.hours] == [
        dt.datetime(2025, 6, 26, 5, tzinfo=UTC),
        dt.datetime(2025, 6, 26, 6, tzinfo=UTC),
        dt.datetime(2025, 6, 26, 7, tzinfo=UTC),
    ]
    # 1453.16 * 1048576 = 1523748700.16 exactly (the figure 1523748045 in the brief is off).
    assert [h.bytes for h in report.hours] == [1523748700, 22 * 1048576, 0]
    assert (report.hours[0].raw_value, report.hours[0].raw_unit) == ("1453.16", "MB")
    assert (report.pages, report.requests, report.notes) == (1, 1, ())


def test_request_sends_auth_headers_hourly_unit_and_inclusive_end(upstream, make_connector):
    upstream.add(FLOW_PATH, flow_body(THREE_HOURS))
    fetch(make_connector())
    request = upstream.requests[0]
    assert request.headers["api-id"] == API_ID
    assert request.headers["api-token"] == API_TOKEN
    assert upstream.params() == {
        "account": "SUB001",
        "start_time": str(int(START.timestamp())),
        "end_time": str(int(END.timestamp()) - 1),
        "unit": "1",
        "page_size": "100",
        "page": "1",
    }


def test_decimal_mb_rounds_half_up_to_whole_bytes_with_configured_mb(upstream, make_connector):
    upstream.add(FLOW_PATH, flow_body([flow_row("2025-06-26 13:00:00", "0.0000005")]))
    report = fetch(make_connector(mb_bytes=1_000_000))
    assert report.hours[0].bytes == 1  # 0.5 byte rounds half up


def test_negative_offset_labels_convert_too():
    page = parse_flow_page(
        {"list": [flow_row("2025-06-26 01:00:00", "1")], "count": "1", "timezone": "-05:00"},
        account="SUB001",
        mb_bytes=1048576,
    )
    assert page.rows[0].hour_start == dt.datetime(2025, 6, 26, 6, tzinfo=UTC)


def _hours(n, newest=dt.datetime(2025, 6, 27, 11)):
    return [
        flow_row((newest - dt.timedelta(hours=i)).strftime("%Y-%m-%d %H:%M:%S"), str(i))
        for i in range(n)
    ]


def test_walks_pages_until_rows_reach_count(upstream, make_connector):
    rows = _hours(150)
    upstream.add(FLOW_PATH, flow_body(rows[:100], count=150), flow_body(rows[100:], count=150))
    start = dt.datetime(2025, 6, 20, tzinfo=UTC)
    report = fetch(make_connector(), start=start, end=dt.datetime(2025, 6, 27, 4, tzinfo=UTC))
    assert (report.pages, report.requests, len(report.hours)) == (2, 2, 150)
    assert [r.url.params["page"] for r in upstream.requests] == ["1", "2"]
    assert sum(h.bytes for h in report.hours) == sum(range(150)) * 1048576


def test_count_change_midway_restarts_the_walk(upstream, make_connector):
    rows = _hours(151)
    upstream.add(
        FLOW_PATH,
        flow_body(rows[1:101], count=150),
        flow_body(rows[100:], count=151),  # a new hour landed on top: pages shifted
        flow_body(rows[:100], count=151),
        flow_body(rows[100:], count=151),
    )
    start = dt.datetime(2025, 6, 20, tzinfo=UTC)
    report = fetch(make_connector(), start=start, end=dt.datetime(2025, 6, 27, 12, tzinfo=UTC))
    assert (report.pages, report.requests, len(report.hours)) == (4, 4, 151)
    assert [r.url.params["page"] for r in upstream.requests] == ["1", "2", "1", "2"]


def test_count_that_keeps_changing_fails_after_bounded_restarts(upstream, make_connector):
    pages = [flow_body(_hours(100), count=150 + i) for i in range(10)]
    upstream.add(FLOW_PATH, *pages)
    with pytest.raises(BadResponseError, match="count kept changing"):
        fetch(
            make_connector(),
            start=dt.datetime(2025, 6, 20, tzinfo=UTC),
            end=END + dt.timedelta(days=2),
        )


def test_count_larger_than_rows_fails(upstream, make_connector):
    upstream.add(FLOW_PATH, flow_body(THREE_HOURS, count=4), flow_body([], count=4))
    with pytest.raises(BadResponseError, match="page empty after 3 of 4"):
        fetch(make_connector())


def test_count_smaller_than_rows_fails(upstream, make_connector):
    upstream.add(FLOW_PATH, flow_body(THREE_HOURS, count=2))
    with pytest.raises(BadResponseError, match="count 2 disagrees with 3 rows"):
        fetch(make_connector())


def test_identical_duplicate_bucket_is_dropped(upstream, make_connector):
    rows = [*THREE_HOURS, flow_row("2025-06-26 14:00:00", "22")]
    upstream.add(FLOW_PATH, flow_body(rows))
    assert len(fetch(make_connector()).hours) == 3


def test_duplicate_row_left_out_of_the_count_is_dropped_too(upstream, make_connector):
    rows = [*THREE_HOURS, flow_row("2025-06-26 14:00:00", "22")]
    upstream.add(FLOW_PATH, flow_body(rows, count=3))
    assert len(fetch(make_connector()).hours) == 3


def test_html_page_is_retried_and_then_fails_as_a_bad_response(upstream, make_connector, sleeps):
    html = httpx.Response(200, content=b"<html><body>502 Bad Gateway</body></html>")
    upstream.add(FLOW_PATH, html, flow_body(THREE_HOURS))
    assert len(fetch(make_connector()).hours) == 3
    assert len(sleeps.calls) == 1
    upstream.queues.clear()
    upstream.add(FLOW_PATH, html)
    with pytest.raises(BadResponseError, match="HTML instead of JSON"):
        fetch(make_connector())
    assert len(upstream.requests) == 2 + 3  # then 3 attempts (the policy's max)


def test_conflicting_duplicate_bucket_fails(upstream, make_connector):
    rows = [*THREE_HOURS, flow_row("2025-06-26 14:00:00", "23")]
    upstream.add(FLOW_PATH, flow_body(rows))
    with pytest.raises(BadResponseError, match="conflicting duplicate bucket"):
        fetch(make_connector())


def test_buckets_outside_the_window_are_ignored(upstream, make_connector):
    rows = [
        flow_row("2025-06-26 16:00:00", "5"),
        *THREE_HOURS,
        flow_row("2025-06-26 12:00:00", "7"),
    ]
    upstream.add(FLOW_PATH, flow_body(rows))
    report = fetch(make_connector())
    assert [h.hour_start.hour for h in report.hours] == [5, 6, 7]


def test_start_older_than_90_days_is_clamped_with_a_note(upstream, make_connector):
    upstream.add(FLOW_PATH, flow_body([]))
    start = NOW - dt.timedelta(days=120)
    report = fetch(make_connector(), start=start, end=NOW - dt.timedelta(days=80))
    earliest = dt.datetime(2025, 3, 29, 13, tzinfo=UTC)  # 90 days before 12:30, next hour
    assert report.window_start == earliest
    assert "clamped to the 90-day lookback" in report.notes[0]
    assert int(upstream.params(0)["start_time"]) == int(earliest.timestamp())


def test_window_entirely_older_than_90_days_returns_empty_report(upstream, make_connector):
    end = NOW - dt.timedelta(days=95)
    report = fetch(make_connector(), start=end - dt.timedelta(days=3), end=end)
    assert report.hours == () and report.requests == 0
    assert report.window_start == report.window_end == end
    assert "older than the 90-day lookback" in report.notes[0]
    assert upstream.requests == []


def test_long_windows_are_split_into_chunks(upstream, make_connector):
    upstream.add(FLOW_PATH, flow_body([]))
    start = dt.datetime(2025, 5, 1, tzinfo=UTC)
    fetch(
        make_connector(max_window_hours=744), start=start, end=dt.datetime(2025, 6, 15, tzinfo=UTC)
    )
    starts = [int(r.url.params["start_time"]) for r in upstream.requests]
    ends = [int(r.url.params["end_time"]) for r in upstream.requests]
    assert starts == [int(start.timestamp()), int(start.timestamp()) + 744 * 3600]
    assert ends[0] == starts[1] - 1


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (60400, ParameterError),
        (60401, AuthError),
        (60300, InsufficientBalanceError),
        (60500, TransientError),
        (50000, RateLimitedError),
        (12345, UnknownCodeError),
    ],
)
def test_business_codes_map_to_typed_errors(upstream, make_connector, code, error):
    upstream.add(FLOW_PATH, {"code": code, "msg": "nope", "data": None})
    with pytest.raises(error) as info:
        fetch(make_connector())
    assert type(info.value) is error
    assert info.value.context["upstream_code"] == code
    assert info.value.context["account"] == "SUB001"


@pytest.mark.parametrize(("code", "attempts"), [(60400, 1), (60401, 1), (60300, 1), (60500, 3)])
def test_only_transient_codes_are_retried(upstream, make_connector, sleeps, code, attempts):
    upstream.add(FLOW_PATH, {"code": code, "msg": "x"})
    with pytest.raises(Exception):  # noqa: B017, PT011 - the type is checked above
        fetch(make_connector())
    assert len(upstream.requests) == attempts
    assert len(sleeps.calls) == attempts - 1


def test_code_50000_without_retry_after_waits_for_the_next_minute(upstream, make_connector, sleeps):
    upstream.add(FLOW_PATH, {"code": 50000, "msg": "too fast"}, flow_body(THREE_HOURS))
    report = fetch(make_connector(wall_clock=lambda: NOW.replace(second=45, microsecond=500000)))
    assert sleeps.calls == [14.5]
    assert report.requests == 2 and report.pages == 1


def test_code_50000_honours_retry_after(upstream, make_connector, sleeps):
    limited = httpx.Response(200, json={"code": 50000, "msg": "x"}, headers={"Retry-After": "7"})
    upstream.add(FLOW_PATH, limited, flow_body(THREE_HOURS))
    fetch(make_connector())
    assert sleeps.calls == [7.0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "HTML instead of JSON"),
        (b"{not json", "non-JSON"),
        (b'{"code": 0}', "`data` is missing"),
        (b'{"code": 0, "data": {"count": "1"}}', "`list` is missing"),
        (b'{"code": 0, "data": {"list": [], "count": "x"}}', "`count`"),
        (b'{"msg": "ok"}', "no integer `code`"),
    ],
)
def test_malformed_bodies_are_bad_responses(upstream, make_connector, body, message):
    upstream.add(FLOW_PATH, httpx.Response(200, content=body))
    with pytest.raises(BadResponseError, match=message):
        fetch(make_connector())


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (flow_row("2025-06-26 13:00:00", "12", account="OTHER"), "another account"),
        (flow_row("2025-06-26 13:00:00", "-5"), "negative"),
        (flow_row("2025-06-26 13:00:00", "12MB"), "not a decimal"),
        (flow_row("2025-06-26 13:00:00", None), "`flow` is missing"),
        ({"date": "2025-06-26 13:00:00", "account": "SUB001"}, "`flow` is missing"),
        (flow_row("26/06/2025 13h", "1"), "not a YYYY-MM-DD"),
        (flow_row("2025-06-26 13:30:00", "1"), "UTC hour"),
        (flow_row("2025-06-26 13:00:00", True), "`flow`"),
    ],
)
def test_hostile_rows_are_bad_responses(upstream, make_connector, row, message):
    upstream.add(FLOW_PATH, flow_body([row]))
    with pytest.raises(BadResponseError, match=message):
        fetch(make_connector())


def test_missing_timezone_is_a_bad_response(upstream, make_connector):
    upstream.add(FLOW_PATH, flow_body(THREE_HOURS, timezone=None))
    with pytest.raises(BadResponseError, match="`timezone`"):
        fetch(make_connector())


def _sub(account, **overrides):
    row = {
        "account": account, "status": 1, "use_flow": "1024", "surplus_flow": "2048.5",
        "is_main": 0, "created_time": 1719370800, "ex_time": "2025-12-31 23:59:59",
    }  # fmt: skip
    return {**row, **overrides}


def test_sub_account_list_walks_pages_and_converts_kb(upstream, make_connector):
    first = [_sub(f"S{i:03}") for i in range(100)]
    first[0] = _sub("MAIN", is_main=1, status=2, ex_time=0, use_flow="0.5")
    upstream.add(
        SUB_ACCOUNTS_PATH,
        {"code": 0, "data": {"list": first, "total": "101"}},
        {"code": 0, "data": {"list": [_sub("S100")], "total": "101"}},
    )
    rows = make_connector().list_sub_accounts()
    assert len(rows) == 101
    assert [r.url.params["page"] for r in upstream.requests] == ["1", "2"]
    assert upstream.params(0)["page_size"] == "100"
    main, other = rows[0], rows[1]
    assert (main.upstream_id, main.is_main, main.enabled, main.expires_at) == (
        "MAIN",
        True,
        False,
        None,
    )
    assert main.used_bytes == 512  # 0.5 KB of 1024 bytes
    assert (other.used_bytes, other.remaining_bytes) == (1048576, 2097664)
    assert other.created_at == dt.datetime(2024, 6, 26, 3, tzinfo=UTC)
    assert other.expires_at == dt.datetime(2025, 12, 31, 15, 59, 59, tzinfo=UTC)  # +08:00


def test_sub_account_kb_follows_configured_mb(upstream, make_connector):
    upstream.add(
        SUB_ACCOUNTS_PATH, {"code": 0, "data": {"list": [_sub("A", use_flow="3")], "total": "1"}}
    )
    (row,) = make_connector(mb_bytes=1_000_000).list_sub_accounts()
    assert row.used_bytes == 2930  # 3 * 1_000_000 / 1024 = 2929.6875, half up


def test_sub_account_with_negative_flow_is_a_bad_response(upstream, make_connector):
    upstream.add(
        SUB_ACCOUNTS_PATH, {"code": 0, "data": {"list": [_sub("A", use_flow="-1")], "total": "1"}}
    )
    with pytest.raises(BadResponseError, match="use_flow"):
        make_connector().list_sub_accounts()


@pytest.mark.parametrize(
    "flow",
    [
        "0",
        "0.5",
        "1453.16",
        "0.000000476837",
        "999999999999999999999999.999999999999",
        "1.0000005",
        " 12.5",
        "12.5 ",
        "007.10",
    ],
)
def test_flow_text_converts_to_the_bytes_of_the_strict_decimal_path(flow):
    data = {
        "count": "1", "timezone": "+08:00", "unit": "MB",
        "list": [{"account": "A1", "date": "2026-03-06 08:00:00", "flow": flow}],
    }  # fmt: skip
    (row,) = parse_flow_page(data, account="A1", mb_bytes=1_000_000).rows
    assert row.bytes == parsing.to_bytes(Decimal(flow.strip()), numerator=1_000_000)
    assert row.raw_value == flow


def test_the_same_label_under_another_offset_is_another_utc_hour():
    def hour(offset):
        data = {
            "count": "1", "timezone": offset, "unit": "MB",
            "list": [{"account": "A1", "date": "2026-03-06 08:00:00", "flow": "1"}],
        }  # fmt: skip
        return parse_flow_page(data, account="A1", mb_bytes=1024).rows[0].hour_start

    assert [hour("+08:00"), hour("+00:00"), hour("+08:00")] == [
        dt.datetime(2026, 3, 6, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 6, 8, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 6, 0, tzinfo=dt.UTC),
    ]


def test_a_label_off_the_hour_is_refused_on_every_page_it_appears():
    data = {
        "count": "1", "timezone": "+05:30", "unit": "MB",
        "list": [{"account": "A1", "date": "2026-03-06 08:00:00", "flow": "1"}],
    }  # fmt: skip
    for _ in range(2):
        with pytest.raises(BadResponseError, match="does not start on a UTC hour"):
            parse_flow_page(data, account="A1", mb_bytes=1024)


def test_rows_of_the_usual_shape_are_hourly_usage_named_tuples():
    data = {
        "count": "1", "timezone": "+08:00", "unit": "MB",
        "list": [{"account": "A1", "date": "2026-03-06 08:00:00", "flow": "1.5"}],
    }  # fmt: skip
    ipfoxy_parse._hour_cache.clear()
    for _ in range(2):  # the strict path, then the fast one (the label's hour is known)
        (row,) = parse_flow_page(data, account="A1", mb_bytes=1024).rows
        assert type(row) is HourlyUsage
        assert row == HourlyUsage(dt.datetime(2026, 3, 6, 0, tzinfo=dt.UTC), 1536, "1.5", "MB")
        assert (row.hour_start, row.bytes, row.raw_value, row.raw_unit) == tuple(row)
