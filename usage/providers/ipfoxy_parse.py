"""IPFoxy answers, validated: pure functions over decoded JSON, testable without HTTP.

Every doubt raises BadResponseError naming the field; business codes map to typed errors.
Conversions: `flow` is MB text, bytes = Decimal(flow) * mb_bytes rounded half up to the
nearest byte; sub-account `use_flow`/`surplus_flow` are KB text, 1 KB = `kb_bytes` bytes
(default mb_bytes / 1024), rounded the same way. Labels are wall times in the echoed
`timezone` (any ±HH:MM). An `ex_time` of 2147483647 (IPFoxy's "never") reads as None.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from usage.providers import parsing as p
from usage.providers.base import (
    AuthError,
    DiscoveredSubAccount,
    HourlyUsage,
    InsufficientBalanceError,
    ParameterError,
    RateLimitedError,
    RetryableRefusalError,
    TransientError,
    UnknownCodeError,
    UpstreamError,
)

# Sub-account dates without a timezone of their own are IPFoxy's local time.
IPFOXY_LOCAL = dt.timezone(dt.timedelta(hours=8))
NEVER_EXPIRES = dt.datetime.fromtimestamp(2_147_483_647, dt.UTC)

IPFOXY_ERRORS: dict[int, type[UpstreamError]] = {
    60400: ParameterError,
    60401: AuthError,
    60300: InsufficientBalanceError,
    60500: TransientError,
    10086: TransientError,  # "request error": retried a few times, then fails
    8700: RetryableRefusalError,  # "order failed, suggest retrying": nothing applied
    50000: RateLimitedError,
}


def kb_ratio(mb_bytes: int, kb_bytes: int | None) -> tuple[int, int]:
    """(numerator, denominator) of one KB in bytes: `kb_bytes`, else mb_bytes / 1024."""
    return (kb_bytes, 1) if kb_bytes is not None else (mb_bytes, 1024)


def kb_to_bytes(value: Any, name: str, ratio: tuple[int, int], context: dict) -> tuple[int, str]:
    """A KB amount (text or number) as (bytes rounded half up, the raw text)."""
    amount, raw = p.amount(value, name, context)
    return p.to_bytes(amount, numerator=ratio[0], denominator=ratio[1]), str(raw)


def check_body(payload: Any, context: dict[str, Any]) -> Any:
    """Return `data` of a `"code": 0` body; raise the typed error of any other code."""
    body = p.mapping(payload, "body", context)
    code = p.business_code(body.get("code"), context)
    if code == 0:
        return body.get("data")
    msg = body.get("msg")
    ctx = {**context, "upstream_code": code, "upstream_msg": str(msg)[:200] if msg else ""}
    cls = IPFOXY_ERRORS.get(code, UnknownCodeError)
    if cls is RateLimitedError:
        raise RateLimitedError("IPFoxy rate limit (50000)", wait_for_next_minute=True, context=ctx)
    label = {AuthError: "IPFoxy authentication failed"}.get(cls, f"IPFoxy error code {code}")
    raise cls(label, context=ctx)


@dataclass(frozen=True)
class FlowPage:
    count: int
    rows: tuple[HourlyUsage, ...]


def parse_flow_page(
    data: Any, *, account: str, mb_bytes: int, context: dict[str, Any] | None = None
) -> FlowPage:
    """Validate one page of `get-account-use-flow-list` (`data` of the body).

    Rows of the shape IPFoxy sends (a label "YYYY-MM-DD HH:MM:SS", `flow` as decimal text)
    take a fast path: the label's UTC hour comes from a cache shared across pages and
    sub-accounts (every sub-account reports the same 72 labels), `flow` is converted by
    integer arithmetic. Any other row goes through `_flow_row`, the strict per-field path,
    which accepts or refuses it with the same result and message as always."""
    ctx = dict(context or {})
    data = p.mapping(data, "data", ctx)
    total = p.count(data.get("count"), "count", ctx)
    rows = p.sequence(data.get("list"), "list", ctx)
    if not rows:
        return FlowPage(count=total, rows=())
    tz = p.utc_offset(data.get("timezone"), "timezone", ctx)
    unit = data.get("unit", "MB")
    if not isinstance(unit, str) or unit.strip().upper() != "MB":
        raise p.bad(f"unexpected `unit` {str(unit)[:20]!r} (expected MB)", ctx)
    out = []
    append = out.append
    hours = _hour_cache.get(tz, {})
    for i, row in enumerate(rows):
        if type(row) is dict and row.get("account") == account:
            label, flow = row.get("date"), row.get("flow")
            hour = hours.get(label) if type(label) is str else None
            if hour is not None and type(flow) is str:
                nbytes = p.decimal_text_to_bytes(flow, mb_bytes)
                if nbytes is not None:
                    append(_new_tuple(HourlyUsage, (hour, nbytes, flow, "MB")))
                    continue
        append(_flow_row(row, i, account=account, tz=tz, mb_bytes=mb_bytes, ctx=ctx))
    return FlowPage(count=total, rows=tuple(out))


#: How a named tuple's `_make` builds one, without the Python-level `__new__` of keyword
#: arguments: 72 per sync.
_new_tuple = tuple.__new__

#: offset -> label -> the UTC hour it starts, for labels that passed the strict path.
_hour_cache: dict[dt.timezone, dict[str, dt.datetime]] = {}
_HOUR_CACHE_MAX = 100_000  # labels per offset


def _flow_row(
    row: Any, i: int, *, account: str, tz: dt.timezone, mb_bytes: int, ctx: dict[str, Any]
) -> HourlyUsage:
    """One row, every field checked on its own (remembering a good label's hour)."""
    row_ctx = {**ctx, "row": i}
    row = p.mapping(row, "list[]", row_ctx)
    if row.get("account") != account:
        raise p.bad("row belongs to another account", row_ctx)
    label = row.get("date")
    hour = p.local_time(label, "date", tz, row_ctx)
    if hour.minute or hour.second or hour.microsecond:
        raise p.bad("bucket does not start on a UTC hour", row_ctx)
    value, raw = p.amount(row.get("flow"), "flow", row_ctx)
    labels = _hour_cache.setdefault(tz, {})
    if len(labels) >= _HOUR_CACHE_MAX:
        labels.clear()
    labels[label] = hour
    return HourlyUsage(hour, p.to_bytes(value, numerator=mb_bytes), raw, "MB")


def merge_buckets(
    into: dict[dt.datetime, HourlyUsage], rows: tuple[HourlyUsage, ...], ctx: dict
) -> int:
    """Add rows by hour: identical duplicates are dropped, conflicting ones are refused.
    Returns how many hours were new."""
    added = 0
    for row in rows:
        seen = into.get(row.hour_start)
        if seen is None:
            into[row.hour_start] = row
            added += 1
        elif seen.bytes != row.bytes:
            raise p.bad(f"conflicting duplicate bucket {row.hour_start.isoformat()}", ctx)
    return added


def parse_sub_account_page(
    data: Any,
    *,
    mb_bytes: int,
    kb_bytes: int | None = None,
    context: dict[str, Any] | None = None,
) -> tuple[int, list[DiscoveredSubAccount]]:
    """Validate one page of `get-sub-account-list`: (total, rows). Flows are KB strings
    (`kb_ratio`), rounded half up. Dates may be unix seconds or "YYYY-MM-DD HH:MM:SS" in the
    echoed `timezone` (default +08:00, IPFoxy's local time). `password` and `ip_whitelist`
    are optional (older answers lack them)."""
    ctx = dict(context or {})
    data = p.mapping(data, "data", ctx)
    total = p.count(data.get("total"), "total", ctx)
    rows = p.sequence(data.get("list"), "list", ctx)
    tz = IPFOXY_LOCAL
    if data.get("timezone") is not None:
        tz = p.utc_offset(data.get("timezone"), "timezone", ctx)
    ratio = kb_ratio(mb_bytes, kb_bytes)
    out = []
    for i, row in enumerate(rows):
        row_ctx = {**ctx, "row": i}
        row = p.mapping(row, "list[]", row_ctx)
        expires = p.optional_time(row.get("ex_time"), "ex_time", tz, row_ctx)
        password = row.get("password")
        whitelist = row.get("ip_whitelist") or ""
        if not isinstance(whitelist, str):
            raise p.bad("`ip_whitelist` is not a string", row_ctx)
        out.append(
            DiscoveredSubAccount(
                upstream_id=p.text(row.get("account"), "account", row_ctx),
                enabled=p.count(row.get("status"), "status", row_ctx) == 1,
                is_main=p.count(row.get("is_main", 0), "is_main", row_ctx) == 1,
                used_bytes=kb_to_bytes(row.get("use_flow"), "use_flow", ratio, row_ctx)[0],
                remaining_bytes=kb_to_bytes(
                    row.get("surplus_flow"), "surplus_flow", ratio, row_ctx
                )[0],
                created_at=p.optional_time(row.get("created_time"), "created_time", tz, row_ctx),
                expires_at=None if expires == NEVER_EXPIRES else expires,
                password=None if password in (None, "") else p.text(password, "password", row_ctx),
                ip_whitelist=tuple(ip.strip() for ip in whitelist.split(",") if ip.strip()),
            )
        )
    return total, out
