"""IPFoxy's reseller endpoints as published (../shared/upstream/ipfoxy-reseller-endpoints.md).

Writes (POST, form-data: multipart or urlencoded): `create-sub-account` (`account`,
`password`, `flow` MB, `idempotency_key`, `day`) -> `{account, password}`;
`allocate-flow-sub-account` (`account`, `flow`, `idempotency_key`, `day`) -> `{}`;
`update-pass` (`account`, `password`) -> `{}`; `update-ip-whitelist` (`account`, `ip`
comma-separated, "" clears) -> `{}`. Reads (GET): `get-sub-account-flow` (`account`) ->
`surplus_flow`, `use_flow` KB strings from a one-minute cache; `residential-data`
(optional `account`) -> the main account's pool, or a sub-account's traffic, in MB.

Published rules: `account` and `password` 10-15 characters, `idempotency_key` 10-25, `day`
0/30/90/180/360. The simulator's guesses where the docs are silent (stricter is safer):
new account names and passwords are ASCII letters and digits (the other endpoints take any
existing account, the configured ones are shorter), keys also allow `-` and `_`;
`flow` is a whole number of MB up to 1,000,000,000 (create may give 0, allocate at least
1); `ip` holds at most 20 addresses; every listed parameter is required; `proxy_type` is
accepted and ignored. State and idempotency live in `provisioning.py`, consumption in
`consumption.py`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from usage.simulator import traffic
from usage.simulator.consumption import NEVER
from usage.simulator.faults import (
    ALLOCATE_FLOW,
    CREATE_SUB_ACCOUNT,
    RESIDENTIAL_DATA,
    SUB_ACCOUNT_FLOW,
    UPDATE_PASS,
    UPDATE_WHITELIST,
)
from usage.simulator.ipfoxy import ParamError, error, gate, legacy_counters, success
from usage.simulator.provisioning import EXPIRY_DAYS, RefusedError
from usage.simulator.state import Request, Response, SimState

NAME = re.compile(r"[A-Za-z0-9]{10,15}")
EXISTING = re.compile(r"[A-Za-z0-9_-]{1,64}")  # any listed account (the configured are shorter)
KEY = re.compile(r"[A-Za-z0-9_-]{10,25}")
DIGITS = re.compile(r"[0-9]{1,10}")
MAX_FLOW_MB = 1_000_000_000
MAX_WHITELIST = 20


def _text(form: dict[str, str], name: str, pattern: re.Pattern[str], rule: str) -> str:
    value = form.get(name)
    if value is None or value == "":
        raise ParamError(f"{name} is required")
    if not pattern.fullmatch(value):
        raise ParamError(f"{name} must be {rule}")
    return value


def _new_account(form: dict[str, str]) -> str:
    return _text(form, "account", NAME, "10-15 letters or digits")


def _account(form: dict[str, str]) -> str:
    return _text(form, "account", EXISTING, "an account name")


def _password(form: dict[str, str]) -> str:
    return _text(form, "password", NAME, "10-15 letters or digits")


def _key(form: dict[str, str]) -> str:
    return _text(form, "idempotency_key", KEY, "10-25 letters, digits, - or _")


def _flow(form: dict[str, str], minimum: int) -> int:
    value = int(_text(form, "flow", DIGITS, "a whole number of MB"))
    if not minimum <= value <= MAX_FLOW_MB:
        raise ParamError(f"flow must be between {minimum} and {MAX_FLOW_MB} MB")
    return value


def _day(form: dict[str, str]) -> int:
    value = int(_text(form, "day", DIGITS, "one of 0, 30, 90, 180, 360"))
    if value not in EXPIRY_DAYS:
        raise ParamError("day must be one of 0, 30, 90, 180, 360")
    return value


def _ips(form: dict[str, str]) -> tuple[str, ...]:
    raw = form.get("ip")
    if raw is None:
        raise ParamError("ip is required")
    ips: list[str] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            ip = str(ipaddress.ip_address(part))
        except ValueError:
            raise ParamError(f"ip {part[:45]!r} is not an IP address") from None
        if ip not in ips:
            ips.append(ip)
    if len(ips) > MAX_WHITELIST:
        raise ParamError(f"at most {MAX_WHITELIST} IP addresses")
    return tuple(ips)


Handler = Callable[[SimState, str, str | None, dict[str, str], int], dict[str, Any]]


def _serve(state: SimState, request: Request, endpoint: str, handler: Handler) -> Response:
    """Gate (auth, rate limit, code faults), then the handler; refusals become codes."""
    params = request.form if request.method == "POST" else request.query
    account = params.get("account") or None
    refused = gate(state, request, endpoint, account)
    if refused is not None:
        return refused
    try:
        data = handler(state, request.headers["api-id"], account, params, int(state.clock.now()))
    except ParamError as exc:
        return error(60400, str(exc))
    except RefusedError as exc:
        return error(exc.code, exc.detail)
    return success(data)


# ---------------------------------------------------------------------- writes


def _create(state: SimState, api_id: str, _, form: dict[str, str], now: int) -> dict[str, Any]:
    return state.book.create(
        api_id, account=_new_account(form), password=_password(form), flow_mb=_flow(form, 0),
        key=_key(form), day=_day(form), now=now,
    )  # fmt: skip


def _allocate(state: SimState, api_id: str, _, form: dict[str, str], now: int) -> dict[str, Any]:
    return state.book.allocate(
        api_id, account=_account(form), flow_mb=_flow(form, 1), key=_key(form), day=_day(form),
        now=now,
    )  # fmt: skip


def _update_pass(state: SimState, api_id: str, _, form: dict[str, str], now: int) -> dict:
    state.book.update_password(api_id, account=_account(form), password=_password(form), now=now)
    return {}


def _update_whitelist(state: SimState, api_id: str, _, form: dict[str, str], now: int) -> dict:
    state.book.update_whitelist(api_id, account=_account(form), ips=_ips(form), now=now)
    return {}


# ---------------------------------------------------------------------- reads


def _counters(state: SimState, api_id: str, account: str, now: int) -> tuple[int, int]:
    """(used, surplus) centi-MB of an account this api-id may read, else 60400."""
    kind = state.book.kind(api_id, account)
    if kind == "legacy":
        return legacy_counters(state, api_id, account, now)
    sub = state.book.snapshot(account, now) if kind == "provisioned" else None
    if sub is None:
        raise RefusedError(60400, "account not found")
    return sub.used, sub.surplus


def _flow_answer(state: SimState, api_id: str, account: str | None, _, now: int) -> dict:
    if account is None:
        raise ParamError("account is required")
    if state.book.kind(api_id, account) is None:  # before the cache, which is keyed by account
        raise RefusedError(60400, "account not found")

    def compute() -> dict[str, str]:
        used, surplus = _counters(state, api_id, account, now)
        return {
            "surplus_flow": traffic.centi_mb_to_kb(surplus),
            "use_flow": traffic.centi_mb_to_kb(used),
            "mob_surplus_flow": "0",
            "mob_use_flow": "0",
            "unit": "KB",
        }

    return state.book.cached_flow(account, now, compute)


def _residential_answer(state: SimState, api_id: str, account: str | None, _, now: int) -> dict:
    if account is None or account == state.config.ipfoxy_main_account:
        total, remain = state.book.pool_total(api_id), state.book.pool_remaining(api_id)
    else:
        used, remain = _counters(state, api_id, account, now)
        total = used + remain
    return {
        "query_time": str(now),
        "expire_time": str(NEVER),
        "total_mb": traffic.format_centi(total),
        "remain_mb": traffic.format_centi(remain),
    }


HANDLERS: dict[str, Handler] = {
    CREATE_SUB_ACCOUNT: _create,
    ALLOCATE_FLOW: _allocate,
    UPDATE_PASS: _update_pass,
    UPDATE_WHITELIST: _update_whitelist,
    SUB_ACCOUNT_FLOW: _flow_answer,
    RESIDENTIAL_DATA: _residential_answer,
}


def handle(state: SimState, request: Request, endpoint: str) -> Response:
    return _serve(state, request, endpoint, HANDLERS[endpoint])
