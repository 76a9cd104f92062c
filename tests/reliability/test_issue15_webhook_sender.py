"""Issue 15, findings 1, 2 and 8: the webhook sender is no port scanner, no hostage of a slow
receiver, and the signature check never raises.

Real sockets on 127.0.0.1 stand in for the receiver; a fake resolver plays DNS (a public
address at save time, loopback at send time: DNS rebinding).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.utils import timezone

from core import http as outbound
from webhooks import delivery as delivery_module
from webhooks.delivery import webhook_delivery_send
from webhooks.events import webhook_event_emit
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_create
from webhooks.signing import webhook_signature_header, webhook_signature_verify

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "93.184.216.34"

pytestmark = pytest.mark.django_db


# --- receivers on loopback -------------------------------------------------------------------


class Server:
    """A TCP server on 127.0.0.1 that runs `behaviour(conn)` per connection and counts them."""

    def __init__(self, behaviour):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.connections = 0
        self.requests: list[bytes] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            try:
                conn.settimeout(5)
                self.requests.append(conn.recv(65536))
                self.behaviour(conn, self.stopped)
            except OSError:
                pass

    def close(self):
        self.stopped.set()
        self.sock.close()


def answer_ok(conn, stopped):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


def drip(conn, stopped):
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stopped.is_set():
        conn.sendall(b"X")
        time.sleep(0.3)


def endless_body(conn, stopped):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 400000000\r\n\r\n")
    chunk = b"y" * 65536
    while not stopped.is_set():
        conn.sendall(chunk)


def silent(conn, stopped):
    stopped.wait(30)


@pytest.fixture
def server():
    servers = []

    def start(behaviour):
        servers.append(Server(behaviour))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def dns(monkeypatch):
    """Host name -> addresses; every lookup is recorded."""
    table: dict[str, list[str]] = {}
    lookups: list[str] = []

    def resolve(host, port):
        lookups.append(host)
        if host not in table:
            raise outbound.OutboundError(outbound.CONNECTION_FAILED, "name not resolved")
        return table[host]

    monkeypatch.setattr(outbound, "resolve_host", resolve)
    return table, lookups


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    return settings


def _emit(reseller):
    webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={"id": 1})
    return WebhookDelivery.objects.latest("pk")


def _endpoint(reseller, url):
    endpoint, _ = webhook_endpoint_create(
        reseller=reseller, url=url, enabled_events=["sync.failed"]
    )
    return endpoint


# --- finding 1: host names that lead inside ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://localhost.localdomain/",
        "https://foo.localhost./",
        "https://localhost./",
        "https://metadata/",
        "https://printer.local/",
        "https://router.home.arpa/",
        "https://[::7f00:1]/",
        "https://[64:ff9b::a00:1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1]/",
        "https://[2002:7f00:1::]/",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://127.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/",
        "https://224.0.0.1/",
        "https://0.0.0.0/",
        "https://foo.LOCALHOST\uff0e/",  # full-width dot
        "https://a.b\u3002localhost/",  # ideographic dot
    ],
)
def test_internal_hosts_and_address_literals_are_refused_when_saved(production, reseller, url):
    with pytest.raises(Exception, match="Use a public host"):
        _endpoint(reseller, url)
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("host", "addresses"),
    [
        ("127.0.0.1.nip.io", ["127.0.0.1"]),
        ("localtest.me", ["127.0.0.1", "::1"]),
        ("mixed.example.com", [PUBLIC, "10.0.0.7"]),  # *any* private address refuses
        ("nat64.example.com", ["64:ff9b::7f00:1"]),
    ],
)
def test_a_name_resolving_to_a_private_address_is_refused_when_saved(
    production, reseller, dns, host, addresses
):
    dns[0][host] = addresses
    with pytest.raises(Exception, match="Use a public host"):
        _endpoint(reseller, f"https://{host}/hooks")


def test_a_public_name_is_saved_and_one_that_does_not_resolve_yet_too(production, reseller, dns):
    dns[0]["hooks.shop.example"] = [PUBLIC]
    assert _endpoint(reseller, "https://hooks.shop.example/x").pk
    assert _endpoint(reseller, "https://not-yet.shop.example/x").pk  # resolved at every send


def test_dns_rebinding_at_send_time_connects_nowhere(production, reseller, dns, server):
    receiver = server(answer_ok)
    table, _ = dns
    table["hooks.shop.example"] = [PUBLIC]
    _endpoint(reseller, f"https://hooks.shop.example:{receiver.port}/x")
    table["hooks.shop.example"] = ["127.0.0.1"]  # the attacker's DNS answers anew

    result = webhook_delivery_send(delivery_id=_emit(reseller).pk, now=timezone.now())

    assert result.last_error == "endpoint address not allowed"
    assert result.status == WebhookDelivery.Status.PENDING  # retried later, refused again
    time.sleep(0.3)
    assert receiver.connections == 0


def test_the_port_scanner_channel_is_closed(production, reseller, dns, server, settings):
    """Open TLS-less, closed and silent ports on loopback all read the same in the log."""
    ports = {
        "open": server(answer_ok).port,
        "silent": server(silent).port,
        "closed": _closed_port(),
    }
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = True  # to save the loopback endpoints
    for name, port in ports.items():
        dns[0][f"{name}.scan.example"] = ["127.0.0.1"]
        _endpoint(reseller, f"https://{name}.scan.example:{port}/")
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = False

    _emit(reseller)
    errors = {
        d.endpoint.url: webhook_delivery_send(delivery_id=d.pk, now=timezone.now()).last_error
        for d in WebhookDelivery.objects.select_related("endpoint")
    }

    assert set(errors.values()) == {"endpoint address not allowed"}


def test_the_sender_connects_to_the_checked_address_and_looks_up_once(
    production, reseller, dns, server, settings
):
    receiver = server(answer_ok)
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    table, lookups = dns
    table["hooks.shop.example"] = ["127.0.0.1"]
    _endpoint(reseller, f"http://hooks.shop.example:{receiver.port}/in")
    lookups.clear()

    result = webhook_delivery_send(delivery_id=_emit(reseller).pk, now=timezone.now())

    assert result.status == WebhookDelivery.Status.SUCCEEDED
    assert lookups == ["hooks.shop.example"]  # one lookup: nothing for a rebinding to swap
    assert b"host: hooks.shop.example:" in receiver.requests[0].lower()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize(
    ("behaviour", "scheme", "reason"),
    [
        (None, "http", "connection failed"),
        (answer_ok, "https", "TLS error"),
        (silent, "http", "timed out"),
    ],
)
def test_failures_are_logged_by_kind_without_errno_text(
    production, reseller, dns, server, settings, monkeypatch, behaviour, scheme, reason
):
    monkeypatch.setattr(delivery_module, "ATTEMPT_DEADLINE", 1.0)
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    port = _closed_port() if behaviour is None else server(behaviour).port
    dns[0]["hooks.shop.example"] = ["127.0.0.1"]
    _endpoint(reseller, f"{scheme}://hooks.shop.example:{port}/")

    result = webhook_delivery_send(delivery_id=_emit(reseller).pk, now=timezone.now())

    assert result.last_error == reason
    assert not re.search(r"errno|refused|\[SSL|_ssl\.c", result.last_error, re.I)


# --- finding 2: a deadline and a capped body ---------------------------------------------------


def test_a_name_server_that_never_answers_is_cut_off_at_the_deadline(
    production, reseller, monkeypatch
):
    """The lookup counts against the attempt's deadline, and a save waits at most 2 s."""
    monkeypatch.setattr(delivery_module, "ATTEMPT_DEADLINE", 1.0)
    monkeypatch.setattr("webhooks.urls_check.SAVE_LOOKUP_SECONDS", 0.5)
    monkeypatch.setattr(outbound, "resolve_host", lambda host, port: time.sleep(3) or [PUBLIC])

    started = time.monotonic()
    _endpoint(reseller, "https://slow-dns.shop.example/x")  # accepted: checked at every send
    assert time.monotonic() - started < 1.5

    started = time.monotonic()
    result = webhook_delivery_send(delivery_id=_emit(reseller).pk, now=timezone.now())
    assert result.last_error == "timed out"
    assert time.monotonic() - started < 2.0


