"""SyncRun bookkeeping shared by every sync service, and the messages staff read.

A run that ends failed emits the `sync.failed` webhook event (`sync_run_failed_notify`):
once each time it ends failed (a run its task retries and that fails again sends again,
with the same `data.object.id`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction

from accounts.models import Provider, SubAccount
from accounts.selectors import sub_account_holder_ids
from core.errors import ApplicationError
from usage.locks import SyncLock, sub_account_sync_lock
from usage.models import SyncRun
from usage.providers.base import AuthError, UpstreamError
from usage.services.followups import usage_followups_enqueue
from usage.services.sql import row_insert
from usage.services.storage_pg import RecordedWrite
from webhooks.catalogue import SYNC_FAILED
from webhooks.events import webhook_event_record

MAX_ERROR_CHARS = 2000
_sqlite_writer = threading.RLock()
#: A queued run in one of these states is not run again by another delivery of its task. A
#: failed run is: that is how its task's retry works (transient errors retry with backoff).
DONE = (SyncRun.Status.SUCCEEDED, SyncRun.Status.SKIPPED)


def sync_run_failed_notify(run: SyncRun, *, reseller_id: int) -> None:
    """Record `sync.failed` for a run that ended failed. A failure to record it raises into
    the sync task (its failed outcome is stored already; the task's retry runs the sync again
    and a failure then records the event again), so the event is never silently lost."""
    if run.status == SyncRun.Status.FAILED:
        webhook_event_record(
            reseller_id=reseller_id, event_type=SYNC_FAILED, subject_id=run.pk, now=run.finished_at
        )


@dataclass
class RunOutcome:
    """What a sync did; written to its SyncRun when it ends."""

    status: str = SyncRun.Status.SUCCEEDED
    pages: int = 0
    requests: int = 0
    rows_written: int = 0
    error_code: str = ""
    error: str = ""
    notes: list[str] = field(default_factory=list)


def run_start(
    *,
    upstream_account_id: int,
    sub_account_id: int | None,
    kind: str,
    now: dt.datetime,
    window_start: dt.datetime | None = None,
    window_end: dt.datetime | None = None,
) -> tuple[SyncRun, float]:
    """Create the running SyncRun (committed at once, so staff see syncs in progress)."""
    run = SyncRun.objects.create(
        upstream_account_id=upstream_account_id,
        sub_account_id=sub_account_id,
        kind=kind,
        window_start=window_start,
        window_end=window_end,
        status=SyncRun.Status.RUNNING,
        started_at=now,
    )
    return run, time.monotonic()


def run_finish(run: SyncRun, outcome: RunOutcome, *, started: float) -> SyncRun:
    """Record the outcome; the end time is the start `now` plus the measured duration."""
    elapsed = time.monotonic() - started
    run.status = outcome.status
    run.pages = outcome.pages
    run.requests = outcome.requests
    run.rows_written = outcome.rows_written
    run.duration_ms = int(elapsed * 1000)
    run.finished_at = run.started_at + dt.timedelta(seconds=elapsed)
    run.error_code = outcome.error_code[:40]
    message = outcome.error
    if outcome.notes:
        message = "; ".join([*([message] if message else []), *outcome.notes])
    run.error = message[:MAX_ERROR_CHARS]
    run.save(
        update_fields=[
            "status",
            "pages",
            "requests",
            "rows_written",
            "duration_ms",
            "finished_at",
            "error_code",
            "error",
        ]
    )
    sync_run_failed_notify(run, reseller_id=run.upstream_account.reseller_id)
    return run


def fail(outcome: RunOutcome, exc: UpstreamError, *, provider: str) -> None:
    """Mark the outcome failed with the typed error's code and a message staff can act on.

    Connector errors carry request context but never credentials, so `str(exc)` is safe.
    """
    outcome.status = SyncRun.Status.FAILED
    outcome.error_code = exc.code
    if isinstance(exc, AuthError) and provider == Provider.BYTESFLOWS:
        outcome.error = (
            "token expired: BytesFlows refused this account's token; store a new token on "
            f"the sub-account ({exc})"
        )
    elif isinstance(exc, AuthError):
        outcome.error = (
            f"authentication failed: check the upstream account's API id and token ({exc})"
        )
    else:
        outcome.error = str(exc)


@contextmanager
def write_transaction() -> Iterator[None]:
    """One sync's write transaction. On SQLite (one writer at a time anyway) the threads of
    a process take turns on a lock first, instead of colliding on the database lock and
    sleeping in SQLite's busy handler."""
    if connection.vendor == "sqlite":
        with _sqlite_writer, transaction.atomic():
            yield
    else:
        with transaction.atomic():
            yield


