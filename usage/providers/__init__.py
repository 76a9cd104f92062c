"""Upstream connectors, registered by provider name (a plain dict: no dynamic imports).

Sync calls `build_connector(...)` with an `UpstreamAccount`'s provider, base URL,
credentials and `mb_bytes`, a shared `httpx.Client`, and a `RequestBudget`; it gets an
IPFoxy `HistoryConnector` or a BytesFlows `LedgerConnector` back. The IPFoxy one is also a
`ResellerConnector` (`reseller.py`: provisioning writes that share the same budget, with
priority); BytesFlows publishes no write API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx

from usage.providers.base import AuthError, HistoryConnector, LedgerConnector
from usage.providers.bytesflows import AUTH_MESSAGE, BytesFlowsConnector
from usage.providers.ipfoxy import IPFoxyConnector
from usage.providers.ratelimit import RequestBudget
from usage.providers.transport import RetryPolicy, Transport

DEFAULT_REQUESTS_PER_MINUTE = 50  # IPFoxy allows 60; keep a margin for clock and latency


class UnknownProviderError(ValueError):
    """A provider name with no connector (a configuration error, not an upstream one)."""


def _transport(
    provider: str,
    *,
    base_url: str,
    client: httpx.Client,
    budget: RequestBudget,
    budget_key: str,
    retry: RetryPolicy | None,
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
    timeout: httpx.Timeout | None = None,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], Any] | None = None,
    rng: Any = None,
    auth_message: str = "upstream refused the credentials",
    allowed_hosts: Collection[str] | None = None,
) -> Transport:
    return Transport(
        provider=provider, base_url=base_url, client=client, budget=budget,
        budget_key=budget_key, per_minute=requests_per_minute, retry=retry, timeout=timeout,
        sleep=sleep, wall_clock=wall_clock, rng=rng, auth_message=auth_message,
        allowed_hosts=allowed_hosts,
    )  # fmt: skip


_TRANSPORT_OPTIONS = (
    "requests_per_minute", "timeout", "sleep", "wall_clock", "rng", "allowed_hosts",
)  # fmt: skip


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    transport = {k: options.pop(k) for k in _TRANSPORT_OPTIONS if k in options}
    return transport, options


def _build_ipfoxy(
    *, base_url, credentials, client, budget, budget_key, mb_bytes, retry, **options
) -> IPFoxyConnector:
    api_id, api_token = credentials.get("api_id"), credentials.get("api_token")
    if not api_id or not api_token:
        raise AuthError(
            "IPFoxy credentials need api_id and api_token", context={"provider": "ipfoxy"}
        )
    transport_options, rest = _split(options)
    transport = _transport(
        "ipfoxy", base_url=base_url, client=client, budget=budget, budget_key=budget_key,
        retry=retry, auth_message="IPFoxy authentication failed", **transport_options,
    )  # fmt: skip
    return IPFoxyConnector(
        transport=transport, api_id=api_id, api_token=api_token, mb_bytes=mb_bytes, **rest
    )


def _build_bytesflows(
    *, base_url, credentials, client, budget, budget_key, mb_bytes, retry, **options
) -> BytesFlowsConnector:
    # Tokens are per BytesFlows account and come with each fetch_ledger call; amounts are
    # bytes, so mb_bytes does not apply.
    transport_options, rest = _split(options)
    transport = _transport(
        "bytesflows", base_url=base_url, client=client, budget=budget, budget_key=budget_key,
        retry=retry, auth_message=AUTH_MESSAGE, **transport_options,
    )  # fmt: skip
    return BytesFlowsConnector(transport=transport, **rest)


CONNECTORS: dict[str, Callable[..., HistoryConnector | LedgerConnector]] = {
    "ipfoxy": _build_ipfoxy,
    "bytesflows": _build_bytesflows,
}


def build_connector(
    *,
    provider: str,
    base_url: str,
    credentials: Mapping[str, str],
    client: httpx.Client,
    budget: RequestBudget,
    budget_key: str,
    mb_bytes: int = 1_048_576,
    retry: RetryPolicy | None = None,
    **options: Any,
) -> HistoryConnector | LedgerConnector:
    """A connector for `provider`. Options: requests_per_minute (50), timeout (httpx.Timeout),
    allowed_hosts (the hosts the base URL may name; None checks only scheme and user info),
    sleep, wall_clock, rng (tests); IPFoxy: max_window_hours, max_restarts, kb_bytes
    (default mb_bytes / 1024), form_encoding ("multipart" | "urlencoded"); BytesFlows:
    record_timezone ("UTC"), max_restarts. Unknown options raise TypeError."""
    try:
        factory = CONNECTORS[provider]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise UnknownProviderError(f"unknown provider {provider!r} (known: {known})") from None
    return factory(
        base_url=base_url, credentials=credentials, client=client, budget=budget,
        budget_key=budget_key, mb_bytes=mb_bytes, retry=retry, **options,
    )  # fmt: skip
