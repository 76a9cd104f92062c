"""The contract for upstream writes (reseller provisioning and traffic allocation).

Only IPFoxy publishes a write API (`ipfoxy_reseller.py`, mixed into `IPFoxyConnector`).
BytesFlows sub-accounts stay monitor-only: its connector is not a `ResellerConnector`
(`isinstance(connector, ResellerConnector)` tells).

Exactly once: the writes that move traffic (`create_sub_account`, `allocate_flow`) take the
caller's `idempotency_key`, recorded before the call. The connector retries an uncertain
attempt only with that same key (`Transport.post_form` resends the identical form), and when
it cannot settle the outcome it raises `OutcomeUnknownError`: resend later with the SAME key,
never a new one. `update_password` and `update_ip_whitelist` are naturally idempotent.

Arguments breaking the published rules raise ValueError before anything is sent (a caller
bug, not an upstream answer): new account names and passwords 10-15 characters (other
calls take any existing name, 1-64 characters), keys 10-25, `day` one of 0 (never
expires), 30, 90, 180, 360, `flow_mb` a whole number of MB (create >= 0, allocate >= 1),
`page_size` 10-100.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from usage.providers.base import DiscoveredSubAccount

EXPIRY_DAYS = (0, 30, 90, 180, 360)
MAX_FLOW_MB = 1_000_000_000


def new_idempotency_key() -> str:
    """A fresh key for one logical write: 24 lower-case hex characters."""
    return secrets.token_hex(12)


_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def new_proxy_password(*, length: int) -> str:
    """A strong proxy password within IPFoxy's rules (10-15 characters): `length` random
    letters and digits, with at least one lower-case letter, one capital and one digit."""
    if not 10 <= length <= 15:
        raise ValueError(f"password length {length}: IPFoxy takes 10-15 characters")
    while True:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CreatedSubAccount:
    """`create-sub-account` succeeded (or replayed the earlier success of the same key)."""

    account: str
    password: str = field(repr=False)  # the proxy password: never in logs or reprs
    flow_mb: int
    allocated_bytes: int  # flow_mb * mb_bytes
    day: int  # expiry of the initial traffic in days, 0 = never
    idempotency_key: str
    attempts: int  # requests sent (> 1: a retry with the same key happened)


@dataclass(frozen=True)
class Allocation:
    """`allocate-flow-sub-account` succeeded (or replayed the same key's earlier success)."""

    account: str
    flow_mb: int
    bytes: int  # flow_mb * mb_bytes
    day: int
    idempotency_key: str
    attempts: int


@dataclass(frozen=True)
class WriteAck:
    """`update-pass` or `update-ip-whitelist` succeeded."""

    account: str
    attempts: int


@dataclass(frozen=True)
class SubAccountFlow:
    """`get-sub-account-flow`: counters in bytes, the raw KB strings kept. The upstream caches
    this answer up to `max_age`: right after an allocation it may not show it yet."""

    account: str
    used_bytes: int
    remaining_bytes: int
    raw_used: str
    raw_remaining: str
    raw_unit: str
    fetched_at: dt.datetime
    max_age: dt.timedelta


@dataclass(frozen=True)
class SubAccountPage:
    """One page of `get-sub-account-list` (`total` counts every row, main account included)."""

    page: int
    page_size: int
    total: int
    rows: tuple[DiscoveredSubAccount, ...]


@dataclass(frozen=True)
class PoolBalance:
    """`residential-data`: the main account's traffic (the pool allocations draw from) when
    `account` is None, else that sub-account's; bytes, with the raw MB strings."""

    account: str | None
    total_bytes: int
    remaining_bytes: int
    raw_total: str
    raw_remaining: str
    fetched_at: dt.datetime


# --------------------------------------------------------------------------- the protocol


@runtime_checkable
class ResellerConnector(Protocol):
    provider: str

    def create_sub_account(
        self, *, account: str, password: str, flow_mb: int, idempotency_key: str, day: int = 0
    ) -> CreatedSubAccount: ...

    def allocate_flow(
        self, *, account: str, flow_mb: int, idempotency_key: str, day: int = 0
    ) -> Allocation: ...

    def update_password(self, *, account: str, password: str) -> WriteAck: ...

    def update_ip_whitelist(self, *, account: str, ips: Sequence[str]) -> WriteAck: ...

    def sub_account_flow(self, *, account: str, priority: bool = True) -> SubAccountFlow: ...

    def sub_accounts_page(
        self, *, page: int = 1, page_size: int = 100, account: str | None = None
    ) -> SubAccountPage: ...

    def iter_sub_account_pages(self, *, page_size: int = 100) -> Iterator[SubAccountPage]: ...

    def iter_sub_accounts(self, *, page_size: int = 100) -> Iterator[DiscoveredSubAccount]: ...

    def pool_balance(self, *, account: str | None = None) -> PoolBalance: ...


# --------------------------------------------------------------------------- argument checks


def check_length(value: str, name: str, low: int, high: int) -> str:
    if not isinstance(value, str) or not low <= len(value) <= high or value != value.strip():
        raise ValueError(f"{name} must be {low}-{high} characters without surrounding spaces")
    return value


def check_new_account(account: str) -> str:
    return check_length(account, "account", 10, 15)


def check_account(account: str) -> str:
    return check_length(account, "account", 1, 64)


def check_password(password: str) -> str:
    return check_length(password, "password", 10, 15)


def check_key(key: str) -> str:
    return check_length(key, "idempotency_key", 10, 25)


def check_day(day: int) -> int:
    if isinstance(day, bool) or day not in EXPIRY_DAYS:
        raise ValueError(f"day must be one of {EXPIRY_DAYS} (0 = never expires)")
    return day


def check_flow_mb(flow_mb: int, *, minimum: int) -> int:
    if isinstance(flow_mb, bool) or not isinstance(flow_mb, int):
        raise ValueError("flow_mb must be a whole number of MB")
    if not minimum <= flow_mb <= MAX_FLOW_MB:
        raise ValueError(f"flow_mb must be between {minimum} and {MAX_FLOW_MB}")
    return flow_mb


def check_page(page: int, page_size: int) -> None:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValueError("page must be a positive integer")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 10 <= page_size <= 100:
        raise ValueError("page_size must be between 10 and 100")


def check_ips(ips: Sequence[str]) -> str:
    """The whitelist as IPFoxy wants it: comma-separated addresses ("" clears it)."""
    if isinstance(ips, str):
        raise ValueError("ips must be a sequence of addresses, not one string")
    out: list[str] = []
    for ip in ips:
        try:
            text = str(ipaddress.ip_address(str(ip).strip()))
        except ValueError:
            raise ValueError(f"not an IP address: {str(ip)[:45]!r}") from None
        if text not in out:
            out.append(text)
    return ",".join(out)
