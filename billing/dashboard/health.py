"""Sync health per upstream account: last success, failing and stale sub-accounts.

- Last successful sync: the newest succeeded `SyncRun` of the upstream account (any kind).
- Failing: active sub-accounts whose latest sync (skipped runs ignored: they only mean another
  sync held the lock) failed, with the error staff read on the run.
- Stale: active sub-accounts of active upstream accounts with no successful sync in the last
  `STALE_AFTER` (6 hours), never synced included, and not already listed as failing.
- Upstream errors: the latest account-level run (sub-account discovery) failed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Max, OuterRef, Q, Subquery

from accounts.models import Reseller, SubAccount, UpstreamAccount
from usage.models import SyncRun

STALE_AFTER = dt.timedelta(hours=6)
_COUNTED = [SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED]


@dataclass
class SubAccountSyncState:
    sub_account_id: int
    label: str
    customer_name: str
    last_run_at: dt.datetime | None
    last_success_at: dt.datetime | None
    error_code: str = ""
    error: str = ""


@dataclass
class UpstreamHealth:
    upstream_account_id: int
    name: str
    provider: str
    is_active: bool
    active_sub_accounts: int = 0
    last_success_at: dt.datetime | None = None
    upstream_error: str = ""
    failing: list[SubAccountSyncState] = field(default_factory=list)
    stale: list[SubAccountSyncState] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failing or self.stale or self.upstream_error)


def _latest(field_name: str) -> Subquery:
    return Subquery(
        SyncRun.objects.filter(sub_account_id=OuterRef("pk"), status__in=_COUNTED)
        .order_by("-started_at", "-pk")
        .values(field_name)[:1]
    )


def dashboard_sync_health(*, reseller: Reseller, now: dt.datetime) -> list[UpstreamHealth]:
    upstreams = {
        u.pk: UpstreamHealth(
            upstream_account_id=u.pk,
            name=u.name,
            provider=u.get_provider_display(),
            is_active=u.is_active,
        )
        for u in UpstreamAccount.objects.for_reseller(reseller)
        .defer("credentials")
        .order_by("name", "pk")
    }
    last_success = (
        SyncRun.objects.for_reseller(reseller)
        .filter(status=SyncRun.Status.SUCCEEDED)
        .values("upstream_account_id")
        .annotate(at=Max("started_at"))
    )
    for row in last_success:
        upstreams[row["upstream_account_id"]].last_success_at = row["at"]
    for upstream_id, health in upstreams.items():
        latest = (
            SyncRun.objects.for_reseller(reseller)
            .filter(upstream_account_id=upstream_id, sub_account__isnull=True, status__in=_COUNTED)
            .order_by("-started_at", "-pk")
            .first()
        )
        if latest is not None and latest.status == SyncRun.Status.FAILED:
            health.upstream_error = f"{latest.get_kind_display()}: {latest.error_code}"
            if latest.error:
                health.upstream_error += f" - {latest.error}"

    subs = (
        SubAccount.objects.for_reseller(reseller)
        .filter(status=SubAccount.Status.ACTIVE, upstream_account__is_active=True)
        .annotate(
            last_success=Max("sync_runs__started_at", filter=Q(sync_runs__status="succeeded")),
            last_status=_latest("status"),
            last_run_at=_latest("started_at"),
            last_error_code=_latest("error_code"),
            last_error=_latest("error"),
        )
        .select_related("customer")
        .only("pk", "label", "upstream_id", "upstream_account_id", "customer__name")
        .order_by("customer__name", "upstream_id", "pk")
    )
    stale_before = now - STALE_AFTER
    for sub in subs:
        health = upstreams[sub.upstream_account_id]
        health.active_sub_accounts += 1
        state = SubAccountSyncState(
            sub_account_id=sub.pk,
            label=str(sub),
            customer_name=sub.customer.name,
            last_run_at=sub.last_run_at,
            last_success_at=sub.last_success,
            error_code=sub.last_error_code or "",
            error=sub.last_error or "",
        )
        if sub.last_status == SyncRun.Status.FAILED:
            health.failing.append(state)
        elif sub.last_success is None or sub.last_success < stale_before:
            health.stale.append(state)
    return list(upstreams.values())
