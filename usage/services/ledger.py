"""Metering of ledger providers (BytesFlows) from successive snapshots of the grant ledger.

Per grant record id, usage is the increase of `trafficUsed` since the previous snapshot:
- a record first seen after the account's first snapshot counts from 0, from the later of
  the previous snapshot and the record's creation time;
- the account's first snapshot is a baseline: counters are recorded, no usage is derived
  (what was used before Flowbill watched the account has no known time, and was not sold
  through Flowbill);
- a decrease is stored as a `UsageAnomaly` for review and never yields negative usage; the
  stored counter keeps its high-water mark so a glitch that recovers is not counted twice;
- expiry (a record turning inactive) forfeits the unused rest of the grant: recorded on the
  record and the snapshot, never counted as usage.
Each record's increase is spread over the UTC hours of its interval (`spread_over_hours`)
and ADDED to those hour buckets. A snapshot is stored once (unique per sub-account and
`taken_at`) and attributed exactly once, under the sub-account's sync lock, in one
transaction with the hours it adds to.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from accounts.models import SubAccount
from core.errors import ApplicationError
from usage.models import LedgerRecordState, LedgerSnapshot, SyncRun, UsageAnomaly
from usage.providers.base import BadResponseError, LedgerConnector
from usage.providers.base import LedgerSnapshot as LedgerSnapshotDTO
from usage.services.connectors import connector_for_upstream_account
from usage.services.runs import RunOutcome, run_locked_sync
from usage.services.storage import days_recompute, hours_add, spread_over_hours

_STATE_FIELDS = [
    "order_id",
    "source_type",
    "traffic",
    "traffic_used",
    "active",
    "expires_at",
    "forfeited_bytes",
    "last_seen_at",
]


def usage_snapshot_bytesflows(
    *,
    sub_account: SubAccount,
    now: dt.datetime,
    connector: LedgerConnector | None = None,
    wait_seconds: float = 0.0,
    sync_run_id: int | None = None,
) -> SyncRun:
    """Take one ledger snapshot of a BytesFlows sub-account and meter usage from it.

    An expired or revoked token fails the run with "token expired" for staff. With
    `sync_run_id` the queued run is filled in instead of a new one (see `run_locked_sync`).
    """
    upstream = sub_account.upstream_account
    tz = upstream.reseller.tzinfo

    def fetch(outcome: RunOutcome) -> LedgerSnapshotDTO:
        conn = connector or connector_for_upstream_account(upstream_account=upstream)
        before = getattr(conn, "requests", 0)
        try:
            snapshot = conn.fetch_ledger(credentials=sub_account.credentials, now=now)
        except Exception:
            outcome.requests = getattr(conn, "requests", 0) - before
            raise
        outcome.pages, outcome.requests = snapshot.pages, snapshot.requests
        _validate(snapshot)
        return snapshot

    def write(snapshot: LedgerSnapshotDTO, outcome: RunOutcome) -> None:
        outcome.rows_written = ledger_snapshot_apply(
            sub_account=sub_account, snapshot=snapshot, tz=tz, outcome=outcome
        )

    return run_locked_sync(
        sub_account=sub_account,
        kind=SyncRun.Kind.SNAPSHOT,
        now=now,
        window_start=None,
        window_end=now,
        wait_seconds=wait_seconds,
        fetch=fetch,
        write=write,
        sync_run_id=sync_run_id,
    )


def _validate(snapshot: LedgerSnapshotDTO) -> None:
    if snapshot.taken_at.tzinfo is None:
        raise BadResponseError("snapshot time is naive")
    for value in (snapshot.total_traffic, snapshot.available_traffic):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadResponseError("asset traffic is not a non-negative integer")
    seen = set()
    for record in snapshot.records:
        if record.record_id in seen:
            raise BadResponseError("a traffic record id appears twice", context={"id": "dup"})
        seen.add(record.record_id)
        for value in (record.traffic, record.traffic_used):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BadResponseError(
                    "traffic record counters are not non-negative integers",
                    context={"record_id": record.record_id},
                )


def ledger_snapshot_apply(
    *, sub_account: SubAccount, snapshot: LedgerSnapshotDTO, tz, outcome: RunOutcome
) -> int:
    """Store `snapshot` and attribute its usage; return rows written. Call in a transaction,
    under the sub-account's sync lock. A snapshot already stored is a no-op."""
    _validate(snapshot)
    taken_at = snapshot.taken_at
    if LedgerSnapshot.objects.filter(sub_account=sub_account, taken_at=taken_at).exists():
        outcome.notes.append("snapshot already stored; nothing attributed")
        return 0
    previous = LedgerSnapshot.objects.filter(sub_account=sub_account).order_by("-taken_at").first()
    if previous is not None and previous.taken_at > taken_at:
        raise ApplicationError(
            "snapshot_out_of_order", "A later snapshot of this account is already stored."
        )
    states = {s.record_id: s for s in LedgerRecordState.objects.filter(sub_account=sub_account)}
    additions: dict[dt.datetime, int] = defaultdict(int)
    anomalies: list[UsageAnomaly] = []
    new_states: list[LedgerRecordState] = []
    usage_total = forfeited_total = 0

    for record in snapshot.records:
        state = states.get(record.record_id)
        if state is None:
            used_before = 0
            interval_start = previous.taken_at if previous else None
            if interval_start and record.created_at and record.created_at > interval_start:
                interval_start = min(record.created_at, taken_at)
            state = LedgerRecordState(
                sub_account=sub_account,
                record_id=record.record_id,
                traffic=record.traffic,
                traffic_used=0,
                first_seen_at=taken_at,
                last_seen_at=taken_at,
            )
        else:
            used_before = state.traffic_used
            interval_start = previous.taken_at if previous else None
        increase = record.traffic_used - used_before
        if increase > 0 and interval_start is not None:
            usage_total += increase
            for hour, nbytes in spread_over_hours(
                start=interval_start, end=taken_at, total=increase
            ).items():
                additions[hour] += nbytes
        elif increase < 0:
            anomalies.append(
                UsageAnomaly(
                    sub_account=sub_account,
                    kind=UsageAnomaly.Kind.COUNTER_DECREASED,
                    record_id=record.record_id[:64],
                    previous_value=used_before,
                    current_value=record.traffic_used,
                    detected_at=taken_at,
                    note="trafficUsed went backwards; no usage counted, counter kept at its peak",
                )
            )
        high_water = max(used_before, record.traffic_used)
        if state.active and not record.active:
            state.forfeited_bytes = max(record.traffic - high_water, 0)
            forfeited_total += state.forfeited_bytes
        state.order_id = record.order_id[:64]
        state.source_type = record.source_type[:16]
        state.traffic = record.traffic
        state.traffic_used = high_water
        state.active = record.active
        state.expires_at = record.expires_at
        state.last_seen_at = taken_at
        new_states.append(state)

    stored = LedgerSnapshot.objects.create(
        sub_account=sub_account,
        taken_at=taken_at,
        total_traffic=snapshot.total_traffic,
        available_traffic=snapshot.available_traffic,
        balance=snapshot.balance,
        currency=(snapshot.currency or "")[:3],
        record_count=len(snapshot.records),
        usage_bytes=usage_total,
        forfeited_bytes=forfeited_total,
        is_baseline=previous is None,
    )
    if new_states:
        LedgerRecordState.objects.bulk_create(
            new_states,
            update_conflicts=True,
            unique_fields=["sub_account", "record_id"],
            update_fields=_STATE_FIELDS,
        )
    for anomaly in anomalies:
        anomaly.snapshot = stored
    UsageAnomaly.objects.bulk_create(anomalies)
    if anomalies:
        outcome.notes.append(f"{len(anomalies)} counter decrease(s) recorded for review")
    if previous is None:
        outcome.notes.append("first snapshot: baseline recorded, no usage derived")
    hours = hours_add(sub_account_id=sub_account.pk, additions=dict(additions))
    days = days_recompute(sub_account_id=sub_account.pk, hours=hours, tz=tz)
    return 1 + len(hours) + days
