"""`data.object` of the usage app's webhook events, built by the webhook layer from the ids
the services record (`webhooks.payloads`; registered in `UsageConfig.ready()`).

The shapes are public (docs/api.md, "Webhooks"): resellers script against them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from accounts.models import Customer, SubAccount
from usage.models import Allocation, SyncRun, UsageAlert
from webhooks.catalogue import (
    ALLOCATION_CONFIRMED,
    ALLOCATION_FAILED,
    CUSTOMER_REINSTATED,
    CUSTOMER_SUSPENDED,
    SUB_ACCOUNT_PROVISIONED,
    SYNC_FAILED,
    USAGE_ALERT,
)
from webhooks.payloads import PayloadBuilder, rows_builder


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def sync_run_object(run: SyncRun) -> dict[str, Any]:
    """`sync.failed`: the API's sync run."""
    return {
        "object": "sync_run",
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "upstream_account": run.upstream_account_id,
        "sub_account": run.sub_account_id,
        "window_start": _iso(run.window_start),
        "window_end": _iso(run.window_end),
        "queued_at": _iso(run.queued_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "error_code": run.error_code,
        "error": run.error,
    }


def usage_alert_object(alert: UsageAlert) -> dict[str, Any]:
    """`usage.alert`: the alert and its rule."""
    rule = alert.rule
    return {
        "object": "usage_alert",
        "id": alert.pk,
        "rule": rule.pk,
        "kind": rule.kind,
        "customer": rule.customer_id,
        "sub_account": rule.sub_account_id,
        "period_start": alert.period_start.isoformat(),
        "fired_at": alert.fired_at.isoformat(),
        "measured_bytes": alert.measured_bytes,
        "threshold_bytes": alert.threshold_bytes,
        "unit_bytes": rule.unit_bytes,
        "message": alert.message,
    }


def sub_account_object(sub_account: SubAccount) -> dict[str, Any]:
    """`sub_account.provisioned`: the sub-account and its proxy login name (never its
    password)."""
    return {
        "id": sub_account.pk,
        "object": "sub_account",
        "upstream_id": sub_account.upstream_id,
        "customer": sub_account.customer_id,
        "upstream_account": sub_account.upstream_account_id,
        "label": sub_account.label,
        "proxy_username": sub_account.proxy_username,
        "status": sub_account.status,
        "provisioned_at": _iso(sub_account.provisioned_at),
    }


def allocation_object(allocation: Allocation) -> dict[str, Any]:
    """`allocation.confirmed` / `allocation.failed`: the API's allocation fields plus where it
    went."""
    sub_account = allocation.sub_account
    return {
        "id": allocation.pk,
        "object": "allocation",
        "sub_account": sub_account.pk,
        "upstream_id": sub_account.upstream_id,
        "customer": sub_account.customer_id,
        "bytes": allocation.bytes,
        "expires_in_days": allocation.expires_in_days,
        "reason": allocation.reason,
        "status": allocation.status,
        "error_code": allocation.error_code or None,
        "created_at": allocation.created_at.isoformat(),
        "settled_at": _iso(allocation.settled_at),
    }


def customer_suspension_object(customer: Customer) -> dict[str, Any]:
    """`customer.suspended` / `customer.reinstated`: the customer's suspension fields."""
    return {
        "id": customer.pk,
        "object": "customer",
        "status": customer.status,
        "suspended_at": _iso(customer.suspended_at),
        "suspension_reason": customer.suspension_reason,
        "suspended_by": customer.suspended_by or None,
    }


_allocations = rows_builder(Allocation, allocation_object, related=["sub_account"])
_customers = rows_builder(Customer, customer_suspension_object)

#: Registered in `UsageConfig.ready()`.
BUILDERS: dict[str, PayloadBuilder] = {
    SYNC_FAILED: rows_builder(SyncRun, sync_run_object),
    USAGE_ALERT: rows_builder(UsageAlert, usage_alert_object, related=["rule"]),
    SUB_ACCOUNT_PROVISIONED: rows_builder(SubAccount, sub_account_object),
    ALLOCATION_CONFIRMED: _allocations,
    ALLOCATION_FAILED: _allocations,
    CUSTOMER_SUSPENDED: _customers,
    CUSTOMER_REINSTATED: _customers,
}
