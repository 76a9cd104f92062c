"""Health endpoints for load balancers, orchestrators and compose.

- `/healthz` (liveness): 200 when the database answers, 503 otherwise. It says the process
  is alive and can reach its data; restarting the web server would not bring a broker back.
- `/readyz` (readiness): the database, the Celery broker and Redis, the broker and Redis
  checked side by side, each within `CHECK_TIMEOUT` seconds. 200 when all answer, else 503
  with `failed` naming what did not (`database`, `broker`, `redis`). A web server that is
  not ready accepts requests that queue work (a sync, an invoice run, an email) it cannot
  hand on. Without a broker (tasks run in-process) the broker is `in-process`, without
  `REDIS_URL` Redis is `not configured`: both count as ready. The embedded broker
  (`manage.py serve`) is ready when its queue folder is writable. The body never carries a
  host, a URL or an error text: the log gets the error type.

`HealthProbeMiddleware` answers both before the host check and the HTTPS redirect, so a
probe from inside the container (`http://127.0.0.1:8000/readyz`) is answered whatever
`DJANGO_ALLOWED_HOSTS` and `DJANGO_SECURE_SSL_REDIRECT` say. Nothing in either answer comes
from the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

#: Seconds each backing service gets to answer a readiness check.
CHECK_TIMEOUT = 2.0

OK, DOWN = "ok", "down"


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        logger.warning("readiness: database unavailable (%s)", type(exc).__name__)
        return DOWN
    return OK


def _broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL:
        return "in-process"
    from config.runtime.broker import EMBEDDED_BROKER_URL, embedded_broker_ready

    if settings.CELERY_BROKER_URL == EMBEDDED_BROKER_URL:  # `manage.py serve`: its folder
        return OK if embedded_broker_ready(settings.CELERY_BROKER_TRANSPORT_OPTIONS) else DOWN
    from config.celery import app

    with app.connection_for_write(
        url=settings.CELERY_BROKER_URL,
        connect_timeout=CHECK_TIMEOUT,
        transport_options={
            "socket_connect_timeout": CHECK_TIMEOUT,
            "socket_timeout": CHECK_TIMEOUT,
        },
    ) as conn:
        conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT)
    return OK


def _redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()
    return OK


#: The checks run off the request thread (the database is checked on it, on its connection).
_SIDE_CHECKS: dict[str, Callable[[], str]] = {"broker": _broker, "redis": _redis}


def _side_checks() -> dict[str, str]:
    pool = ThreadPoolExecutor(max_workers=len(_SIDE_CHECKS), thread_name_prefix="readyz")
    futures = {name: pool.submit(check) for name, check in _SIDE_CHECKS.items()}
    results = {}
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=CHECK_TIMEOUT + 1)
        except FutureTimeout:
            logger.warning("readiness: %s did not answer within %s s", name, CHECK_TIMEOUT)
            results[name] = DOWN
        except Exception as exc:  # any failure to reach it: the type only, never its text
            logger.warning("readiness: %s unavailable (%s)", name, type(exc).__name__)
            results[name] = DOWN
    pool.shutdown(wait=False)  # a check stuck past its timeout is not waited for
    return results


def healthz(request: HttpRequest) -> HttpResponse:
    if _database() != OK:
        return JsonResponse({"status": "unavailable", "database": DOWN}, status=503)
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    checks = {"database": _database(), **_side_checks()}
    failed = [name for name, state in checks.items() if state == DOWN]
    if failed:
        return JsonResponse(
            {"status": "unavailable", "failed": failed, "checks": checks}, status=503
        )
    return JsonResponse({"status": "ready", "checks": checks})


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
}


class HealthProbeMiddleware:
    """Answer `GET`/`HEAD` of the probes before any other middleware but the 503 wrapper:
    no host validation (a container probe's `Host` is its own address), no HTTPS redirect,
    no session. Place it right after `ServiceUnavailableMiddleware`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)
