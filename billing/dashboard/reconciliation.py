"""Reconciliation per upstream account: what the upstream reports against what we bill.

The upstream's own figure, over the span it covers for each of its sub-accounts:
- IPFoxy: growth of the cumulative `use_flow` counter between the first and the latest
  discovery (`UpstreamSubAccount`), for every listed sub-account except the main one, sold
  or not; attached ones are compared hour for hour by `usage_counter_cross_check`;
- BytesFlows: the usage its ledger snapshots reported after the baseline snapshot.

Against it, over exactly the same hours:
- metered: our hourly buckets of the sub-accounts sold to customers;
- billed: the part of those buckets on days a subscription of the customer covers (what the
  billing engine rates; the rest is listed as unbilled on invoices).

difference = reported - billed = unassigned (upstream sub-accounts no customer has)
+ unbilled (sold, but no subscription covers the day) + mismatch (counters vs buckets;
counters move mid-hour in KB steps, so a small mismatch is expected). Unassigned and
unbilled traffic is lost money; the row is flagged when there is any, or when the mismatch
is over 2% of the reported traffic (and over 100 MiB).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Min, Sum

from accounts.models import Provider, Reseller, SubAccount, UpstreamAccount
from billing.costs import upstream_cost
from billing.dashboard.units import gb_text, money_text
from billing.invoicing.periods import local_midnight
from billing.models import Subscription
from usage.models import LedgerSnapshot, UsageHour
from usage.selectors import upstream_sub_accounts_unassigned, usage_counter_cross_check

MISMATCH_SHARE = Decimal("0.02")
MISMATCH_FLOOR_BYTES = 100 * 1_048_576
DETAIL_LIMIT = 10


@dataclass
class SubAccountReconciliation:
    upstream_id: str
    sub_account_id: int | None  # None: an upstream sub-account no customer has
    customer_name: str
    since: dt.datetime
    until: dt.datetime
    reported_bytes: int
    metered_bytes: int = 0
    billed_bytes: int = 0

    @property
    def difference_bytes(self) -> int:
        return self.reported_bytes - self.billed_bytes

    @property
    def reported_text(self) -> str:
        return gb_text(self.reported_bytes)

    @property
    def billed_text(self) -> str:
        return gb_text(self.billed_bytes)

    @property
    def difference_text(self) -> str:
        return gb_text(self.difference_bytes)


@dataclass
class UpstreamReconciliation:
    upstream_account_id: int
    name: str
    provider: str
    currency: str
    upstream: UpstreamAccount = field(repr=False)
    rows: list[SubAccountReconciliation] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return bool(self.rows)

    @property
    def since(self) -> dt.datetime | None:
        return min((r.since for r in self.rows), default=None)

    @property
    def until(self) -> dt.datetime | None:
        return max((r.until for r in self.rows), default=None)

    @property
    def reported_bytes(self) -> int:
        return sum(r.reported_bytes for r in self.rows)

    @property
    def metered_bytes(self) -> int:
        return sum(r.metered_bytes for r in self.rows)

    @property
    def billed_bytes(self) -> int:
        return sum(r.billed_bytes for r in self.rows)

    @property
    def unassigned_bytes(self) -> int:
        return sum(r.reported_bytes for r in self.rows if r.sub_account_id is None)

    @property
    def unbilled_bytes(self) -> int:
        return self.metered_bytes - self.billed_bytes

    @property
    def mismatch_bytes(self) -> int:
        return self.reported_bytes - self.unassigned_bytes - self.metered_bytes

    @property
    def difference_bytes(self) -> int:
        return self.reported_bytes - self.billed_bytes

    @property
    def lost_cost(self) -> Decimal:
        return upstream_cost(
            nbytes=max(self.difference_bytes, 0), upstream=self.upstream, currency=self.currency
        )

    @property
    def flagged(self) -> bool:
        tolerance = max(self.reported_bytes * MISMATCH_SHARE, MISMATCH_FLOOR_BYTES)
        return (
            self.unassigned_bytes > 0
            or self.unbilled_bytes > 0
            or abs(self.mismatch_bytes) > tolerance
        )

    @property
    def top_rows(self) -> list[SubAccountReconciliation]:
        rows = [r for r in self.rows if r.difference_bytes]
        return sorted(rows, key=lambda r: -abs(r.difference_bytes))[:DETAIL_LIMIT]

    def text(self, name: str) -> str:
        return gb_text(getattr(self, f"{name}_bytes"))

    @property
    def reported_text(self) -> str:
        return self.text("reported")

    @property
    def billed_text(self) -> str:
        return self.text("billed")

    @property
    def unassigned_text(self) -> str:
        return self.text("unassigned")

    @property
    def unbilled_text(self) -> str:
        return self.text("unbilled")

    @property
    def mismatch_text(self) -> str:
        return self.text("mismatch")

    @property
    def difference_text(self) -> str:
        return self.text("difference")

    @property
    def lost_cost_text(self) -> str:
        return money_text(self.lost_cost, self.currency)


class _Coverage:
    """Which instants a subscription of the customer covers for a sub-account's upstream."""

    def __init__(self, reseller: Reseller):
        self.tz = reseller.tzinfo
        self.by_customer: dict[int, list[tuple[int | None, dt.date, dt.date | None]]] = defaultdict(
            list
        )
        for customer_id, upstream_id, starts_on, ends_on in Subscription.objects.for_reseller(
            reseller
        ).values_list("customer_id", "upstream_account_id", "starts_on", "ends_on"):
            self.by_customer[customer_id].append((upstream_id, starts_on, ends_on))

    def intervals(
        self, *, customer_id: int, upstream_id: int, since: dt.datetime, until: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        out = []
        for scope, starts_on, ends_on in self.by_customer.get(customer_id, []):
            if scope is not None and scope != upstream_id:
                continue
            lo = max(since, local_midnight(starts_on, self.tz))
            hi = until if ends_on is None else min(until, local_midnight(ends_on, self.tz))
            if lo < hi:
                out.append((lo, hi))
        return sorted(out)


def _billed(
    coverage: _Coverage,
    *,
    sub_account_id: int,
    customer_id: int,
    upstream: UpstreamAccount,
    since: dt.datetime,
    until: dt.datetime,
    metered: int,
) -> int:
    intervals = coverage.intervals(
        customer_id=customer_id, upstream_id=upstream.pk, since=since, until=until
    )
    if not intervals:
        return 0
    if intervals == [(since, until)]:
        return metered
    total = 0
    for lo, hi in intervals:
        total += (
            _of_upstream(UsageHour, upstream)
            .filter(sub_account_id=sub_account_id, hour_start__gte=lo, hour_start__lt=hi)
            .aggregate(total=Sum("bytes"))["total"]
            or 0
        )
    return total


def _of_upstream(model: type[UsageHour | LedgerSnapshot], upstream: UpstreamAccount):
    """The rows of `model` (per sub-account) of the upstream account's sub-accounts."""
    return model.objects.filter(sub_account__upstream_account=upstream)


def _ledger_rows(
    upstream: UpstreamAccount, subs: dict[int, tuple[int, str, str]]
) -> list[SubAccountReconciliation]:
    ids = [pk for pk, (_, upstream_id, _) in subs.items() if upstream_id == upstream.pk]
    rows = []
    first = dict(
        _of_upstream(LedgerSnapshot, upstream)
        .filter(sub_account_id__in=ids)
        .values("sub_account_id")
        .annotate(at=Min("taken_at"))
        .values_list("sub_account_id", "at")
    )
    for sub_id, baseline_at in sorted(first.items()):
        later = _of_upstream(LedgerSnapshot, upstream).filter(
            sub_account_id=sub_id, taken_at__gt=baseline_at
        )
        until = later.order_by("-taken_at").values_list("taken_at", flat=True).first()
        if until is None:
            continue  # only the baseline so far: nothing reported yet
        reported = later.aggregate(total=Sum("usage_bytes"))["total"] or 0
        since = baseline_at.replace(minute=0, second=0, microsecond=0)
        metered = (
            _of_upstream(UsageHour, upstream)
            .filter(sub_account_id=sub_id, hour_start__gte=since, hour_start__lt=until)
            .aggregate(total=Sum("bytes"))["total"]
            or 0
        )
        rows.append(
            SubAccountReconciliation(
                upstream_id=subs[sub_id][2],
                sub_account_id=sub_id,
                customer_name="",
                since=since,
                until=until,
                reported_bytes=int(reported),
                metered_bytes=int(metered),
            )
        )
    return rows


def dashboard_reconciliation(*, reseller: Reseller) -> list[UpstreamReconciliation]:
    subs = {
        pk: (customer_id, upstream_id, upstream_ident)
        for pk, customer_id, upstream_id, upstream_ident in SubAccount.objects.for_reseller(
            reseller
        ).values_list("pk", "customer_id", "upstream_account_id", "upstream_id")
    }
    names = dict(SubAccount.objects.for_reseller(reseller).values_list("pk", "customer__name"))
    coverage = _Coverage(reseller)
    result = []
    for upstream in (
        UpstreamAccount.objects.for_reseller(reseller).defer("credentials").order_by("name", "pk")
    ):
        entry = UpstreamReconciliation(
            upstream_account_id=upstream.pk,
            name=upstream.name,
            provider=upstream.get_provider_display(),
            currency=reseller.currency,
            upstream=upstream,
        )
        if upstream.provider == Provider.BYTESFLOWS:
            entry.rows = _ledger_rows(upstream, subs)
        else:
            for check in usage_counter_cross_check(
                reseller=reseller, upstream_account_id=upstream.pk
            ):
                if check.until <= check.since:
                    continue
                entry.rows.append(
                    SubAccountReconciliation(
                        upstream_id=check.upstream_id,
                        sub_account_id=check.sub_account_id,
                        customer_name="",
                        since=check.since,
                        until=check.until,
                        reported_bytes=check.counter_growth_bytes,
                        metered_bytes=check.buckets_bytes,
                    )
                )
            for row in upstream_sub_accounts_unassigned(
                reseller=reseller, upstream_account_id=upstream.pk
            ):
                since = row.baseline_at.replace(minute=0, second=0, microsecond=0)
                until = row.seen_at.replace(minute=0, second=0, microsecond=0)
                if until <= since:
                    continue
                entry.rows.append(
                    SubAccountReconciliation(
                        upstream_id=row.upstream_id,
                        sub_account_id=None,
                        customer_name="(not sold)",
                        since=since,
                        until=until,
                        reported_bytes=row.used_bytes - row.baseline_used_bytes,
                    )
                )
        for row in entry.rows:
            if row.sub_account_id is None:
                continue
            customer_id = subs[row.sub_account_id][0]
            row.customer_name = names.get(row.sub_account_id, "")
            row.billed_bytes = _billed(
                coverage,
                sub_account_id=row.sub_account_id,
                customer_id=customer_id,
                upstream=upstream,
                since=row.since,
                until=row.until,
                metered=row.metered_bytes,
            )
        result.append(entry)
    return result
