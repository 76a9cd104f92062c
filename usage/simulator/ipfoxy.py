"""IPFoxy's open API as published: `get-account-use-flow-list` and `get-sub-account-list`
(the reseller endpoints are in `ipfoxy_reseller.py`), and the envelope and gate they share.

Errors are HTTP 200 with `{"code": ..., "msg": ..., "data": null}`: 60400 bad parameter,
60401 authentication failed, 60300 insufficient traffic in the main account (writes),
50000 rate limited (60 accepted requests per rolling minute per api-id, all endpoints
together), 60500 service error (fault only).

A provisioned sub-account (see `consumption.py`) reports what it really consumed; any other
account name reports the synthetic traffic of `traffic.py`.
"""

from __future__ import annotations

import json
from typing import Any

from usage.simulator import traffic
from usage.simulator.consumption import SubAccount
from usage.simulator.faults import FLOW_LIST, SUB_ACCOUNTS
from usage.simulator.state import Request, Response, SimState
from usage.simulator.traffic import DAY, HOUR

MESSAGES = {
    50000: "Too many requests, please try again later",
    60300: "Insufficient balance",
    60400: "Parameter error",
    60401: "Authentication failed",
    60500: "Service error",
}


class ParamError(ValueError):
    pass


def json_response(payload: dict[str, Any], *, outcome: str = "ok") -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(200, body, outcome=outcome)


def error(code: int, detail: str = "") -> Response:
    msg = MESSAGES[code] + (f": {detail}" if detail else "")
    return json_response({"code": code, "msg": msg, "data": None}, outcome=f"code_{code}")


def success(data: dict[str, Any]) -> Response:
    return json_response({"data": data, "code": 0, "msg": "Success"})


def _int_param(query: dict[str, str], name: str, *, default: int | None = None) -> int:
    raw = query.get(name, "")
    if raw == "":
        if default is None:
            raise ParamError(f"{name} is required")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ParamError(f"{name} must be an integer") from None


def _paging(query: dict[str, str]) -> tuple[int, int]:
    page = _int_param(query, "page", default=1)
    page_size = _int_param(query, "page_size", default=20)
    if page < 1:
        raise ParamError("page must be at least 1")
    if not 10 <= page_size <= 100:
        raise ParamError("page_size must be between 10 and 100")
    return page, page_size


def gate(state: SimState, request: Request, endpoint: str, account: str | None) -> Response | None:
    """Authentication, the rate limit and business-code faults, in the upstream's order."""
    api_id = request.headers.get("api-id", "")
    token = request.headers.get("api-token", "")
    expected = state.ipfoxy_keys.get(api_id)
    if not api_id or expected is None or token != expected:
        return error(60401)
    if not state.limiter.allow(api_id, state.clock.now()):
        state.stats.record_trip(api_id)
        response = error(50000)
        response.outcome = "rate_limited"
        return response
    if state.faults.fires("code_50000", endpoint=endpoint, account=account):
        return error(50000)
    if state.faults.fires("code_60500", endpoint=endpoint, account=account):
        return error(60500)
    return None


