"""The provider-agnostic contract between usage sync and the upstream connectors.

Connectors (`ipfoxy.py`, `bytesflows.py`) speak httpx and return the frozen dataclasses
below; they import neither Django models nor settings. Sync (`usage/services.py`) builds a
connector from an `UpstreamAccount` with `providers.build_connector(...)` and stores what it
returns.

Two metering styles exist:
- history providers (IPFoxy) report usage per hour: `fetch_hourly_usage` returns buckets;
- ledger providers (BytesFlows) report only counters: `fetch_ledger` returns a snapshot,
  and sync derives hourly usage from the difference between successive snapshots.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, runtime_checkable

# --------------------------------------------------------------------------- errors


class UpstreamError(Exception):
    """Base of every connector error. `context` describes the request, never credentials.

    `code` is a stable snake_case identifier stored on the SyncRun (`upstream_auth_failed`).
    """

    code = "upstream_error"
    retryable = False
    retry_after: float | None = None  # seconds the upstream asked us to wait (Retry-After)
    #: For a write: whether the upstream may have applied it despite this error (the request
    #: left and no definitive refusal came back). False for refusals and unsent requests.
    may_have_applied = True
    #: For a write retried with its idempotency key: a refusal that proves no earlier attempt
    #: was applied either (the upstream would have replayed that attempt's success).
    definitive = False

    def __init__(self, message: str, *, context: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.context = dict(context or {})

    def __str__(self) -> str:
        ctx = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
        return f"{self.message} ({ctx})" if ctx else self.message


class AuthError(UpstreamError):
    """Credentials refused (IPFoxy 60401, BytesFlows 401/expired token). Never retried."""

    code = "upstream_auth_failed"
    may_have_applied = False


class UrlNotAllowedError(UpstreamError):
    """The base URL is not one credentials may be sent to (scheme, user info, or a host off
    the provider's allowlist). Nothing was sent; never retried."""

    code = "upstream_url_not_allowed"
    may_have_applied = False


class ParameterError(UpstreamError):
    """The upstream refused a parameter (IPFoxy 60400; also an idempotency key reused with
    other parameters). Never retried."""

    code = "upstream_bad_parameter"
    may_have_applied = False
    definitive = True


class RateLimitedError(UpstreamError):
    """HTTP 429 or IPFoxy 50000. Retried after `retry_after` seconds."""

    code = "upstream_rate_limited"
    retryable = True
    may_have_applied = False

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        wait_for_next_minute: bool = False,
        **kwargs: Any,
    ):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        # IPFoxy's 50000 counts per calendar minute: without Retry-After, the transport
        # waits for the next minute boundary instead of a short backoff.
        self.wait_for_next_minute = wait_for_next_minute


class BudgetExhaustedError(RateLimitedError):
    """Our own request budget had no token within the allowed wait: nothing was sent."""

    code = "request_budget_exhausted"


class TransientError(UpstreamError):
    """Connection errors, timeouts, 5xx, IPFoxy 60500 / 10086. Retried with backoff.

    `may_have_applied` is False on an instance when the request never left (connection
    refused, connect timeout, no pooled connection)."""

    code = "upstream_unavailable"
    retryable = True


class RetryableRefusalError(TransientError):
    """The upstream refused a write and suggests retrying (IPFoxy 8700 "order failed"):
    nothing was applied. Retried with backoff, with the same idempotency key."""

    may_have_applied = False


class BadResponseError(UpstreamError):
    """The answer cannot be trusted: not JSON, HTML, missing or non-numeric fields,
    negative traffic, rows of another account, a count that disagrees."""

    code = "upstream_bad_response"


class UnreadableResponseError(BadResponseError):
    """The body is not JSON at all: an HTML error page from a proxy in front of the upstream,
    or a body cut short. Usually a passing condition, so it is retried like a 5xx; when it
    lasts, it fails the sync as a bad response (same code)."""

    retryable = True


class UnknownCodeError(UpstreamError):
    """A well-formed answer with a business code we do not know."""

    code = "upstream_unknown_code"


class InsufficientBalanceError(UpstreamError):
    """IPFoxy 60300: the reseller's upstream balance (main-account traffic) is exhausted.
    Never retried."""

    code = "upstream_insufficient_balance"
    may_have_applied = False
    definitive = True


class OutcomeUnknownError(UpstreamError):
    """A write may or may not have been applied: an attempt timed out or lost its connection
    after sending, got a 5xx or an unreadable answer, and no later attempt (same body, same
    idempotency key) settled it. Resend later with the SAME idempotency key, never a new one.
    `cause` is the last attempt's error; `context["idempotency_key"]` names the key."""

    code = "upstream_outcome_unknown"

    def __init__(self, message: str, *, cause: UpstreamError, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.cause = cause


# --------------------------------------------------------------------------- data


class HourlyUsage(NamedTuple):
    """Bytes used in the UTC hour starting at `hour_start` (aware, UTC, on the hour).

    A named tuple, not a frozen dataclass: a sync builds 72 of them per sub-account and a
    tuple is built in a third of the time (`bench/sync.py`)."""

    hour_start: dt.datetime
    bytes: int
    raw_value: str  # as the upstream sent it, e.g. "1453.16"
    raw_unit: str  # e.g. "MB"


@dataclass(frozen=True)
class UsageReport:
    """Hourly usage of one upstream sub-account over `[window_start, window_end)`."""

    upstream_id: str
    window_start: dt.datetime
    window_end: dt.datetime
    hours: tuple[HourlyUsage, ...]
    pages: int = 0
    requests: int = 0
    notes: tuple[str, ...] = ()  # e.g. "window clamped to the 90-day lookback"


@dataclass(frozen=True)
class DiscoveredSubAccount:
    """One row of IPFoxy's sub-account list (cumulative counters in bytes). `expires_at` is
    None when it never expires; `password` (the proxy password, kept out of repr) and
    `ip_whitelist` are there when the upstream sends them."""

    upstream_id: str
    enabled: bool
    is_main: bool
    used_bytes: int
    remaining_bytes: int
    created_at: dt.datetime | None
    expires_at: dt.datetime | None
    password: str | None = field(default=None, repr=False)
    ip_whitelist: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrantRecord:
    """One BytesFlows traffic grant (a purchase or reward) and how much of it is used."""

    record_id: str
    order_id: str
    source_type: str
    traffic: int
    traffic_used: int
    active: bool
    created_at: dt.datetime | None
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class LedgerSnapshot:
    """BytesFlows account counters at `taken_at` (bytes)."""

    taken_at: dt.datetime
    total_traffic: int
    available_traffic: int
    balance: Decimal
    currency: str
    records: tuple[GrantRecord, ...] = field(default_factory=tuple)
    pages: int = 0
    requests: int = 0


# --------------------------------------------------------------------------- connectors


@runtime_checkable
class HistoryConnector(Protocol):
    """A provider that reports usage per hour for a window (IPFoxy)."""

    provider: str

    def fetch_hourly_usage(
        self, *, upstream_id: str, start: dt.datetime, end: dt.datetime, now: dt.datetime
    ) -> UsageReport: ...

    def list_sub_accounts(self) -> list[DiscoveredSubAccount]: ...


@runtime_checkable
class LedgerConnector(Protocol):
    """A provider that reports only counters per account (BytesFlows)."""

    provider: str

    def fetch_ledger(self, *, credentials: dict[str, str], now: dt.datetime) -> LedgerSnapshot: ...
