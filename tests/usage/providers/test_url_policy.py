"""Request-time base-URL policy of the transport (issue 11.1): credentials are sent only to
http(s) URLs without user info on the allowed hosts, never through a redirect, and a
connection failure is reported without host, port or errno."""

import datetime as dt
import logging

import httpx
import pytest

from usage.providers import build_connector
from usage.providers.base import BadResponseError, TransientError, UrlNotAllowedError
from usage.providers.ipfoxy import FLOW_PATH
from usage.providers.ratelimit import InProcessBudget
from usage.providers.transport import RetryPolicy

from .conftest import API_ID, API_TOKEN, NOW, Upstream, flow_body, flow_row

OK = flow_body([flow_row("2025-06-26 13:00:00", "1")])


def _connector(upstream: Upstream, base_url: str, **options):
    return build_connector(
        provider="ipfoxy",
        base_url=base_url,
        credentials={"api_id": API_ID, "api_token": API_TOKEN},
        client=httpx.Client(transport=httpx.MockTransport(upstream.handler)),
        budget=InProcessBudget(),
        budget_key="ipfoxy:1",
        retry=RetryPolicy(max_attempts=2, base_delay=0.0),
        sleep=lambda s: None,
        wall_clock=lambda: NOW,
        **options,
    )


def _fetch(connector):
    start = dt.datetime(2025, 6, 26, 5, tzinfo=dt.UTC)
    return connector.fetch_hourly_usage(
        upstream_id="SUB001", start=start, end=start + dt.timedelta(hours=1), now=NOW
    )


@pytest.mark.parametrize(
    "base_url",
    [
        "https://evil.example",  # not on the allowlist
        "http://169.254.169.254",  # cloud metadata address
        "https://apis.ipfoxy.com.evil.example",  # suffix trick
        "ftp://apis.ipfoxy.com",  # scheme
        "https://user:pw@apis.ipfoxy.com",  # user info
        "https://apis.ipfoxy.com@evil.example",  # user info pointing elsewhere
    ],
)
def test_a_url_off_the_policy_is_refused_before_anything_is_sent(base_url):
    upstream = Upstream().add(FLOW_PATH, OK)
    connector = _connector(upstream, base_url, allowed_hosts={"apis.ipfoxy.com"})
    with pytest.raises(UrlNotAllowedError) as info:
        _fetch(connector)
    assert upstream.requests == []  # the credentials never left
    assert info.value.code == "upstream_url_not_allowed" and not info.value.retryable
    assert "evil" not in str(info.value) and "169.254" not in str(info.value)


def test_an_allowed_host_is_fetched_and_a_host_port_entry_allows_only_that_port():
    upstream = Upstream().add(FLOW_PATH, OK)
    report = _fetch(
        _connector(upstream, "https://APIS.ipfoxy.com/", allowed_hosts={"apis.ipfoxy.com"})
    )
    assert report.requests == 1 and upstream.requests[0].url.host == "apis.ipfoxy.com"

    pinned = {"127.0.0.1:8765"}
    assert _fetch(_connector(upstream, "http://127.0.0.1:8765", allowed_hosts=pinned)).requests == 1
    with pytest.raises(UrlNotAllowedError):
        _fetch(_connector(upstream, "http://127.0.0.1:22", allowed_hosts=pinned))


def test_without_an_allowlist_scheme_and_user_info_are_still_checked():
    upstream = Upstream().add(FLOW_PATH, OK)
    with pytest.raises(UrlNotAllowedError):
        _fetch(_connector(upstream, "file:///etc/passwd"))
    with pytest.raises(UrlNotAllowedError):
        _fetch(_connector(upstream, "http://a:b@upstream.test"))
    assert upstream.requests == []


def test_a_redirect_is_not_followed(caplog):
    redirect = httpx.Response(302, headers={"Location": "http://10.0.0.5/steal"})
    upstream = Upstream().add(FLOW_PATH, redirect)
    connector = _connector(upstream, "https://apis.ipfoxy.com", allowed_hosts={"apis.ipfoxy.com"})
    with pytest.raises(BadResponseError) as info:
        _fetch(connector)
    assert [r.url.host for r in upstream.requests] == ["apis.ipfoxy.com"]
    assert "redirect" in info.value.message and "10.0.0.5" not in str(info.value)


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (httpx.ConnectError("[Errno 111] Connect call failed ('10.1.2.3', 6379)"), "connection"),
        (httpx.ConnectError("[Errno -2] Name or service not known: internal.corp"), "connection"),
        (httpx.ReadTimeout("timed out reading from 10.1.2.3:5432"), "timeout"),
    ],
)
def test_connection_errors_say_unreachable_without_network_detail(caplog, failure, kind):
    caplog.set_level(logging.DEBUG)
    upstream = Upstream().add(FLOW_PATH, failure)
    connector = _connector(upstream, "https://apis.ipfoxy.com", allowed_hosts={"apis.ipfoxy.com"})
    with pytest.raises(TransientError) as info:
        _fetch(connector)
    text = f"{info.value} {caplog.text}"
    assert info.value.message.startswith("upstream unreachable: " + kind)
    for detail in ("10.1.2.3", "6379", "5432", "Errno", "internal.corp", "111"):
        assert detail not in text