def flow_list(state: SimState, request: Request) -> Response:
    query = request.query
    account = query.get("account") or None
    refused = gate(state, request, FLOW_LIST, account)
    if refused is not None:
        return refused
    now = int(state.clock.now())
    try:
        if account is None:
            raise ParamError("account is required")
        start = _int_param(query, "start_time")
        end = _int_param(query, "end_time")
        unit = _int_param(query, "unit")
        page, page_size = _paging(query)
        _int_param(query, "timezone_offset", default=0)  # accepted, meaning unpublished
        if unit not in (1, 2):
            raise ParamError("unit must be 1 (hour) or 2 (day)")
        if start < now - state.config.ipfoxy_lookback_days * DAY:
            raise ParamError(f"start_time must be within {state.config.ipfoxy_lookback_days} days")
        if end < start:
            raise ParamError("end_time must not be before start_time")
    except ParamError as exc:
        return error(60400, str(exc))

    revised = state.account_revisions(account)
    provisioned = state.book.snapshot(account, now)
    if unit == 1:
        starts = state.hourly_rows(account, start, end, now)
        step = HOUR

        def value(bucket: int) -> int:
            if provisioned is not None:
                return provisioned.hours.get(bucket, 0)
            return state.hour_value(account, bucket, now, revised)

        def label(bucket: int) -> str:
            return traffic.local_label(bucket)
    else:
        starts = state.daily_rows(start, end, now)
        step = 1

        def value(bucket: int) -> int:
            if provisioned is not None:
                first = traffic.local_day_start(bucket)
                return sum(provisioned.hours.get(h, 0) for h in range(first, first + DAY, HOUR))
            return state.day_value(account, bucket, now, revised)

        def label(bucket: int) -> str:
            return traffic.local_label(traffic.local_day_start(bucket))

    if state.faults.fires("count_changes", endpoint=FLOW_LIST, account=account):
        # A bucket newer than the rest appeared while the client was paging.
        starts.insert(0, (starts[0] if starts else end // HOUR * HOUR) + step)
    offset = (page - 1) * page_size
    if state.config.ipfoxy_omit_zero_buckets:
        rows = [(b, v) for b in starts if (v := value(b)) != 0]
        count = len(rows)
        page_rows = rows[offset : offset + page_size]
    else:
        count = len(starts)
        page_rows = [(b, value(b)) for b in starts[offset : offset + page_size]]
    items: list[dict[str, str]] = [
        {"date": label(b), "account": account, "flow": traffic.format_centi(v)}
        for b, v in page_rows
    ]
    _row_faults(state, items, account)
    if state.faults.fires("count_mismatch", endpoint=FLOW_LIST, account=account):
        count += 3
    return success({"list": items, "unit": "MB", "count": str(count), "timezone": "+08:00"})


def _row_faults(state: SimState, items: list[dict[str, str]], account: str) -> None:
    if not items:
        return
    first = items[0]
    if state.faults.fires("negative_flow", endpoint=FLOW_LIST, account=account):
        first["flow"] = "-" + (first["flow"] if first["flow"] != "0" else "1.5")
    if state.faults.fires("non_numeric_flow", endpoint=FLOW_LIST, account=account):
        first["flow"] = "N/A"
    if state.faults.fires("missing_flow", endpoint=FLOW_LIST, account=account):
        first.pop("flow", None)
    if state.faults.fires("foreign_rows", endpoint=FLOW_LIST, account=account):
        first["account"] = account + "-OTHER"
    if state.faults.fires("duplicate_rows", endpoint=FLOW_LIST, account=account):
        items.insert(1, dict(first))


def sub_account_list(state: SimState, request: Request) -> Response:
    refused = gate(state, request, SUB_ACCOUNTS, None)
    if refused is not None:
        return refused
    try:
        page, page_size = _paging(request.query)
    except ParamError as exc:
        return error(60400, str(exc))
    api_id = request.headers["api-id"]
    now = int(state.clock.now())
    legacy = (state.config.ipfoxy_main_account, *state.sub_accounts)
    provisioned = state.book.owned(api_id)
    wanted = request.query.get("account") or None
    if wanted is not None:
        kind = state.book.kind(api_id, wanted)
        legacy = (wanted,) if kind == "legacy" else ()
        provisioned = [wanted] if kind == "provisioned" else []
    offset = (page - 1) * page_size
    names = [*legacy[offset : offset + page_size]]
    names += provisioned[max(0, offset - len(legacy)) : offset + page_size - len(legacy)]
    rows = [sub_account_row(state, api_id, name, now) for name in names]
    total = len(legacy) + len(provisioned)
    if state.faults.fires("count_mismatch", endpoint=SUB_ACCOUNTS, account=None):
        total += 3
    return success({"list": rows, "total": str(total)})


def _legacy(state: SimState, api_id: str, name: str, now: int):
    """(profile, used, surplus centi-MB) of a configured sub-account; the main account's
    surplus is the api-id's pool (what it can still allocate)."""
    is_main = name == state.config.ipfoxy_main_account
    profile = traffic.sub_account_profile(
        state.seed, name, anchor_day=state.anchor_day, is_main=is_main
    )
    used = state.cumulative_centi(name, profile.created, now)
    if is_main:
        return profile, used, state.book.pool_remaining(api_id)
    return profile, used, max(0, profile.package_centi + state.book.override(name).extra - used)


def legacy_counters(state: SimState, api_id: str, name: str, now: int) -> tuple[int, int]:
    """(used, surplus) centi-MB of a configured sub-account (see `_legacy`)."""
    _, used, surplus = _legacy(state, api_id, name, now)
    return used, surplus


def sub_account_row(state: SimState, api_id: str, name: str, now: int) -> dict[str, Any]:
    sub = state.book.snapshot(name, now)
    if sub is not None:
        return _row(sub, sub.used, sub.surplus, is_main=False)
    profile, used, surplus = _legacy(state, api_id, name, now)
    override = state.book.override(name)
    password = override.password or "Sim" + str(traffic.mix(state.seed, "pw", name))[:10]
    legacy = SubAccount(
        name, "", password, password, created=profile.created, settled_at=now,
        whitelist=override.whitelist, status=1 if profile.enabled else 2,
    )  # fmt: skip
    is_main = name == state.config.ipfoxy_main_account
    return _row(legacy, used, surplus, is_main=is_main, expires=profile.expires)


def _row(
    sub: SubAccount, used: int, surplus: int, *, is_main: bool, expires: int | None = None
) -> dict[str, Any]:
    return {
        "account": sub.name,
        "password": sub.password,
        "status": sub.status,
        "use_flow": traffic.centi_mb_to_kb(used),
        "surplus_flow": traffic.centi_mb_to_kb(surplus),
        "ip_whitelist": ",".join(sub.whitelist),
        "is_main": 1 if is_main else 2,
        "created_time": traffic.local_label(sub.created, with_minutes=True),
        "ex_time": traffic.local_label(expires or sub.ex_time, with_minutes=True),
        "unit": "KB",
    }