def test_a_dripping_receiver_is_cut_off_at_the_deadline(
    production, reseller, dns, server, settings, monkeypatch
):
    monkeypatch.setattr(delivery_module, "ATTEMPT_DEADLINE", 1.5)
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    dns[0]["slow.shop.example"] = ["127.0.0.1"]
    _endpoint(reseller, f"http://slow.shop.example:{server(drip).port}/")
    delivery = _emit(reseller)

    started = time.monotonic()
    result = webhook_delivery_send(delivery_id=delivery.pk, now=timezone.now())
    elapsed = time.monotonic() - started

    assert result.last_error == "timed out"
    assert elapsed < 1.5 + 1.0  # the deadline, plus recording; not one read timeout more


def test_a_huge_answer_is_read_only_up_to_the_cap(production, reseller, dns, server, settings):
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    dns[0]["big.shop.example"] = ["127.0.0.1"]
    _endpoint(reseller, f"http://big.shop.example:{server(endless_body).port}/")

    started = time.monotonic()
    result = webhook_delivery_send(delivery_id=_emit(reseller).pk, now=timezone.now())

    assert result.status == WebhookDelivery.Status.SUCCEEDED
    assert len(result.last_response_body) == delivery_module.MAX_RESPONSE_BYTES == 1024
    assert time.monotonic() - started < 3  # 400 MB announced, never read


