"""BytesFlows' traffic API as published: `/api/v1/dashboard/asset` and
`/api/v1/user/traffic/records`.

`Authorization: Bearer <token>` (or a `token` cookie). An unknown or expired token is HTTP
401 `{"code": 401, "msg": "token expired"}`. Success is `"code": 200`, traffic in integer
bytes, times "YYYY-MM-DD HH:MM:SS" in UTC. Bad paging parameters answer HTTP 200 with
`{"code": 400}` (unpublished; a guess at the upstream's behaviour).
"""

from __future__ import annotations

import json
from typing import Any

from usage.simulator import traffic
from usage.simulator.faults import ASSET, RECORDS
from usage.simulator.state import Request, Response, SimState

UNAUTHORIZED = {"code": 401, "msg": "token expired", "data": None}
BALANCE_PLACEHOLDER = "__balance__"


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for part in request.headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "token" and value:
            return value
    return None


def resolve_account(state: SimState, request: Request) -> str | None:
    """The account a request acts for, or None when the token is missing/unknown/expired."""
    token = bearer_token(request)
    if token is None:
        return None
    account, expired = state.token_account(token)
    return None if expired else account


def _json(payload: dict[str, Any], *, status: int = 200, outcome: str = "ok") -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), outcome=outcome)


def unauthorized() -> Response:
    return _json(UNAUTHORIZED, status=401, outcome="http_401")


def _used(
    state: SimState, account: str, endpoint: str, now: int
) -> list[tuple[traffic.Grant, int]]:
    """Visible grants with their `trafficUsed`, one of them read low under the
    `counter_backwards` fault."""
    grants = traffic.account_grants(state.seed, account, state.anchor_epoch)
    visible = [(g, g.used_at(now)) for g in grants if g.created <= now]
    if state.faults.fires("counter_backwards", endpoint=endpoint, account=account):
        for i, (grant, used) in enumerate(visible):
            if used > 0:
                visible[i] = (grant, used - max(1, used // 10))
                break
    return visible


def asset(state: SimState, request: Request, account: str | None) -> Response:
    if account is None:
        return unauthorized()
    now = int(state.clock.now())
    active = [(g, u) for g, u in _used(state, account, ASSET, now) if g.active_at(now)]
    total = sum(g.traffic for g, _ in active)
    balance = traffic.account_balance(state.seed, account)
    payload = {
        "code": 200,
        "msg": "success",
        "data": {
            "totalTraffic": total,
            "dynamicTraffic": total - sum(u for _, u in active),
            "balance": BALANCE_PLACEHOLDER,
            "currency": "USD",
        },
    }
    body = json.dumps(payload, separators=(",", ":"))
    # A JSON number with its two decimals ("0.00"), as published; json cannot emit Decimal.
    body = body.replace(json.dumps(BALANCE_PLACEHOLDER), f"{balance:.2f}")
    return Response(200, body.encode())


def records(state: SimState, request: Request, account: str | None) -> Response:
    if account is None:
        return unauthorized()
    query = request.query
    try:
        page_no = int(query.get("pageNo") or 1)
        page_size = int(query.get("pageSize") or 10)
    except ValueError:
        return _json({"code": 400, "msg": "invalid parameter", "data": None}, outcome="code_400")
    source_type = query.get("sourceType") or None
    if page_no < 1 or page_size < 1 or source_type not in (None, "order", "sign"):
        return _json({"code": 400, "msg": "invalid parameter", "data": None}, outcome="code_400")
    now = int(state.clock.now())
    rows = [
        {
            "id": grant.record_id,
            "orderId": grant.order_id,
            "sourceType": grant.source_type,
            "traffic": grant.traffic,
            "trafficUsed": used,
            "createTime": traffic.utc_label(grant.created),
            "expireTime": traffic.utc_label(grant.expires),
            "status": 1 if grant.active_at(now) else 0,
        }
        for grant, used in _used(state, account, RECORDS, now)
        if source_type is None or grant.source_type == source_type
    ]
    total = len(rows)
    offset = (page_no - 1) * page_size
    page = rows[offset : offset + page_size]
    if page and state.faults.fires("duplicate_rows", endpoint=RECORDS, account=account):
        page.insert(1, dict(page[0]))
    if state.faults.fires("count_mismatch", endpoint=RECORDS, account=account):
        total += 3
    return _json({"code": 200, "msg": "success", "data": {"records": page, "total": total}})
