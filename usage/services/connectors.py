"""Building a connector from an `UpstreamAccount`: credentials, base URL, MB size, budget.

Client layout (measured in `bench/sync.py`): one `httpx.Client` per thread, reused across
syncs, rather than one shared AsyncClient pool (httpx issue 3215: a single pool of 50
connections stalls under load). Celery prefork workers get one client per process; the
`sync_usage` command and the benchmark run a thread pool with one client per thread.

The request budget is per upstream account (key `upstream:<id>`, `requests_per_minute`),
shared by every worker through Redis when `settings.REDIS_URL` is set, else in-process.
"""

from __future__ import annotations

import threading
from functools import cache

import httpx
from django.conf import settings

from accounts.models import UpstreamAccount
from accounts.upstream_urls import upstream_allowed_hosts
from usage.providers.ratelimit import InProcessBudget, RedisBudget, RequestBudget

_local = threading.local()
_process_budget = InProcessBudget()


def thread_http_client() -> httpx.Client:
    """This thread's reusable httpx client (connections kept alive between syncs)."""
    client = getattr(_local, "client", None)
    if client is None:
        client = httpx.Client(
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
            timeout=httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0),
        )
        _local.client = client
    return client


@cache
def _redis_budget(url: str) -> RedisBudget:
    import redis

    return RedisBudget(redis.Redis.from_url(url))


def request_budget() -> RequestBudget:
    """The budget shared by every worker: Redis when configured, else this process's."""
    if settings.REDIS_URL:
        return _redis_budget(settings.REDIS_URL)
    return _process_budget


def process_budget_clear() -> None:
    """Empty this process's budget (tests: SQLite reuses upstream account ids, so a budget
    spent by one test would make the next wait for a minute)."""
    _process_budget.clear()


def budget_key(upstream_account: UpstreamAccount) -> str:
    return f"upstream:{upstream_account.pk}"


def connector_for_upstream_account(
    *,
    upstream_account: UpstreamAccount,
    client: httpx.Client | None = None,
    budget: RequestBudget | None = None,
):
    """A History- or LedgerConnector for this upstream account (see providers/base.py)."""
    from usage.providers import build_connector

    return build_connector(
        provider=upstream_account.provider,
        base_url=upstream_account.effective_base_url,
        credentials=upstream_account.credentials,
        mb_bytes=upstream_account.mb_bytes,
        client=client or thread_http_client(),
        budget=budget or request_budget(),
        budget_key=budget_key(upstream_account),
        requests_per_minute=upstream_account.requests_per_minute,
        allowed_hosts=upstream_allowed_hosts(upstream_account.provider),
    )
