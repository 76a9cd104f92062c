import datetime as dt
import logging

import httpx
import pytest

from usage.providers.base import (
    AuthError,
    BudgetExhaustedError,
    RateLimitedError,
    TransientError,
    UpstreamError,
)
from usage.providers.bytesflows import ASSET_PATH
from usage.providers.ipfoxy import FLOW_PATH
from usage.providers.transport import RetryPolicy, parse_retry_after, seconds_to_next_minute

from .conftest import API_ID, API_TOKEN, BF_TOKEN, NOW, flow_body, flow_row

OK = flow_body([flow_row("2025-06-26 13:00:00", "1")])
SECRETS = (API_ID, API_TOKEN, BF_TOKEN)


def fetch(connector):
    start = dt.datetime(2025, 6, 26, 5, tzinfo=dt.UTC)
    return connector.fetch_hourly_usage(
        upstream_id="SUB001", start=start, end=start + dt.timedelta(hours=1), now=NOW
    )


def test_http_429_retry_after_seconds_is_honoured(upstream, make_connector, sleeps):
    upstream.add(FLOW_PATH, httpx.Response(429, headers={"Retry-After": "7"}), OK)
    report = fetch(make_connector())
    assert sleeps.calls == [7.0] and report.requests == 2


def test_http_503_retry_after_http_date_is_honoured(upstream, make_connector, sleeps):
    retry_at = "Fri, 27 Jun 2025 12:30:42 GMT"  # NOW is 12:30:00
    upstream.add(FLOW_PATH, httpx.Response(503, headers={"Retry-After": retry_at}), OK)
    fetch(make_connector())
    assert sleeps.calls == [42.0]


def test_retry_after_is_capped_by_the_policy(upstream, make_connector, sleeps):
    upstream.add(FLOW_PATH, httpx.Response(429, headers={"Retry-After": "86400"}), OK)
    fetch(make_connector(retry=RetryPolicy(max_retry_after=90.0)))
    assert sleeps.calls == [90.0]


def test_connection_errors_and_timeouts_back_off_with_full_jitter(upstream, make_connector, sleeps):
    upstream.add(FLOW_PATH, httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), OK)
    report = fetch(make_connector(retry=RetryPolicy(max_attempts=3, base_delay=2.0)))
    assert report.requests == 3
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 2.0 and 0 <= sleeps.calls[1] <= 4.0


def test_5xx_exhausts_attempts_then_raises_transient_with_context(upstream, make_connector, sleeps):
    upstream.add(FLOW_PATH, httpx.Response(502, text="<html>bad gateway</html>"))
    connector = make_connector(retry=RetryPolicy(max_attempts=4))
    with pytest.raises(TransientError) as info:
        fetch(connector)
    ctx = info.value.context
    assert (ctx["http_status"], ctx["attempt"], ctx["account"], ctx["path"]) == (
        502, 4, "SUB001", FLOW_PATH,
    )  # fmt: skip
    assert len(sleeps.calls) == 3 and connector.requests == 4


@pytest.mark.parametrize("status", [401, 403])
def test_http_auth_failures_are_never_retried(upstream, make_connector, sleeps, status):
    upstream.add(FLOW_PATH, httpx.Response(status))
    with pytest.raises(AuthError):
        fetch(make_connector())
    assert len(upstream.requests) == 1 and sleeps.calls == []


def test_budget_is_taken_before_every_attempt(upstream, make_connector):
    taken = []

    class Budget:
        def acquire(self, key, *, per_minute, timeout, priority=False):
            taken.append((key, per_minute, len(upstream.requests)))

    upstream.add(FLOW_PATH, httpx.Response(500), OK)
    connector = make_connector(requests_per_minute=42)
    connector.transport.budget = Budget()
    fetch(connector)
    assert taken == [("ipfoxy:1", 42, 0), ("ipfoxy:1", 42, 1)]


def test_exhausted_budget_is_not_retried_and_sends_nothing(upstream, make_connector, sleeps):
    class Budget:
        def acquire(self, key, *, per_minute, timeout, priority=False):
            raise BudgetExhaustedError("no slot", retry_after=30.0)

    connector = make_connector()
    connector.transport.budget = Budget()
    with pytest.raises(BudgetExhaustedError):
        fetch(connector)
    assert upstream.requests == [] and sleeps.calls == []


def _echo_secrets(request):
    return httpx.Response(200, json={"code": 60401, "msg": f"bad {API_ID} {API_TOKEN}"})


@pytest.mark.parametrize(
    "failure",
    [
        _echo_secrets,
        httpx.ConnectError(f"proxy said {API_TOKEN}"),
        httpx.Response(500, text=API_TOKEN),
        httpx.Response(200, text=f"<html>{API_TOKEN}</html>"),
    ],
)
def test_errors_and_logs_never_carry_credentials(upstream, make_connector, caplog, failure):
    caplog.set_level(logging.DEBUG)
    upstream.add(FLOW_PATH, failure)
    connector = make_connector(retry=RetryPolicy(max_attempts=2))
    with pytest.raises(UpstreamError) as info:
        fetch(connector)
    exposed = " ".join(
        [str(info.value), repr(info.value), repr(info.value.context), caplog.text, repr(connector)]
    )
    assert not any(secret in exposed for secret in SECRETS)
    assert "SUB001" in str(info.value)  # but the safe context is there


def test_bytesflows_token_never_appears_in_errors_or_logs(upstream, make_connector, caplog):
    caplog.set_level(logging.DEBUG)
    upstream.add(ASSET_PATH, httpx.Response(200, json={"code": 401, "msg": f"bad {BF_TOKEN}"}))
    with pytest.raises(AuthError) as info:
        make_connector("bytesflows").fetch_ledger(credentials={"token": BF_TOKEN}, now=NOW)
    exposed = str(info.value) + repr(info.value) + repr(info.value.context) + caplog.text
    assert BF_TOKEN not in exposed


def test_rate_limited_error_without_hint_uses_backoff(upstream, make_connector, sleeps):
    upstream.add(FLOW_PATH, httpx.Response(429), httpx.Response(429), httpx.Response(429))
    with pytest.raises(RateLimitedError):
        fetch(make_connector(retry=RetryPolicy(max_attempts=3, base_delay=1.0)))
    assert len(sleeps.calls) == 2 and all(0 <= s <= 2.0 for s in sleeps.calls)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("Fri, 27 Jun 2025 12:31:00 GMT", 60.0),
        ("Fri, 27 Jun 2025 12:00:00 GMT", 0.0),  # in the past
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(header, seconds):
    assert parse_retry_after(header, now=NOW) == seconds


def test_seconds_to_next_minute():
    assert seconds_to_next_minute(NOW.replace(second=59, microsecond=750000)) == 0.25
    assert seconds_to_next_minute(NOW) == 60.0


def test_parse_errors_quoting_an_echoed_credential_are_scrubbed(upstream, make_connector):
    upstream.add(FLOW_PATH, flow_body([flow_row("2025-06-26 13:00:00", API_TOKEN[:30])]))
    connector = make_connector()
    with pytest.raises(UpstreamError) as info:
        fetch(connector)
    assert API_TOKEN[:30] not in str(info.value) + repr(info.value)
    assert (connector.requests, connector.pages) == (1, 1)  # counted for SyncRun on failure
