"""Building a connector from an `UpstreamAccount`: credentials, base URL, MB size, budget.

Client layout (measured in `bench/sync.py`): one `httpx.Client` per thread, reused across
syncs, rather than one shared AsyncClient pool (httpx issue 3215: a single pool of 50
connections stalls under load). Celery prefork workers get one client per process; the
`sync_usage` command and the benchmark run a thread pool with one client per thread.

The request budget is per upstream account (key `upstream:<id>`, `requests_per_minute`),
shared by every worker through Redis when `settings.REDIS_URL` is set, else in-process.
Reseller writes (allocations) and account reads share it, ahead of sync (`ratelimit.py`).

`reseller_connector_for_sub_account` is the one gate to the reseller API of a sub-account
(allocations, its traffic counters): IPFoxy only (BytesFlows publishes no write API), an
active upstream account, an upstream id IPFoxy accepts; anything else is a 409 naming why.
"""

from __future__ import annotations

import ssl
import threading
from functools import cache

import httpx
from django.conf import settings

from accounts.models import Provider, SubAccount, UpstreamAccount
from accounts.upstream_urls import upstream_allowed_hosts
from core.errors import ApplicationError
from usage.providers.ratelimit import InProcessBudget, RedisBudget, RequestBudget
from usage.providers.reseller import ResellerConnector, check_account

_local = threading.local()
_process_budget = InProcessBudget()


@cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context (certifi's CA bundle) for every client of the process: building one
    costs about 35 ms of CPU, which a pool of 24 threads paid 24 times (`bench/sync.py`).
    An `SSLContext` may be shared between threads."""
    return httpx.create_ssl_context()


def thread_http_client() -> httpx.Client:
    """This thread's reusable httpx client (connections kept alive between syncs)."""
    client = getattr(_local, "client", None)
    if client is None:
        client = httpx.Client(
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
            timeout=httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0),
            verify=_tls_context(),
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


#: Providers with a reseller API (`usage.providers.reseller.ResellerConnector`).
RESELLER_PROVIDERS = frozenset({Provider.IPFOXY})


class UpstreamStateError(ApplicationError):
    """The sub-account (or its upstream account) is in no state for this upstream
    operation: a 409 wherever it surfaces."""


#: The credentials a reseller API call signs with (IPFoxy's api-id and api-token).
_RESELLER_KEYS = ("api_id", "api_token")


def reseller_upstream_check(
    *, upstream_account: UpstreamAccount, credentials: bool = False
) -> None:
    """Raise `UpstreamStateError` unless `upstream_account`'s reseller API can be called:
    `provider_has_no_reseller_api` (BytesFlows: monitor-only), `upstream_account_inactive`,
    and with `credentials` also `upstream_credentials_missing` (no api-id or api-token
    stored). Sends nothing."""
    upstream = upstream_account
    if upstream.provider not in RESELLER_PROVIDERS:
        raise UpstreamStateError(
            "provider_has_no_reseller_api",
            f"{upstream.get_provider_display()} publishes no reseller API: its sub-accounts "
            "are monitored only (no allocations, no traffic counters on request).",
            extra={"provider": upstream.provider},
        )
    if not upstream.is_active:
        raise UpstreamStateError(
            "upstream_account_inactive",
            f"The upstream account {upstream.name!r} is switched off.",
            extra={"upstream_account": upstream.pk},
        )
    if credentials and not all((upstream.credentials or {}).get(k) for k in _RESELLER_KEYS):
        raise UpstreamStateError(
            "upstream_credentials_missing",
            f"The upstream account {upstream.name!r} has no api-id and api-token stored: "
            "add them before creating sub-accounts on it.",
            extra={"upstream_account": upstream.pk},
        )


def reseller_api_check(*, sub_account: SubAccount) -> None:
    """Raise `UpstreamStateError` unless `sub_account`'s reseller API can be called:
    `reseller_upstream_check` on its upstream account, then `upstream_id_invalid` (not an
    account name IPFoxy accepts). Sends nothing."""
    reseller_upstream_check(upstream_account=sub_account.upstream_account)
    try:
        check_account(sub_account.upstream_id)
    except ValueError:
        raise UpstreamStateError(
            "upstream_id_invalid",
            f"The upstream id {sub_account.upstream_id[:40]!r} is not an account name IPFoxy "
            "accepts.",
            extra={"upstream_id": sub_account.upstream_id[:40]},
        ) from None


def reseller_connector_for_sub_account(
    *, sub_account: SubAccount, client: httpx.Client | None = None
) -> ResellerConnector:
    """The connector for `sub_account`'s reseller API (allocations, traffic counters), after
    `reseller_api_check`. Building it sends nothing; missing credentials raise `AuthError`."""
    reseller_api_check(sub_account=sub_account)
    connector = connector_for_upstream_account(
        upstream_account=sub_account.upstream_account, client=client
    )
    assert isinstance(connector, ResellerConnector), "RESELLER_PROVIDERS names a reader only"
    return connector
