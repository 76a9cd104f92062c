"""IPFoxy connector: hourly usage per sub-account, the sub-account list, and (mixed in from
`ipfoxy_reseller.py`) the reseller writes and account reads.

Upstream facts (see /work/shared/upstream/ipfoxy-account-flow-api.md and issue 3):
- Headers `api-id` and `api-token` on every call; success is body `"code": 0`; errors arrive
  with HTTP 200 and a business code (mapped in `IPFOXY_ERRORS`).
- `get-account-use-flow-list` with `unit=1` returns hourly buckets newest first, `flow` as an
  MB string ("1453.16") and `count` as a string. We take bytes = Decimal(flow) * mb_bytes,
  rounded half up to the nearest byte (fractional bytes cannot be billed); the raw string
  and unit stay on each `HourlyUsage`.
- Labels are local wall times in the echoed `timezone` ("+08:00"; any ±HH:MM is accepted).
  `timezone_offset` is unpublished, so we never send it (the upstream default, 0, applies)
  and rely only on the echoed `timezone`.
- `end_time` is treated as inclusive by the upstream: for our half-open `[start, end)` we
  send `end - 1s`. `start_time` may be at most 90 days old: older starts are clamped (with a
  note on the report) and a window entirely older returns an empty report.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from usage.providers import parsing as p
from usage.providers.base import BadResponseError, DiscoveredSubAccount, HourlyUsage, UsageReport
from usage.providers.ipfoxy_parse import (
    IPFOXY_ERRORS,
    FlowPage,
    check_body,
    merge_buckets,
    parse_flow_page,
    parse_sub_account_page,
)
from usage.providers.ipfoxy_reseller import SUB_ACCOUNTS_PATH, IPFoxyResellerMixin
from usage.providers.transport import Transport, secrets_scrubbed

__all__ = [
    "FLOW_PATH",
    "IPFOXY_ERRORS",
    "SUB_ACCOUNTS_PATH",
    "FlowPage",
    "IPFoxyConnector",
    "check_body",
    "parse_flow_page",
    "parse_sub_account_page",
]

FLOW_PATH = "/ip/open-api/get-account-use-flow-list"
PAGE_SIZE = 100
MAX_PAGES = 10_000  # a hostile `total` cannot keep us walking forever
LOOKBACK = dt.timedelta(days=90)
HOUR = dt.timedelta(hours=1)


def lookback_start(now: dt.datetime) -> dt.datetime:
    """The oldest start we ask for: 90 days before `now`, rounded UP to the hour (plus one
    minute of slack for the time the request takes), so the upstream never says 60400."""
    edge = (now - LOOKBACK + dt.timedelta(minutes=1)).astimezone(dt.UTC)
    floor = edge.replace(minute=0, second=0, microsecond=0)
    return floor if floor == edge else floor + HOUR


def split_window(start: dt.datetime, end: dt.datetime, max_hours: int):
    """Consecutive half-open chunks of at most `max_hours` covering `[start, end)`."""
    step = dt.timedelta(hours=max_hours)
    while start < end:
        yield start, min(start + step, end)
        start += step


class IPFoxyConnector(IPFoxyResellerMixin):
    """A HistoryConnector and ResellerConnector for one IPFoxy reseller account (its api-id
    and api-token). `kb_bytes` (default mb_bytes / 1024) sizes the KB of the account
    counters; `form_encoding` is "multipart" (form-data) or "urlencoded" for writes."""

    provider = "ipfoxy"

    def __init__(
        self,
        *,
        transport: Transport,
        api_id: str,
        api_token: str,
        mb_bytes: int = 1_048_576,
        max_window_hours: int = 24 * 31,
        max_restarts: int = 3,
        kb_bytes: int | None = None,
        form_encoding: str = "multipart",
    ) -> None:
        if form_encoding not in ("multipart", "urlencoded"):
            raise ValueError("form_encoding must be 'multipart' or 'urlencoded'")
        self.transport = transport
        self._headers = {"api-id": api_id, "api-token": api_token}
        self.mb_bytes = mb_bytes
        self.kb_bytes = kb_bytes
        self.form_encoding = form_encoding
        self.max_window_hours = max_window_hours
        self.max_restarts = max_restarts
        self.pages = 0  # pages read so far, across calls (for SyncRun when a call fails)

    def __repr__(self) -> str:
        return f"<IPFoxyConnector {self.transport.base_url} key={self.transport.budget_key}>"

    @property
    def requests(self) -> int:
        """Requests sent so far by this connector (also when a call ended in an error)."""
        return self.transport.requests

    def _get(self, path: str, params: dict[str, Any], context: dict[str, Any]) -> Any:
        return self.transport.get_json(
            path, params=params, headers=self._headers, check=check_body, context=context
        )

    def fetch_hourly_usage(
        self, *, upstream_id: str, start: dt.datetime, end: dt.datetime, now: dt.datetime
    ) -> UsageReport:
        """Hourly buckets of `upstream_id` with hour_start in `[start, end)`, in UTC.

        The report's window is what was actually fetched (after the 90-day clamp): replace
        stored buckets only inside it. A window entirely older than 90 days comes back empty
        with window_start == window_end == end, and a note.
        """
        for value in (start, end, now):
            if value.tzinfo is None:
                raise ValueError("start, end and now must be aware datetimes")
        if end <= start:
            raise ValueError("end must be after start")
        with secrets_scrubbed(self._headers.values()):
            return self._fetch(upstream_id, start, end, now)

    def _fetch(self, upstream_id: str, start: dt.datetime, end: dt.datetime, now: dt.datetime):
        requests_before, notes = self.requests, []
        earliest = lookback_start(now)
        if end <= earliest:
            note = f"window older than the 90-day lookback (earliest {earliest.isoformat()})"
            return UsageReport(upstream_id, end, end, (), notes=(note,))
        if start < earliest:
            notes.append(
                f"window clamped to the 90-day lookback: requested start {start.isoformat()}, "
                f"fetched from {earliest.isoformat()}"
            )
            start = earliest
        hours: dict[dt.datetime, HourlyUsage] = {}
        pages = 0
        for chunk_start, chunk_end in split_window(start, end, self.max_window_hours):
            chunk, n = self._walk(upstream_id, chunk_start, chunk_end)
            pages += n
            hours.update({h: u for h, u in chunk.items() if chunk_start <= h < chunk_end})
        return UsageReport(
            upstream_id=upstream_id,
            window_start=start.astimezone(dt.UTC),
            window_end=end.astimezone(dt.UTC),
            hours=tuple(hours[h] for h in sorted(hours)),
            pages=pages,
            requests=self.requests - requests_before,
            notes=tuple(notes),
        )

    def _walk(self, account: str, start: dt.datetime, end: dt.datetime):
        """All pages of one chunk; restarts when `count` changes mid-walk (a new hour landed
        on top and shifted the pages), at most `max_restarts` times."""
        params = {
            "account": account,
            "start_time": int(start.timestamp()),
            "end_time": math.ceil(end.timestamp()) - 1,  # upstream end is inclusive
            "unit": 1,
            "page_size": PAGE_SIZE,
        }
        max_count = math.ceil((end - start) / HOUR) + 24  # a day of slack for edge buckets
        pages = restarts = 0
        while True:
            buckets: dict[dt.datetime, HourlyUsage] = {}
            expected: int | None = None
            received, page = 0, 1
            while True:
                ctx = {"account": account, "page": page, "window_start": start.isoformat()}
                data = self._get(FLOW_PATH, {**params, "page": page}, ctx)
                pages += 1
                self.pages += 1
                ctx = {"provider": self.provider, "path": FLOW_PATH, **ctx}
                parsed = parse_flow_page(data, account=account, mb_bytes=self.mb_bytes, context=ctx)
                if expected is None:
                    expected = parsed.count
                    if expected > max_count:
                        raise p.bad(f"count {expected} exceeds the hours in the window", ctx)
                elif parsed.count != expected:
                    restarts += 1
                    if restarts > self.max_restarts:
                        raise p.bad("count kept changing during the page walk", ctx)
                    break
                added = merge_buckets(buckets, parsed.rows, ctx) if parsed.rows else 0
                if parsed.rows and not added:
                    raise p.bad("page repeats rows already received", ctx)
                received += len(parsed.rows)
                if received >= expected:
                    # `count` may or may not include an identical duplicate row (dropped
                    # above): either way every hour it announced must be there, no more.
                    if expected not in (received, len(buckets)):
                        raise p.bad(f"count {expected} disagrees with {received} rows", ctx)
                    return buckets, pages
                if len(parsed.rows) == 0:
                    raise p.bad(f"page empty after {received} of {expected} rows", ctx)
                page += 1

    def list_sub_accounts(self) -> list[DiscoveredSubAccount]:
        """Every sub-account of the reseller account, all pages. An account seen twice
        (pages shifted) keeps its first row; a `total` that changes restarts the walk."""
        with secrets_scrubbed(self._headers.values()):
            return self._list_sub_accounts()

    def _list_sub_accounts(self) -> list[DiscoveredSubAccount]:
        restarts = 0
        while True:
            found: dict[str, DiscoveredSubAccount] = {}
            expected: int | None = None
            received, page = 0, 1
            while True:
                result = self.sub_accounts_page(page=page, page_size=PAGE_SIZE)
                self.pages += 1
                total, rows = result.total, result.rows
                ctx = {"provider": self.provider, "path": SUB_ACCOUNTS_PATH, "page": page}
                if expected is None:
                    expected = total
                elif total != expected:
                    restarts += 1
                    if restarts > self.max_restarts:
                        raise BadResponseError("total kept changing during the walk", context=ctx)
                    break
                for row in rows:
                    found.setdefault(row.upstream_id, row)
                received += len(rows)
                if received >= expected:
                    return list(found.values())
                if not rows or page >= MAX_PAGES:
                    raise p.bad(f"walk stopped after {received} of {expected} sub-accounts", ctx)
                page += 1
