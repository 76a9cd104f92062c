"""The direct GET from the client's connection pool (`transport._pooled_get`), against a real
HTTP server on localhost: it sends what `httpx.Client.get` sends, reads what it reads, and
fails with the same errors; any client it cannot vouch for takes the httpx path."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import httpx
import pytest

from usage.providers import build_connector, transport
from usage.providers.base import TransientError
from usage.providers.ipfoxy import FLOW_PATH
from usage.providers.ratelimit import InProcessBudget
from usage.providers.transport import RetryPolicy

from .conftest import API_ID, API_TOKEN, NOW, SleepRecorder, flow_body, flow_row

START = dt.datetime(2025, 6, 26, 5, tzinfo=dt.UTC)
BODY = flow_body([flow_row("2025-06-26 13:00:00", "1.5")])


class Server:
    """Answers every GET with the next scripted (status, headers, body, delay); records each
    request's line and headers as the server read them."""

    def __init__(self):
        self.script: list[tuple[int, dict, bytes, float]] = []
        self.seen: list[tuple[str, list[tuple[str, str]]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the upstreams

            def do_GET(self):
                server.seen.append((self.requestline, list(self.headers.items())))
                status, headers, body, delay = (
                    server.script.pop(0) if len(server.script) > 1 else server.script[0]
                )
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in {**headers, "Content-Length": str(len(body))}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (the read timeout test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, status=200, body=BODY, headers=None, delay=0.0):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.script.append((status, headers or {}, raw, delay))
        return self


@pytest.fixture
def server():
    running = Server()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


@pytest.fixture
def pooled(monkeypatch):
    """What each `_pooled_get` call answered: a response, or None (the httpx path)."""
    answers = []
    real = transport._pooled_get

    def spy(*args, **kwargs):
        answers.append(real(*args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(transport, "_pooled_get", spy)
    return answers


def connector(base_url, client, sleeps=None, timeout=None, **retry):
    return build_connector(
        provider="ipfoxy",
        base_url=base_url,
        credentials={"api_id": API_ID, "api_token": API_TOKEN},
        client=client,
        budget=InProcessBudget(),
        budget_key="ipfoxy:1",
        retry=RetryPolicy(**{"max_attempts": 1, **retry}),
        sleep=sleeps or SleepRecorder(),
        wall_clock=lambda: NOW,
        rng=random.Random(7),
        **({"timeout": timeout} if timeout else {}),
    )


def fetch(conn):
    return conn.fetch_hourly_usage(
        upstream_id="SUB001", start=START, end=START + dt.timedelta(hours=1), now=NOW
    )


def test_the_pooled_get_sends_exactly_what_httpx_sends(server, pooled):
    server.answer()
    hooks = {"request": [lambda request: None]}  # makes the client take the httpx path
    with httpx.Client() as plain, httpx.Client(event_hooks=hooks) as hooked:
        direct = fetch(connector(server.url, plain))
        through_httpx = fetch(connector(server.url, hooked))
    assert [answer is not None for answer in pooled] == [True, False]
    assert direct == through_httpx
    assert direct.hours[0].bytes == 1_572_864  # 1.5 MB of 1,048,576 bytes
    (line, headers), (line_httpx, headers_httpx) = server.seen
    assert line == line_httpx
    assert line.startswith(f"GET {FLOW_PATH}?account=SUB001&start_time=") and "&page=1 " in line
    assert headers == headers_httpx  # same names, values and order, Host first
    assert headers[0] == ("Host", server.url.removeprefix("http://"))
    assert ("api-id", API_ID) in headers and ("api-token", API_TOKEN) in headers


def test_connections_are_kept_alive_between_requests(server, pooled):
    server.answer()
    with httpx.Client() as client:
        conn = connector(server.url, client)
        fetch(conn)
        fetch(conn)
        (connection,) = client._transport._pool.connections  # one, reused
        assert connection.is_idle()
    assert len(server.seen) == 2 and all(pooled)


def test_a_compressed_answer_is_decoded_as_httpx_decodes_it(server, pooled):
    compressed = gzip.compress(json.dumps(BODY).encode())
    server.answer(body=compressed, headers={"Content-Encoding": "gzip"})
    with httpx.Client() as client:
        report = fetch(connector(server.url, client))
    assert report.hours[0].bytes == 1_572_864 and all(pooled)


def test_retry_after_of_a_pooled_answer_is_honoured(server, pooled):
    server.answer(429, {"code": 0}, headers={"Retry-After": "7"}).answer()
    sleeps = SleepRecorder()
    with httpx.Client() as client:
        report = fetch(connector(server.url, client, sleeps, max_attempts=2))
    assert sleeps.calls == [7.0] and report.requests == 2 and all(pooled)


def test_a_refused_connection_is_httpx_s_connect_error_and_was_not_sent(pooled):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with httpx.Client() as client, pytest.raises(TransientError) as caught:
        fetch(connector(f"http://127.0.0.1:{port}", client))
    assert caught.value.message == "upstream unreachable: connection error (ConnectError)"
    assert caught.value.may_have_applied is False
    assert str(port) not in str(caught.value)  # no host or port in the message


def test_a_read_timeout_is_httpx_s_and_may_have_been_applied(server, pooled):
    server.answer(delay=0.5)
    with httpx.Client() as client, pytest.raises(TransientError) as caught:
        fetch(connector(server.url, client, timeout=httpx.Timeout(5.0, read=0.1)))
    assert caught.value.message == "upstream unreachable: timeout (ReadTimeout)"
    assert caught.value.may_have_applied is True


@pytest.mark.parametrize(
    "client",
    [
        pytest.param(
            lambda: httpx.Client(event_hooks={"response": [lambda response: None]}),
            id="event hook",
        ),
        pytest.param(lambda: httpx.Client(auth=("user", "password")), id="auth"),
        pytest.param(lambda: httpx.Client(cookies={"session": "1"}), id="cookies"),
        pytest.param(lambda: httpx.Client(params={"extra": "1"}), id="default params"),
        pytest.param(
            lambda: httpx.Client(mounts={"http://": httpx.HTTPTransport(retries=1)}), id="mounts"
        ),
        pytest.param(
            lambda: httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))),
            id="another transport",
        ),
        pytest.param(lambda: type("Sub", (httpx.Client,), {})(), id="a subclass"),
    ],
)
def test_clients_it_cannot_vouch_for_take_the_httpx_path(client):
    with client() as made:
        assert transport._pooled_get(made, "http://127.0.0.1:9/x", "a=1", {}, {}) is None


@pytest.mark.parametrize(
    "params",
    [
        {"account": "SUB001", "start_time": 1773100800, "end_time": -1, "unit": 1, "page": 1},
        {"account": "sub account"},
        {"account": "é"},
        {"account": "a=b&c"},
        {"odd name": "1"},
        {"empty": ""},
        {"dots-and~tildes_": "-1.5~x"},
    ],
)
def test_the_query_string_is_the_one_urlencode_makes(params):
    assert transport._plain_query(params) == urlencode(params)
