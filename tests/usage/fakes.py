"""Small fake connectors for unit tests of sync (no HTTP)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from usage.providers.base import (
    DiscoveredSubAccount,
    GrantRecord,
    HourlyUsage,
    LedgerSnapshot,
    UpstreamError,
    UsageReport,
)

UTC = dt.UTC
MIB = 1_048_576


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


class FakeHistory:
    """Serves fixed hourly bytes per upstream id; `error` makes every call raise it."""

    provider = "ipfoxy"

    def __init__(self, hours: dict[dt.datetime, int] | None = None, *, error=None):
        self.hours = dict(hours or {})
        self.error: UpstreamError | None = error
        self.requests = 0
        self.listed: list[DiscoveredSubAccount] = []
        self.upstream_id_override: str | None = None

    def fetch_hourly_usage(self, *, upstream_id, start, end, now) -> UsageReport:
        self.requests += 1
        if self.error:
            raise self.error
        rows = tuple(
            HourlyUsage(hour, nbytes, str(nbytes // MIB), "MB")
            for hour, nbytes in sorted(self.hours.items())
            if start <= hour < end
        )
        return UsageReport(
            upstream_id=self.upstream_id_override or upstream_id,
            window_start=start,
            window_end=end,
            hours=rows,
            pages=1,
            requests=1,
        )

    def list_sub_accounts(self):
        self.requests += 1
        if self.error:
            raise self.error
        return list(self.listed)


class FakeLedger:
    """Returns the next queued snapshot (records as (id, traffic, used, active, created))."""

    provider = "bytesflows"

    def __init__(self):
        self.snapshots: list[LedgerSnapshot] = []
        self.error: UpstreamError | None = None
        self.requests = 0

    def push(self, taken_at: dt.datetime, records, *, total=10 * 2**30, available=5 * 2**30):
        grants = tuple(
            GrantRecord(
                record_id=rid,
                order_id=f"ORD-{rid}",
                source_type="order",
                traffic=traffic,
                traffic_used=used,
                active=active,
                created_at=created,
                expires_at=None,
            )
            for rid, traffic, used, active, created in records
        )
        self.snapshots.append(
            LedgerSnapshot(
                taken_at=taken_at,
                total_traffic=total,
                available_traffic=available,
                balance=Decimal("12.50"),
                currency="USD",
                records=grants,
                pages=1,
                requests=2,
            )
        )

    def fetch_ledger(self, *, credentials, now) -> LedgerSnapshot:
        self.requests += 2
        if self.error:
            raise self.error
        return self.snapshots.pop(0)
