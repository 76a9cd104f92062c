"""IPFoxy sub-account discovery: keep the upstream's list so staff can attach new ones."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Case, When

from accounts.models import SubAccount, UpstreamAccount
from usage.models import SyncRun, UpstreamSubAccount
from usage.providers.base import BadResponseError, HistoryConnector, UpstreamError
from usage.services.connectors import connector_for_upstream_account
from usage.services.runs import RunOutcome, fail, run_finish, run_start

_UPDATE_FIELDS = [
    "sub_account",
    "enabled",
    "is_main",
    "used_bytes",
    "remaining_bytes",
    "upstream_created_at",
    "expires_at",
    "seen_at",
]


#: A discovery still `running` this long after it started belongs to a worker that died
#: (killed or restarted mid-run): a discovery takes seconds, its requests time out in minutes.
STALE_RUN_AFTER = dt.timedelta(minutes=15)


def usage_discover_sub_accounts(
    *,
    upstream_account: UpstreamAccount,
    now: dt.datetime,
    connector: HistoryConnector | None = None,
) -> SyncRun:
    """Store the upstream's sub-account list (upsert by upstream id) and link known ones.

    New rows start their counter baseline at `now`; later runs move only the latest
    counters, so `usage_counter_cross_check` can compare counter growth with stored hours.
    Sub-accounts that vanish upstream are kept (with their last `seen_at`). Runs of this
    upstream account left `running` by a dead worker are closed as failed first.
    """
    SyncRun.objects.filter(
        upstream_account=upstream_account,
        kind=SyncRun.Kind.DISCOVERY,
        status=SyncRun.Status.RUNNING,
        started_at__lt=now - STALE_RUN_AFTER,
    ).update(
        status=SyncRun.Status.FAILED,
        error_code="worker_lost",
        error="the worker stopped before this run finished (killed or restarted); "
        "a later run took over",
    )
    run, started = run_start(
        upstream_account_id=upstream_account.pk,
        sub_account_id=None,
        kind=SyncRun.Kind.DISCOVERY,
        now=now,
    )
    outcome = RunOutcome()
    try:
        conn = connector or connector_for_upstream_account(upstream_account=upstream_account)
        before = getattr(conn, "requests", 0)
        try:
            listed = conn.list_sub_accounts()
        finally:
            outcome.requests = getattr(conn, "requests", 0) - before
        ids = [item.upstream_id for item in listed]
        if len(set(ids)) != len(ids):
            raise BadResponseError("the sub-account list repeats an account")
        for item in listed:
            if item.used_bytes < 0 or item.remaining_bytes < 0:
                raise BadResponseError(
                    "negative traffic counter", context={"account": item.upstream_id}
                )
        # An upstream id held by an open sub-account and closed ones: the open one (else
        # the latest closed one) is linked.
        linked = dict(
            SubAccount.objects.filter(upstream_account=upstream_account)
            .order_by(Case(When(status=SubAccount.Status.CLOSED, then=0), default=1), "pk")
            .values_list("upstream_id", "pk")
        )
        rows = [
            UpstreamSubAccount(
                upstream_account=upstream_account,
                upstream_id=item.upstream_id,
                sub_account_id=linked.get(item.upstream_id),
                enabled=item.enabled,
                is_main=item.is_main,
                used_bytes=item.used_bytes,
                remaining_bytes=item.remaining_bytes,
                upstream_created_at=item.created_at,
                expires_at=item.expires_at,
                baseline_used_bytes=item.used_bytes,
                baseline_at=now,
                seen_at=now,
            )
            for item in listed
        ]
        with transaction.atomic():
            UpstreamSubAccount.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["upstream_account", "upstream_id"],
                update_fields=_UPDATE_FIELDS,
                batch_size=500,
            )
        outcome.rows_written = len(rows)
    except UpstreamError as exc:
        fail(outcome, exc, provider=upstream_account.provider)
    return run_finish(run, outcome, started=started)
