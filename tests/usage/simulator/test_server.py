"""The HTTP layer: keep-alive, closing, unknown paths, concurrency, stop."""

import concurrent.futures
import socket

import httpx
import pytest

from usage.simulator import SimulatorConfig, start_simulator

from .conftest import FLOW_LIST, IPFOXY_HEADERS, NOW, flow_params


def raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_keep_alive_serves_several_requests_on_one_connection_until_close(sim):
    request = b"GET /_sim/health HTTP/1.1\r\nHost: x\r\n\r\n"
    closing = b"GET /_sim/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    answer = raw_exchange(sim.port, request + request + closing)

    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.count(b'{"ok":true}') == 3
    assert answer.rstrip().endswith(b'{"ok":true}')


def test_http_1_0_closes_after_one_answer(sim):
    answer = raw_exchange(sim.port, b"GET /_sim/health HTTP/1.0\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in answer


def test_unknown_path_is_404_and_post_to_an_api_is_405(sim):
    assert httpx.get(sim.url + "/nope").status_code == 404
    assert httpx.post(sim.url + FLOW_LIST, headers=IPFOXY_HEADERS).status_code == 405
    assert httpx.get(sim.url + "/_sim/nope").status_code == 404


def test_concurrent_requests_overlap_their_latency():
    config = SimulatorConfig(now=NOW, rate_limit_enabled=False)
    with start_simulator(config=config) as sim:
        sim.set_faults(latency_ms=200)

        def fetch(i):
            with httpx.Client(base_url=sim.url, headers=IPFOXY_HEADERS, timeout=5) as client:
                return client.get(FLOW_LIST, params=flow_params(f"C{i}")).json()["code"]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(fetch, range(16)))
        overlapped = sim.stats()["max_delayed_at_once"]

    assert codes == [0] * 16
    assert overlapped >= 2  # a serial server would never hold two responses at once


def test_stop_releases_the_port():
    sim = start_simulator(config=SimulatorConfig(now=NOW))
    port = sim.port
    sim.stop()
    sim.stop()  # idempotent

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
