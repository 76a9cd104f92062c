"""A sub-account's traffic as the upstream counts it right now (IPFoxy `get-sub-account-flow`):
allocated, used and remaining bytes. Read on request, ahead of sync in the request budget.

IPFoxy caches the answer for a minute, so a read right after an allocation may not show it
yet. BytesFlows sub-accounts have no such read (409 `provider_has_no_reseller_api`): their
remaining traffic comes from the hourly ledger snapshots. An upstream that fails answers
502 with the upstream error's code (`upstream_auth_failed`, `upstream_unavailable`, ...).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from accounts.models import SubAccount
from config.errors import ApplicationError
from usage.providers.base import UpstreamError
from usage.providers.reseller import ResellerConnector
from usage.services.connectors import reseller_connector_for_sub_account


class UpstreamReadError(ApplicationError):
    """The upstream did not answer a read usefully: a 502 with the upstream error's code."""

    http_status = 502


@dataclass(frozen=True)
class SubAccountTraffic:
    allocated_bytes: int  # used + remaining
    used_bytes: int
    remaining_bytes: int
    as_of: dt.datetime  # when the upstream was asked (its figures may be a minute older)


def sub_account_traffic(
    *, sub_account: SubAccount, connector: ResellerConnector | None = None
) -> SubAccountTraffic:
    """Ask the upstream for `sub_account`'s counters (one request). `connector`: tests."""
    try:
        upstream = connector or reseller_connector_for_sub_account(sub_account=sub_account)
        flow = upstream.sub_account_flow(account=sub_account.upstream_id)
    except UpstreamError as exc:
        extra = {"retryable": exc.retryable}
        if exc.retry_after is not None:
            extra["retry_after"] = exc.retry_after
        raise UpstreamReadError(
            exc.code, f"The upstream refused the read: {exc}", extra=extra
        ) from exc
    return SubAccountTraffic(
        allocated_bytes=flow.used_bytes + flow.remaining_bytes,
        used_bytes=flow.used_bytes,
        remaining_bytes=flow.remaining_bytes,
        as_of=flow.fetched_at,
    )
