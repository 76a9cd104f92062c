"""IPFoxy sub-accounts' traffic counters (allocated, used and remaining bytes), kept in
`usage.models.SubAccountTraffic` so that whatever shows or acts on remaining traffic reads
it without asking the upstream.

- `sub_account_traffic_refresh`: every sub-account of one upstream account from
  `get-sub-account-list`, 100 per request (10,000 sub-accounts: 100 requests, 101 with the
  main account's row), stored page by page in bulk. Reads: they take the request budget
  behind writes, like sync. A row matching no open Flowbill sub-account (the main account,
  one not adopted yet: discovery lists those) is ignored; an open sub-account the whole list
  left out keeps its last figures and is reported in `TrafficRefresh.missing`. A walk cut
  short by the upstream keeps the pages it stored. Run by a Celery task per upstream account
  every `usage.schedule` interval.
- `sub_account_traffic`: one sub-account on request (`GET .../traffic/`). A stored figure
  younger than `STORED_FRESH_FOR` (IPFoxy caches its counters for a minute anyway) and older
  than no confirmed allocation of the sub-account is served as is; otherwise
  `get-sub-account-flow` is asked (one request, ahead of sync in the budget) and its answer
  stored, unless a newer figure arrived meanwhile.

Figures are bytes as the connector converts them (IPFoxy reports KB: 1 KB = the upstream
account's `mb_bytes` / 1024, binary by default). `as_of` is when Flowbill received them;
IPFoxy's own figures may be up to a minute older. BytesFlows sub-accounts have no such
counters (409 `provider_has_no_reseller_api` on request, skipped by the refresh): their
remaining traffic comes from the hourly ledger snapshots. An upstream that fails a read on
request answers 502 with the upstream error's code (`upstream_auth_failed`, ...).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from accounts.models import SubAccount, UpstreamAccount
from core.errors import ApplicationError
from usage.models import Allocation, SubAccountTraffic, UpstreamPoolBalance
from usage.providers.base import DiscoveredSubAccount, UpstreamError
from usage.providers.reseller import ResellerConnector
from usage.services.connectors import (
    RESELLER_PROVIDERS,
    connector_for_upstream_account,
    reseller_api_check,
    reseller_connector_for_sub_account,
)

logger = logging.getLogger(__name__)

#: Rows per `get-sub-account-list` request (IPFoxy's maximum).
PAGE_SIZE = 100
#: A stored figure this young is served on request instead of asking the upstream.
STORED_FRESH_FOR = dt.timedelta(seconds=60)

_FIGURES = ["allocated_bytes", "used_bytes", "remaining_bytes", "as_of"]


def _aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ApplicationError("naive_datetime", "`now` must be an aware datetime.")
    return now


# --- every sub-account of an upstream account ----------------------------------------------


@dataclass
class TrafficRefresh:
    """What one refresh did. `missing`: ids of open sub-accounts a complete list left out
    (their figures untouched); only known when the walk completed."""

    upstream_account_id: int
    requests: int = 0  # upstream requests sent (retries included)
    pages: int = 0
    listed: int = 0  # rows received, the main account's included
    stored: int = 0  # sub-accounts whose figures were written
    ignored: int = 0  # rows matching no open Flowbill sub-account (the main account too)
    missing: list[int] = field(default_factory=list)
    error_code: str = ""  # the upstream error that cut the walk short
    skipped: str = ""  # why nothing was asked (`provider_has_no_reseller_api`, ...)

    @property
    def complete(self) -> bool:
        return not (self.error_code or self.skipped)

    def as_dict(self) -> dict[str, object]:
        return {
            "upstream_account": self.upstream_account_id,
            "requests": self.requests,
            "pages": self.pages,
            "listed": self.listed,
            "stored": self.stored,
            "ignored": self.ignored,
            "missing": len(self.missing),
            "error_code": self.error_code,
            "skipped": self.skipped,
        }


def _open_sub_accounts(upstream_account: UpstreamAccount) -> dict[str, int]:
    """Upstream id -> id of the open (not closed) Flowbill sub-account holding it."""
    return dict(
        SubAccount.objects.filter(upstream_account=upstream_account)
        .exclude(status=SubAccount.Status.CLOSED)
        .order_by("pk")
        .values_list("upstream_id", "pk")
    )


def _figures(sub_account_id: int, row: DiscoveredSubAccount, as_of: dt.datetime):
    return SubAccountTraffic(
        sub_account_id=sub_account_id,
        allocated_bytes=row.used_bytes + row.remaining_bytes,
        used_bytes=row.used_bytes,
        remaining_bytes=row.remaining_bytes,
        upstream_enabled=row.enabled,
        as_of=as_of,
    )


def _store_page(rows: list[SubAccountTraffic]) -> None:
    """Insert or replace one page's figures (one statement per page)."""
    if rows:
        with transaction.atomic():
            SubAccountTraffic.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["sub_account"],
                update_fields=[*_FIGURES, "upstream_enabled"],
            )


def _store_pool(upstream_account: UpstreamAccount, upstream, as_of: dt.datetime) -> None:
    """Keep the main account's pool balance (one more request, after the list)."""
    pool = upstream.pool_balance()
    UpstreamPoolBalance.objects.update_or_create(
        upstream_account=upstream_account,
        defaults={
            "total_bytes": pool.total_bytes,
            "remaining_bytes": pool.remaining_bytes,
            "as_of": as_of,
        },
    )