def run_claim(
    *, sync_run_id: int, sub_account: SubAccount, kind: str, now: dt.datetime
) -> tuple[SyncRun, str]:
    """Take the queued run `sync_run_id` (of this sub-account and kind) for this delivery of
    its task; return it with the status it had.

    Under the row's lock: a queued or failed run becomes running from `now`; a run already
    succeeded or skipped (`DONE`) is left as is. A running one is left as is too: either
    another delivery holds it (then this one is skipped by the sub-account lock, and the
    other's outcome overwrites the skip) or its worker died (then this one runs it).
    """
    with write_transaction():
        run = SyncRun.objects.select_for_update().get(
            pk=sync_run_id, sub_account=sub_account, kind=kind
        )
        previous = run.status
        if previous in (SyncRun.Status.QUEUED, SyncRun.Status.FAILED):
            run.status = SyncRun.Status.RUNNING
            run.started_at = now
            run.save(update_fields=["status", "started_at"])
    return run, previous


def _run_values(
    *,
    sub_account: SubAccount,
    kind: str,
    now: dt.datetime,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    outcome: RunOutcome,
    elapsed: float,
) -> dict[str, Any]:
    """A finished run's fields: started at `now`, ended `elapsed` seconds later."""
    message = outcome.error
    if outcome.notes:
        message = "; ".join([*([message] if message else []), *outcome.notes])
    return {
        "upstream_account_id": sub_account.upstream_account_id,
        "sub_account_id": sub_account.pk,
        "kind": kind,
        "window_start": window_start,
        "window_end": window_end,
        "status": outcome.status,
        "pages": outcome.pages,
        "requests": outcome.requests,
        "rows_written": outcome.rows_written,
        "started_at": now,
        "finished_at": now + dt.timedelta(seconds=elapsed),
        "duration_ms": int(elapsed * 1000),
        "error_code": outcome.error_code[:40],
        "error": message[:MAX_ERROR_CHARS],
    }


def run_save(
    *,
    sub_account: SubAccount,
    kind: str,
    now: dt.datetime,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    outcome: RunOutcome,
    started: float,
    run: SyncRun | None = None,
) -> SyncRun:
    """Insert the finished SyncRun, or fill the queued `run` (inside the sync's write
    transaction when it succeeded, so the run and the rows it wrote commit together).

    A queued run that another delivery of its task has meanwhile finished successfully is
    left as it is (and returned as stored)."""
    values = _run_values(
        sub_account=sub_account,
        kind=kind,
        now=now,
        window_start=window_start,
        window_end=window_end,
        outcome=outcome,
        elapsed=time.monotonic() - started,
    )
    reseller_id = sub_account.upstream_account.reseller_id
    if run is None:
        created = row_insert(SyncRun(**values))
        sync_run_failed_notify(created, reseller_id=reseller_id)
        return created
    with write_transaction():
        stored = SyncRun.objects.select_for_update().row_of(run).get()
        if stored.status == SyncRun.Status.SUCCEEDED:
            return stored
        for name, value in values.items():
            setattr(stored, name, value)
        stored.save(update_fields=list(values))
    sync_run_failed_notify(stored, reseller_id=reseller_id)
    return stored


#: `(payload, run fields, seconds so far, advisory lock key or None) -> RecordedWrite | None`:
#: see `run_locked_sync` and `storage.hours_and_days_replace_recorded`.
WriteRecorded = Callable[[Any, dict[str, Any], float, int | None], RecordedWrite | None]


def _save_recorded(
    write_recorded: WriteRecorded,
    payload: Any,
    record: dict[str, Any],
    *,
    outcome: RunOutcome,
    started: float,
    lock: SyncLock,
) -> SyncRun | None:
    """The one-statement write of a succeeded sync and its SyncRun (`run_locked_sync`), then
    its after-sync tasks. The statement also releases the sync's lock when that is an
    advisory lock. Inside a caller's transaction it runs in a savepoint, so a failure
    leaves that transaction usable for the failed run (on its own the statement is atomic)."""
    fields = {name: value for name, value in record.items() if name != "run"}
    values = _run_values(**fields, outcome=outcome, elapsed=0.0)
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        seconds = time.monotonic() - started
        written = write_recorded(payload, values, seconds, lock.advisory_key)
        if written is None:
            return None
        lock.released = lock.advisory_key is not None
        outcome.rows_written = written.hours_written + written.days_written
        if outcome.rows_written:
            _followups_for_holders(record["sub_account"], record["window_start"])
    values.update(
        id=written.run_id,
        rows_written=outcome.rows_written,
        queued_at=None,  # not a queued run: the INSERT leaves it NULL
        finished_at=written.finished_at,
        duration_ms=written.duration_ms,
    )
    # The row as stored, built as a query's row is (positional values, half the CPU of
    # keyword arguments).
    names = _run_fields()
    return SyncRun.from_db(DEFAULT_DB_ALIAS, names, [values[name] for name in names])


