"""`/healthz` (liveness: the database) and `/readyz` (readiness: the database, the broker and
Redis, each within about 2 s), both answered to a probe from inside the container."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.db import OperationalError

from config import health

CLOSED = "redis://:s3cret@127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a hung broker or Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def _ready(client):
    response = client.get("/readyz")
    return response.status_code, response.json(), response.content.decode()


def test_embedded_mode_is_ready_with_tasks_in_process_and_no_redis(client, db):
    status, body, _ = _ready(client)

    assert status == 200
    assert body == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "in-process", "redis": "not configured"},
    }


def test_a_broker_that_refuses_connections_makes_readyz_503_naming_the_broker(client, db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = CLOSED

    status, body, text = _ready(client)

    assert status == 503
    assert body["failed"] == ["broker"]
    assert body["checks"] == {"database": "ok", "broker": "down", "redis": "not configured"}
    assert "127.0.0.1" not in text and "s3cret" not in text and "refused" not in text
    # Liveness stays database-only: restarting the web server would not bring a broker back.
    assert client.get("/healthz").status_code == 200


def test_redis_down_makes_readyz_503_naming_redis(client, db, settings):
    settings.REDIS_URL = CLOSED

    status, body, text = _ready(client)

    assert (status, body["failed"]) == (503, ["redis"])
    assert body["checks"]["redis"] == "down"
    assert "127.0.0.1" not in text and "s3cret" not in text


def test_the_database_down_makes_both_checks_503(client, db, monkeypatch):
    class Down:
        def cursor(self):
            raise OperationalError("could not connect to server at 10.0.0.5")

    monkeypatch.setattr(health, "connection", Down())

    status, body, text = _ready(client)
    assert (status, body["failed"]) == (503, ["database"]) and "10.0.0.5" not in text
    live = client.get("/healthz")
    assert (live.status_code, live.json()) == (503, {"status": "unavailable", "database": "down"})


@pytest.mark.slow
def test_a_broker_and_redis_that_never_answer_are_down_within_the_timeout(
    client, db, settings, silent_port
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_port}/0"
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_port}/1"

    started = time.monotonic()
    status, body, _ = _ready(client)
    elapsed = time.monotonic() - started

    assert (status, body["failed"]) == (503, ["broker", "redis"])
    # Checked side by side, each cut at CHECK_TIMEOUT (2 s): one wait, not two.
    assert health.CHECK_TIMEOUT <= elapsed < 2 * health.CHECK_TIMEOUT + 0.5


def test_with_the_real_broker_and_redis_up_readyz_is_200(client, db, settings, redis_url):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = redis_url
    settings.REDIS_URL = redis_url

    status, body, _ = _ready(client)

    assert status == 200
    assert body == {"status": "ready", "checks": {"database": "ok", "broker": "ok", "redis": "ok"}}


def test_probes_are_answered_whatever_the_host_and_without_the_https_redirect(client, db, settings):
    """The compose health check asks http://127.0.0.1:8000/readyz: in production neither
    that host is allowed nor plain http (a 400 or a redirect each time, before)."""
    settings.ALLOWED_HOSTS = ["billing.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    for path in ("/healthz", "/readyz"):
        response = client.get(path, HTTP_HOST="127.0.0.1:8000")
        assert response.status_code == 200, path
    # Everything else is still checked and redirected.
    assert client.get("/admin/", HTTP_HOST="127.0.0.1:8000").status_code == 400
    assert client.get("/admin/", HTTP_HOST="billing.example.com").status_code == 301