def sub_account_traffic_refresh(
    *,
    upstream_account: UpstreamAccount,
    now: dt.datetime,
    connector: ResellerConnector | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TrafficRefresh:
    """Walk `upstream_account`'s sub-account list once and store every open Flowbill
    sub-account's figures (see the module docstring). A page's `as_of` is `now` plus the
    time (`clock`, seconds) the walk took until that page arrived. Upstream errors end the
    walk and are reported in `error_code`, not raised. `connector`: tests."""
    now = _aware(now)
    result = TrafficRefresh(upstream_account_id=upstream_account.pk)
    if upstream_account.provider not in RESELLER_PROVIDERS:
        result.skipped = "provider_has_no_reseller_api"
        return result
    if not upstream_account.is_active:
        result.skipped = "upstream_account_inactive"
        return result
    held = _open_sub_accounts(upstream_account)
    seen: set[str] = set()
    started = clock()
    try:
        upstream = connector or connector_for_upstream_account(upstream_account=upstream_account)
        before = getattr(upstream, "requests", 0)
        try:
            for page in upstream.iter_sub_account_pages(page_size=PAGE_SIZE):
                as_of = now + dt.timedelta(seconds=clock() - started)
                result.pages += 1
                result.listed += len(page.rows)
                rows = []
                for row in page.rows:
                    sub_account_id = None if row.is_main else held.get(row.upstream_id)
                    if sub_account_id is None:
                        result.ignored += 1
                        continue
                    seen.add(row.upstream_id)
                    rows.append(_figures(sub_account_id, row, as_of))
                _store_page(rows)
                result.stored += len(rows)
            _store_pool(upstream_account, upstream, as_of if result.pages else now)
        finally:
            result.requests = getattr(upstream, "requests", 0) - before
    except UpstreamError as exc:
        result.error_code = exc.code
        logger.warning(
            "traffic refresh of upstream account %s stopped after %s pages: %s",
            upstream_account.pk, result.pages, exc, extra={"error_code": exc.code},
        )  # fmt: skip
    if result.complete:
        result.missing = sorted(pk for upstream_id, pk in held.items() if upstream_id not in seen)
        if result.missing:
            logger.warning(
                "traffic refresh of upstream account %s: %s open sub-accounts are not in the "
                "upstream's list (first ids %s); their figures are left as they were",
                upstream_account.pk, len(result.missing), result.missing[:10],
            )  # fmt: skip
    return result


# --- one sub-account, on request -----------------------------------------------------------


def _fresh_stored(sub_account: SubAccount, now: dt.datetime) -> SubAccountTraffic | None:
    """The stored figure if younger than `STORED_FRESH_FOR` and no allocation was confirmed
    since it was read (the figure would not show that traffic yet)."""
    stored = SubAccountTraffic.objects.filter(
        sub_account=sub_account, as_of__gt=now - STORED_FRESH_FOR
    ).first()
    if stored is None:
        return None
    confirmed_since = Allocation.objects.filter(
        sub_account=sub_account,
        status=Allocation.Status.CONFIRMED,
        confirmed_at__gte=stored.as_of,
    ).exists()
    return None if confirmed_since else stored


def _remember(sub_account: SubAccount, figures: dict[str, object]) -> SubAccountTraffic:
    """Store `figures` unless a newer figure is stored; return the stored row."""
    stored = SubAccountTraffic.objects.filter(sub_account=sub_account)
    if not stored.filter(as_of__lt=figures["as_of"]).update(**figures):
        try:
            with transaction.atomic():
                stored.get_or_create(sub_account=sub_account, defaults=figures)
        except IntegrityError:  # stored by a refresh meanwhile
            pass
    return stored.get()


def sub_account_traffic(
    *, sub_account: SubAccount, now: dt.datetime, connector: ResellerConnector | None = None
) -> SubAccountTraffic:
    """`sub_account`'s figures: stored ones when fresh, else asked from the upstream (one
    request) and stored. 409 unless its reseller API can be called (`reseller_api_check`);
    the upstream's code when it fails (502, or 503 when it could not be
    reached: try again). `connector`: tests."""
    now = _aware(now)
    reseller_api_check(sub_account=sub_account)
    stored = _fresh_stored(sub_account, now)
    if stored is not None:
        return stored
    try:
        upstream = connector or reseller_connector_for_sub_account(sub_account=sub_account)
        flow = upstream.sub_account_flow(account=sub_account.upstream_id)
    except UpstreamError as exc:
        extra: dict[str, object] = {"retryable": exc.retryable}
        if exc.retry_after is not None:
            extra["retry_after"] = exc.retry_after
        raise ApplicationError(
            exc.code, f"The upstream refused the read: {exc}", extra=extra
        ) from exc
    return _remember(
        sub_account,
        {
            "allocated_bytes": flow.used_bytes + flow.remaining_bytes,
            "used_bytes": flow.used_bytes,
            "remaining_bytes": flow.remaining_bytes,
            "as_of": flow.fetched_at,
        },
    )
