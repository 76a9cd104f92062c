"""Sync of history providers (IPFoxy): hourly buckets replace stored hours, days follow."""

from __future__ import annotations

import datetime as dt

from accounts.models import SubAccount
from accounts.selectors import sub_account_synced_until
from core.errors import ApplicationError
from usage.models import SyncRun
from usage.providers.base import BadResponseError, HistoryConnector
from usage.services.connectors import connector_for_upstream_account
from usage.services.runs import RunOutcome, run_locked_sync
from usage.services.storage import (
    ceil_hour,
    floor_hour,
    hours_and_days_replace,
    hours_and_days_replace_recorded,
    validate_hours,
)


def sync_window(*, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> tuple:
    """Whole UTC hours covering `[start, end)`, ending no later than the hour holding `now`."""
    for value in (start, end, now):
        if value.tzinfo is None:
            raise ApplicationError("naive_datetime", "Sync windows need aware datetimes.")
    window_start = floor_hour(start)
    window_end = min(ceil_hour(end), floor_hour(now) + dt.timedelta(hours=1))
    if window_end <= window_start:
        raise ApplicationError(
            "empty_sync_window", f"Nothing to sync between {window_start} and {window_end}."
        )
    return window_start, window_end


def usage_sync_sub_account(
    *,
    sub_account: SubAccount,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    connector: HistoryConnector | None = None,
    wait_seconds: float = 0.0,
    sync_run_id: int | None = None,
) -> SyncRun:
    """Fetch the hourly usage of one sub-account over `[start, end)` and store it.

    A closed sub-account is synced up to the end of its last day, never after (a window
    wholly after it is an `empty_sync_window` error). Stored hours in the window become
    exactly what the upstream reports (re-sync replaces,
    never adds; unchanged rows are not written; a changed bucket bumps its revision), then
    the affected reseller-local days are recomputed from the hours, all in one transaction.
    Any connector error or hostile row fails this sync only: nothing is written and the
    SyncRun says why. Returns the SyncRun (succeeded, failed or skipped): a new one, or the
    queued `sync_run_id` filled in (see `run_locked_sync`).
    """
    upstream = sub_account.upstream_account
    window_start, window_end = sync_window(start=start, end=end, now=now)
    closed_at = sub_account_synced_until(sub_account=sub_account)
    if closed_at is not None:
        # A closed sub-account's usage ends with its last day: the hours starting in it.
        if closed_at <= window_start:
            raise ApplicationError(
                "empty_sync_window",
                f"Sub-account {sub_account} is closed: its last day, {sub_account.active_to}, "
                f"ended before {window_start.isoformat()}.",
            )
        window_end = min(window_end, ceil_hour(closed_at))
    tz = upstream.reseller.tzinfo

    def fetch(outcome: RunOutcome) -> tuple:
        if upstream.provider != "ipfoxy" and connector is None:
            raise ApplicationError(
                "provider_has_no_history",
                f"{upstream.get_provider_display()} has no usage history; take a snapshot.",
            )
        conn = connector or connector_for_upstream_account(upstream_account=upstream)
        before = getattr(conn, "requests", 0)
        try:
            report = conn.fetch_hourly_usage(
                upstream_id=sub_account.upstream_id, start=window_start, end=window_end, now=now
            )
        except Exception:
            outcome.requests = getattr(conn, "requests", 0) - before
            raise
        outcome.pages, outcome.requests = report.pages, report.requests
        outcome.notes.extend(report.notes)
        if report.upstream_id != sub_account.upstream_id:
            raise BadResponseError("the upstream answered for another account")
        if report.window_start < window_start or report.window_end > window_end:
            raise BadResponseError("the report covers more than the requested window")
        hours = validate_hours(
            report.hours, window_start=report.window_start, window_end=report.window_end
        )
        return report, hours

    def write(payload: tuple, outcome: RunOutcome) -> None:
        report, hours = payload
        outcome.rows_written = hours_and_days_replace(
            sub_account_id=sub_account.pk,
            hours=hours,
            window_start=report.window_start,
            window_end=report.window_end,
            tz=tz,
        )

    def write_recorded(payload: tuple, run: dict, seconds: float, unlock_key: int | None):
        report, hours = payload
        return hours_and_days_replace_recorded(
            unlock_key=unlock_key,
            sub_account_id=sub_account.pk,
            hours=hours,
            window_start=report.window_start,
            window_end=report.window_end,
            tz=tz,
            run=run,
            run_seconds=seconds,
        )

    return run_locked_sync(
        write_recorded=write_recorded,
        sub_account=sub_account,
        kind=SyncRun.Kind.USAGE,
        now=now,
        window_start=window_start,
        window_end=window_end,
        wait_seconds=wait_seconds,
        fetch=fetch,
        write=write,
        sync_run_id=sync_run_id,
    )
