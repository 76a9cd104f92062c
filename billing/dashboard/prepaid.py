"""Prepaid traffic per IPFoxy upstream account: the pool bought upstream, what Flowbill
allocated from it to sub-accounts, what those sub-accounts used and have left as IPFoxy
counts it, and what of it was billed.

- pool: the main account's traffic (`UpstreamPoolBalance`, read by each traffic refresh);
- allocated: confirmed rows of the allocation ledger (all time), and what is still pending
  or in review (`Allocation`);
- used / remaining: IPFoxy's counters of the open sub-accounts (`SubAccountTraffic`, refreshed
  every 10 minutes; a sub-account's counters include traffic from before Flowbill knew it);
- billed: bytes on issued invoices (finalized or paid, not void) that a subscription rated
  (`InvoiceUsage` with a subscription), all time.

used - billed is traffic not billed yet: this month (billed when the month closes), or used
with no subscription covering the day (the reconciliation lists it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Sum

from accounts.models import Provider, Reseller, UpstreamAccount
from billing.dashboard.units import gb_text
from billing.models import Invoice, InvoiceUsage
from usage.models import Allocation, SubAccountTraffic, UpstreamPoolBalance

_ISSUED = (Invoice.Status.FINALIZED, Invoice.Status.PAID)
_IN_FLIGHT = (Allocation.Status.PENDING, Allocation.Status.NEEDS_REVIEW)


@dataclass(frozen=True)
class PrepaidTraffic:
    upstream_account_id: int
    name: str
    pool_total_bytes: int | None
    pool_remaining_bytes: int | None
    pool_as_of: dt.datetime | None
    allocated_bytes: int
    in_flight_bytes: int
    used_bytes: int
    remaining_bytes: int
    counted_sub_accounts: int
    billed_bytes: int

    @property
    def unbilled_bytes(self) -> int:
        return max(self.used_bytes - self.billed_bytes, 0)

    @property
    def pool_remaining_text(self) -> str:
        return gb_text(self.pool_remaining_bytes)

    @property
    def pool_total_text(self) -> str:
        return gb_text(self.pool_total_bytes)

    @property
    def allocated_text(self) -> str:
        return gb_text(self.allocated_bytes)

    @property
    def in_flight_text(self) -> str:
        return gb_text(self.in_flight_bytes)

    @property
    def used_text(self) -> str:
        return gb_text(self.used_bytes)

    @property
    def remaining_text(self) -> str:
        return gb_text(self.remaining_bytes)

    @property
    def billed_text(self) -> str:
        return gb_text(self.billed_bytes)

    @property
    def unbilled_text(self) -> str:
        return gb_text(self.unbilled_bytes)


def _sums(queryset, key: str, value: str) -> dict[int, int]:
    return {
        row[key]: row["total"] or 0
        for row in queryset.values(key).annotate(total=Sum(value)).order_by()
    }


def dashboard_prepaid_traffic(*, reseller: Reseller) -> list[PrepaidTraffic]:
    """One row per IPFoxy upstream account of the reseller (see the module docstring)."""
    upstreams = list(
        UpstreamAccount.objects.for_reseller(reseller)
        .filter(provider=Provider.IPFOXY)
        .defer("credentials")
        .order_by("name", "pk")
    )
    if not upstreams:
        return []
    key = "sub_account__upstream_account_id"
    allocations = Allocation.objects.for_reseller(reseller)
    confirmed = _sums(allocations.filter(status=Allocation.Status.CONFIRMED), key, "bytes")
    in_flight = _sums(allocations.filter(status__in=_IN_FLIGHT), key, "bytes")
    counted = SubAccountTraffic.objects.for_reseller(reseller).exclude(sub_account__status="closed")
    used = _sums(counted, key, "used_bytes")
    remaining = _sums(counted, key, "remaining_bytes")
    counts = {row[key]: row["n"] for row in counted.values(key).annotate(n=Count("pk")).order_by()}
    billed = _sums(
        InvoiceUsage.objects.filter(
            invoice__reseller=reseller, invoice__status__in=_ISSUED, subscription__isnull=False
        ),
        key,
        "bytes",
    )
    pools = {p.upstream_account_id: p for p in UpstreamPoolBalance.objects.for_reseller(reseller)}
    rows = []
    for upstream in upstreams:
        pool = pools.get(upstream.pk)
        rows.append(
            PrepaidTraffic(
                upstream_account_id=upstream.pk,
                name=upstream.name,
                pool_total_bytes=pool.total_bytes if pool else None,
                pool_remaining_bytes=pool.remaining_bytes if pool else None,
                pool_as_of=pool.as_of if pool else None,
                allocated_bytes=confirmed.get(upstream.pk, 0),
                in_flight_bytes=in_flight.get(upstream.pk, 0),
                used_bytes=used.get(upstream.pk, 0),
                remaining_bytes=remaining.get(upstream.pk, 0),
                counted_sub_accounts=counts.get(upstream.pk, 0),
                billed_bytes=billed.get(upstream.pk, 0),
            )
        )
    return rows