def test_the_lease_outlives_the_deadline():
    assert delivery_module.LEASE.total_seconds() > 3 * delivery_module.ATTEMPT_DEADLINE


def test_one_endpoint_gets_one_attempt_at_a_time(production, reseller, monkeypatch):
    """A second worker, asked to send another delivery of the same endpoint while the first
    is on the wire, leaves it due; it is sent once the first attempt is over."""
    import httpx

    _endpoint(reseller, "https://hooks.shop.example/x")
    first, second = _emit(reseller), _emit(reseller)
    concurrent = []

    def handler(request):
        if not concurrent:
            concurrent.append(webhook_delivery_send(delivery_id=second.pk, now=timezone.now()))
        return httpx.Response(200, text="ok")

    monkeypatch.setattr(delivery_module, "http_transport", lambda: httpx.MockTransport(handler))
    assert webhook_delivery_send(delivery_id=first.pk, now=timezone.now()).status == "succeeded"

    assert concurrent == [None]  # the endpoint was busy: nothing sent, nothing counted
    second.refresh_from_db()
    assert second.status == "pending" and second.attempts == 0
    assert WebhookEndpoint.objects.get().sending_until is None  # freed after the attempt
    assert webhook_delivery_send(delivery_id=second.pk, now=timezone.now()).status == "succeeded"


# --- finding 8: malformed signatures and the proxy header --------------------------------------

MALFORMED = [
    "t=²,v1=" + "a" * 64,
    "t=١٢٣,v1=" + "a" * 64,
    "t=" + "9" * 5000 + ",v1=" + "a" * 64,
    "t=1700000000,v1=é" + "a" * 63,
    "t=1700000000,v1=" + "z" * 64,
    "t=-5,v1=" + "a" * 64,
    "",
    ",,,",
    "t",
    "v1",
    "garbage",
]


def _docs_verify():
    text = (ROOT / "docs/api.md").read_text()
    block = re.search(r"```python\n(import hashlib, hmac.*?def verify.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102 (the docs' own recipe, checked as receivers copy it)
    return namespace["verify"]


@pytest.mark.parametrize("header", MALFORMED)
def test_a_malformed_signature_header_is_false_never_an_exception(header):
    body = b'{"id":"evt_1"}'
    assert webhook_signature_verify(secret="whsec_x", body=body, header=header) is False
    assert _docs_verify()("whsec_x", body, header) is False


def test_the_docs_recipe_and_the_helper_agree_on_repeated_and_zero_padded_timestamps():
    body = b'{"id":"evt_1"}'
    now = int(time.time())
    signature = webhook_signature_header(secret="whsec_x", body=body, timestamp=now)
    v1 = signature.split("v1=")[1]
    for header in (f"t=0,t={now},v1={v1}", f"t={now},t=0,v1={v1}", f"t=0{now},v1={v1}"):
        helper = webhook_signature_verify(secret="whsec_x", body=body, header=header)
        assert helper is False
        assert _docs_verify()("whsec_x", body, header) is helper


def test_the_docs_recipe_and_the_helper_accept_a_real_signature():
    body = b'{"id":"evt_1"}'
    header = webhook_signature_header(secret="whsec_x", body=body, timestamp=int(time.time()))
    assert webhook_signature_verify(secret="whsec_x", body=body, header=header)
    assert _docs_verify()("whsec_x", body, header)
    assert not _docs_verify()("whsec_y", body, header)


@pytest.mark.parametrize(("trust", "expected"), [("", "None"), ("1", "HTTP_X_FORWARDED_PROTO")])
@pytest.mark.slow
def test_x_forwarded_proto_is_trusted_only_when_the_operator_says_so(trust, expected):
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLOWBILL_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "s" * 50,
            "FLOWBILL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DJANGO_TRUST_X_FORWARDED_PROTO": trust,
        }
    )
    code = (
        "from django.conf import settings; h = settings.SECURE_PROXY_SSL_HEADER; "
        "print(h[0] if h else None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == expected, result.stderr