@cache
def _run_fields() -> list[str]:
    """Every column of SyncRun, in the model's order (`Model.from_db`)."""
    return [field.attname for field in SyncRun._meta.concrete_fields]


def _followups_for_holders(sub_account: SubAccount, since: dt.datetime | None) -> None:
    """After-sync tasks for every customer that held the sub-account on a day the sync may
    have changed (a moved one's earlier holder too): from the window's first local day, or
    any day for a snapshot (its usage can reach back to the previous one)."""
    day = None if since is None else since.astimezone(sub_account.upstream_account.reseller.tzinfo)
    for customer_id in sub_account_holder_ids(
        sub_account=sub_account, since=None if day is None else day.date()
    ):
        usage_followups_enqueue(customer_id=customer_id)


def run_locked_sync(
    *,
    sub_account: SubAccount,
    kind: str,
    now: dt.datetime,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    wait_seconds: float,
    fetch: Callable[[RunOutcome], Any],
    write: Callable[[Any, RunOutcome], None],
    sync_run_id: int | None = None,
    write_recorded: WriteRecorded | None = None,
) -> SyncRun:
    """Under the sub-account's sync lock: `fetch` from the upstream (no database writes),
    then `write` and the SyncRun in one transaction.

    Typed upstream errors and application errors end the run as failed: the write
    transaction rolls back (or never starts), so stored usage is untouched, and the failed
    SyncRun is saved on its own. Anything else is a bug: recorded as failed with the
    exception type, then re-raised.

    With `sync_run_id` (a run queued by `usage_sync_request`) that row is filled instead of
    a new one inserted, and a delivery of a run already done returns it untouched without
    syncing (see `run_claim`).

    `write_recorded`, when the sync can write its rows AND its new SyncRun in one statement
    (IPFoxy on PostgreSQL): tried first for a run not queued; when it answers None, `write`
    and the SyncRun go in one transaction as above.
    """
    upstream = sub_account.upstream_account
    run = None
    if sync_run_id is not None:
        run, previous = run_claim(
            sync_run_id=sync_run_id, sub_account=sub_account, kind=kind, now=now
        )
        if previous in DONE:
            return run
    started = time.monotonic()
    outcome = RunOutcome()
    record = {
        "sub_account": sub_account,
        "kind": kind,
        "now": now,
        "window_start": window_start,
        "window_end": window_end,
        "run": run,
    }
    try:
        lock = sub_account_sync_lock(sub_account_id=sub_account.pk, wait_seconds=wait_seconds)
        with lock as held:
            if not held:
                outcome.status = SyncRun.Status.SKIPPED
                outcome.error_code = "sync_already_running"
                outcome.error = "another sync of this sub-account was running; skipped"
            else:
                try:
                    payload = fetch(outcome)
                    if run is None and write_recorded is not None:
                        recorded = _save_recorded(
                            write_recorded,
                            payload,
                            record,
                            outcome=outcome,
                            started=started,
                            lock=held,
                        )
                        if recorded is not None:
                            return recorded
                    with write_transaction():
                        write(payload, outcome)
                        if outcome.rows_written:
                            _followups_for_holders(sub_account, window_start)
                        return run_save(**record, outcome=outcome, started=started)
                except UpstreamError as exc:
                    fail(outcome, exc, provider=upstream.provider)
                except ApplicationError as exc:
                    outcome.status = SyncRun.Status.FAILED
                    outcome.error_code = exc.code
                    outcome.error = exc.message
                outcome.rows_written = 0
                return run_save(**record, outcome=outcome, started=started)
    except Exception as exc:
        outcome.status = SyncRun.Status.FAILED
        outcome.rows_written = 0
        outcome.error_code = "internal_error"
        outcome.error = f"unexpected {type(exc).__name__}; see the worker log"
        run_save(**record, outcome=outcome, started=started)
        raise
    return run_save(**record, outcome=outcome, started=started)
