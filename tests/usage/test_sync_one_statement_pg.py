"""On PostgreSQL an IPFoxy sync not queued writes its hours, days, rollup and its SyncRun in
one statement with no transaction around it (`storage.hours_and_days_replace_recorded`):
what it commits, what it answers, and that a failing statement leaves nothing behind."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DataError, connection

from tests import factories
from tests.usage.fakes import MIB, FakeHistory, utc
from usage.models import ResellerUsageDay, SyncRun, UsageDay, UsageHour
from usage.services import storage_pg, usage_sync_sub_account

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

START, END = utc(2026, 3, 6), utc(2026, 3, 8)
ONE_MS = dt.timedelta(milliseconds=1)
HOURS = {START + dt.timedelta(hours=h): (h + 1) * MIB for h in range(30)}  # into the 7th


def _sync(sub, connector):
    return usage_sync_sub_account(
        sub_account=sub, start=START, end=END, now=END, connector=connector
    )


@pytest.fixture
def sub():
    reseller = factories.ResellerFactory(timezone="UTC")
    customer = factories.CustomerFactory(reseller=reseller)
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    return factories.SubAccountFactory(customer=customer, upstream_account=upstream)


@pytest.fixture
def sent(monkeypatch):
    """Every statement the sync's lock and write sent (`core.rawsql`), in order."""
    statements = []
    real = storage_pg.rawsql.fetchone

    def spy(sql, params, **kwargs):
        statements.append(sql)
        return real(sql, params, **kwargs)

    monkeypatch.setattr(storage_pg.rawsql, "fetchone", spy)
    return statements


def _advisory_locks_held() -> int:
    """Advisory locks this session (the sync's connection: the same thread) holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_rows_and_run_commit_in_one_statement_outside_any_transaction(sub, sent):
    """Two round trips in all: the lock, then the write that also releases it."""
    assert not connection.in_atomic_block
    run = _sync(sub, FakeHistory(HOURS))
    lock, write = sent
    assert lock == "SELECT pg_try_advisory_lock(%s)"
    assert '"usage_syncrun"' in write and '"usage_usagehour"' in write
    assert "pg_advisory_unlock(%s)" in write
    assert _advisory_locks_held() == 0

    stored = SyncRun.objects.get(pk=run.pk)
    assert run.status == stored.status == "succeeded"
    assert run.rows_written == stored.rows_written == 30 + 2  # 30 hours, 2 UTC days
    assert (run.pages, run.requests) == (stored.pages, stored.requests) == (1, 1)
    assert run.started_at == stored.started_at == END
    assert run.finished_at == stored.finished_at
    assert run.duration_ms == stored.duration_ms >= 0
    took = stored.finished_at - stored.started_at  # duration_ms is it, in whole ms
    assert dt.timedelta(0) <= took - dt.timedelta(milliseconds=stored.duration_ms) < ONE_MS
    assert (stored.window_start, stored.window_end) == (START, END)
    # The SyncRun it returns is the stored row, field for field, and known to be stored.
    for field in SyncRun._meta.concrete_fields:
        assert getattr(run, field.attname) == getattr(stored, field.attname), field.name
    assert (run._state.adding, run._state.db) == (False, "default")
    assert (stored.error_code, stored.error) == ("", "")

    assert UsageHour.objects.filter(sub_account=sub).count() == 30
    days = dict(UsageDay.objects.filter(sub_account=sub).values_list("day", "bytes"))
    assert days == {
        dt.date(2026, 3, 6): sum(range(1, 25)) * MIB,
        dt.date(2026, 3, 7): sum(range(25, 31)) * MIB,
    }
    rollup = ResellerUsageDay.objects.filter(reseller=sub.customer.reseller)
    assert sum(rollup.values_list("bytes", flat=True)) == sum(days.values())

    again = _sync(sub, FakeHistory(HOURS))
    assert (again.status, again.rows_written) == ("succeeded", 0)
    assert SyncRun.objects.filter(sub_account=sub).count() == 2


def test_a_failing_statement_writes_neither_rows_nor_its_run(sub, sent, monkeypatch):
    """The statement fails at its very end (a division by zero in its answer), after every
    part of it ran (PostgreSQL runs each data-modifying part to completion): none of it
    stays; the failed run is recorded on its own."""
    real = storage_pg._history_run_sql

    def failing(*args):
        sql = real(*args)
        assert "SELECT run.id, run.finished_at, run.duration_ms, c.hours, c.days" in sql
        return sql.replace("c.hours, c.days", "c.hours / 0, c.days")

    monkeypatch.setattr(storage_pg, "_history_run_sql", failing)
    with pytest.raises(DataError, match="division by zero"):
        _sync(sub, FakeHistory(HOURS))
    assert sum("WITH report" in sql for sql in sent) == 1
    assert _advisory_locks_held() == 0  # released when the sync ended
    assert not UsageHour.objects.filter(sub_account=sub).exists()
    assert not UsageDay.objects.filter(sub_account=sub).exists()
    assert not ResellerUsageDay.objects.exists()
    (failed,) = SyncRun.objects.filter(sub_account=sub)
    assert (failed.status, failed.error_code) == ("failed", "internal_error")


def test_a_queued_run_is_filled_in_its_transaction_as_before(sub, sent):
    queued = SyncRun.objects.create(
        upstream_account=sub.upstream_account,
        sub_account=sub,
        kind=SyncRun.Kind.USAGE,
        status=SyncRun.Status.QUEUED,
        queued_at=END,
    )
    run = usage_sync_sub_account(
        sub_account=sub,
        start=START,
        end=END,
        now=END,
        connector=FakeHistory(HOURS),
        sync_run_id=queued.pk,
    )
    # The rows went in the transaction that fills the queued run; the lock on its own.
    assert sent == ["SELECT pg_try_advisory_lock(%s)", "SELECT pg_advisory_unlock(%s)"]
    assert _advisory_locks_held() == 0
    assert run.pk == queued.pk
    assert SyncRun.objects.get(pk=queued.pk).rows_written == 32
    assert SyncRun.objects.filter(sub_account=sub).count() == 1
