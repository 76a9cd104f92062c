"""BytesFlows connector: one account's counters and grant ledger, per call.

Upstream facts (see /work/shared/upstream/bytesflows-traffic-api.md and issue 3):
- `Authorization: Bearer <token>`; each Flowbill sub-account on BytesFlows is its own
  BytesFlows account, so the token comes per call (`credentials["token"]`).
- Success is body `"code": 200`. HTTP 401/403 or body code 401/403 mean the token expired or
  is invalid: `AuthError("BytesFlows token expired or invalid")`, shown to staff as such and
  never turned into zero usage. Body codes 429 and 5xx are retried; others are unknown.
- Amounts are integer bytes. `balance` is a JSON number read as Decimal (the body is decoded
  with `parse_float=Decimal`, so no float ever appears).
- `createTime`/`expireTime` are wall times without a zone; they are read in the connector's
  `record_timezone` (default "UTC": the published API does not say, and UTC is the least
  surprising guess; set it per upstream account when the provider confirms otherwise).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from usage.providers import parsing as p
from usage.providers.base import (
    AuthError,
    BadResponseError,
    GrantRecord,
    LedgerSnapshot,
    RateLimitedError,
    TransientError,
    UnknownCodeError,
)
from usage.providers.transport import Transport, secrets_scrubbed

ASSET_PATH = "/api/v1/dashboard/asset"
RECORDS_PATH = "/api/v1/user/traffic/records"
PAGE_SIZE = 100
MAX_PAGES = 10_000
AUTH_MESSAGE = "BytesFlows token expired or invalid"


def check_body(payload: Any, context: dict[str, Any]) -> Any:
    """Return `data` of a `"code": 200` body; raise the typed error of any other code."""
    body = p.mapping(payload, "body", context)
    code = p.business_code(body.get("code"), context)
    if code == 200:
        return body.get("data")
    msg = body.get("msg")
    ctx = {**context, "upstream_code": code, "upstream_msg": str(msg)[:200] if msg else ""}
    if code in (401, 403):
        raise AuthError(AUTH_MESSAGE, context=ctx)
    if code == 429:
        raise RateLimitedError("BytesFlows rate limit (429)", context=ctx)
    if 500 <= code <= 599:
        raise TransientError(f"BytesFlows error code {code}", context=ctx)
    raise UnknownCodeError(f"BytesFlows error code {code}", context=ctx)


@dataclass(frozen=True)
class Asset:
    total_traffic: int
    available_traffic: int
    balance: Decimal
    currency: str


def parse_asset(data: Any, *, context: dict[str, Any] | None = None) -> Asset:
    """Validate `data` of /dashboard/asset (bytes as integers, balance as Decimal)."""
    ctx = dict(context or {})
    data = p.mapping(data, "data", ctx)
    balance = data.get("balance")
    if isinstance(balance, bool) or not isinstance(balance, int | Decimal | str):
        raise p.bad("`balance` is missing or not a number", ctx)
    try:
        balance = Decimal(balance.strip() if isinstance(balance, str) else balance)
    except ArithmeticError:
        raise p.bad("`balance` is not a number", ctx) from None
    if not balance.is_finite() or abs(balance.adjusted()) > 30:
        raise p.bad("`balance` is not a finite number", ctx)
    currency = data.get("currency", "")
    if not isinstance(currency, str) or len(currency) > 10:
        raise p.bad("`currency` is not a short string", ctx)
    return Asset(
        total_traffic=p.strict_int(data.get("totalTraffic"), "totalTraffic", ctx),
        available_traffic=p.strict_int(data.get("dynamicTraffic"), "dynamicTraffic", ctx),
        balance=balance,
        currency=currency,
    )


def parse_records_page(
    data: Any, *, tz: dt.tzinfo, context: dict[str, Any] | None = None
) -> tuple[int, list[GrantRecord]]:
    """Validate `data` of /user/traffic/records: (total, records). `trafficUsed` above
    `traffic` is kept as sent (sync records it; it is not ours to correct)."""
    ctx = dict(context or {})
    data = p.mapping(data, "data", ctx)
    total = p.strict_int(data.get("total"), "total", ctx)
    rows = p.sequence(data.get("records"), "records", ctx)
    out = []
    for i, row in enumerate(rows):
        row_ctx = {**ctx, "row": i}
        row = p.mapping(row, "records[]", row_ctx)
        order_id = row.get("orderId")
        source = row.get("sourceType")
        out.append(
            GrantRecord(
                record_id=p.text(row.get("id"), "id", row_ctx, allow_int=True),
                order_id=""
                if order_id in (None, "")
                else p.text(order_id, "orderId", row_ctx, allow_int=True),
                source_type="" if source in (None, "") else p.text(source, "sourceType", row_ctx),
                traffic=p.strict_int(row.get("traffic"), "traffic", row_ctx),
                traffic_used=p.strict_int(row.get("trafficUsed"), "trafficUsed", row_ctx),
                active=p.strict_int(row.get("status"), "status", row_ctx) == 1,
                created_at=_time(row.get("createTime"), "createTime", tz, row_ctx),
                expires_at=_time(row.get("expireTime"), "expireTime", tz, row_ctx),
            )
        )
    return total, out


def _time(value: Any, name: str, tz: dt.tzinfo, ctx: dict[str, Any]) -> dt.datetime | None:
    if value is None or value == "":
        return None
    return p.local_time(value, name, tz, ctx)


class BytesFlowsConnector:
    """A LedgerConnector: BytesFlows accounts share a base URL, each has its own token."""

    provider = "bytesflows"

    def __init__(
        self, *, transport: Transport, record_timezone: str = "UTC", max_restarts: int = 3
    ) -> None:
        self.transport = transport
        self.record_tz = p.zone(record_timezone)
        self.max_restarts = max_restarts
        self.pages = 0  # record pages read so far, across calls (for SyncRun on failure)

    def __repr__(self) -> str:
        return f"<BytesFlowsConnector {self.transport.base_url} key={self.transport.budget_key}>"

    @property
    def requests(self) -> int:
        """Requests sent so far by this connector (also when a call ended in an error)."""
        return self.transport.requests

    def fetch_ledger(self, *, credentials: dict[str, str], now: dt.datetime) -> LedgerSnapshot:
        """The asset counters and every grant record of the account owning the token.

        Records are walked with pageNo until `total` is reached; a `total` that changes
        mid-walk restarts it. A record id seen twice with identical content is dropped; with
        different content the answer is refused.
        """
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        token = credentials.get("token") if isinstance(credentials, dict) else None
        if not token or not isinstance(token, str):
            raise AuthError("BytesFlows token missing", context={"provider": self.provider})
        headers = {"Authorization": f"Bearer {token}"}
        requests_before = self.requests

        def get(path: str, params: dict[str, Any]) -> Any:
            return self.transport.get_json(path, params=params, headers=headers, check=check_body)

        with secrets_scrubbed([token]):
            asset_ctx = {"provider": self.provider, "path": ASSET_PATH}
            asset = parse_asset(get(ASSET_PATH, {}), context=asset_ctx)
            records, pages = self._walk(get)
        return LedgerSnapshot(
            taken_at=now.astimezone(dt.UTC),
            total_traffic=asset.total_traffic,
            available_traffic=asset.available_traffic,
            balance=asset.balance,
            currency=asset.currency,
            records=tuple(records.values()),
            pages=pages,
            requests=self.requests - requests_before,
        )

    def _walk(self, get) -> tuple[dict[str, GrantRecord], int]:
        pages = restarts = 0
        while True:
            found: dict[str, GrantRecord] = {}
            expected: int | None = None
            received, page = 0, 1
            while True:
                data = get(RECORDS_PATH, {"pageNo": page, "pageSize": PAGE_SIZE})
                pages += 1
                self.pages += 1
                ctx = {"provider": self.provider, "path": RECORDS_PATH, "pageNo": page}
                total, rows = parse_records_page(data, tz=self.record_tz, context=ctx)
                if expected is None:
                    expected = total
                elif total != expected:
                    restarts += 1
                    if restarts > self.max_restarts:
                        raise BadResponseError("total kept changing during the walk", context=ctx)
                    break
                before = len(found)
                for row in rows:
                    seen = found.setdefault(row.record_id, row)
                    if seen != row:
                        raise p.bad(f"conflicting duplicate record {row.record_id}", ctx)
                if rows and len(found) == before:
                    raise p.bad("page repeats records already received", ctx)
                received += len(rows)
                if received >= expected:
                    # `total` may or may not count an identical duplicate record (dropped
                    # above): either way every record it announced must be there, no more.
                    if expected not in (received, len(found)):
                        raise p.bad(f"total {expected} disagrees with {received} records", ctx)
                    return found, pages
                if not rows or page >= MAX_PAGES:
                    raise p.bad(f"walk stopped after {received} of {expected} records", ctx)
                page += 1
