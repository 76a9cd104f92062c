"""The reseller-wide usage rollup (`ResellerUsageDay`) equals the sum of the reseller's
`UsageDay` rows after every way days change: sync, resync, corrections, ledger usage, a
sub-account moving between customers, two writers at once (PostgreSQL); the rebuild and the
migration's backfill recompute it; the reseller-wide series reads it."""

import datetime as dt
import importlib
import threading
import types

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from accounts.models import Provider
from accounts.sub_accounts import sub_account_move
from tests import factories
from tests.usage.fakes import FakeHistory, FakeLedger, utc
from usage.models import ResellerUsageDay, UsageDay
from usage.providers.base import HourlyUsage
from usage.selectors import usage_series
from usage.services import usage_snapshot_bytesflows, usage_sync_sub_account
from usage.services.rollup import SLOTS, reseller_usage_days_rebuild
from usage.services.storage import days_recompute, hours_replace, validate_hours

MIB = 1_048_576
GIB = 2**30


def rollup(reseller) -> dict[dt.date, int]:
    rows = (
        ResellerUsageDay.objects.filter(reseller=reseller)
        .values_list("day")
        .annotate(total=Sum("bytes"))
        .order_by("day")
    )
    return {day: total for day, total in rows if total}


def stored_days(reseller) -> dict[dt.date, int]:
    rows = (
        UsageDay.objects.for_reseller(reseller)
        .values_list("day")
        .annotate(total=Sum("bytes"))
        .order_by("day")
    )
    return {day: total for day, total in rows if total}


def sync(sub, hours: dict[dt.datetime, int], *, start, end):
    run = usage_sync_sub_account(
        sub_account=sub, start=start, end=end, now=end, connector=FakeHistory(hours)
    )
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def shanghai():
    """A reseller in Asia/Shanghai (+08:00: 16:00Z starts the next local day) with two
    customers and three sub-accounts, two of them in the same slot."""
    reseller = factories.ResellerFactory(timezone="Asia/Shanghai")
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    a, b = factories.CustomerFactory.create_batch(2, reseller=reseller)
    subs = [
        factories.SubAccountFactory(customer=customer, upstream_account=upstream)
        for customer in (a, a, b)
    ]
    while subs[2].pk % SLOTS != subs[0].pk % SLOTS:  # b's sub-account shares a's first slot
        subs[2].delete()
        subs[2] = factories.SubAccountFactory(customer=b, upstream_account=upstream)
    return types.SimpleNamespace(reseller=reseller, upstream=upstream, a=a, b=b, subs=subs)


START, END = utc(2026, 3, 5, 12), utc(2026, 3, 6, 12)  # Shanghai 5 Mar 20:00 - 6 Mar 20:00


@pytest.mark.django_db
def test_rollup_equals_the_days_after_sync_resync_and_corrections(shanghai):
    first, second, third = shanghai.subs
    hours = {START + dt.timedelta(hours=i): (i + 1) * MIB for i in range(24)}
    sync(first, hours, start=START, end=END)
    sync(second, {utc(2026, 3, 5, 20): 5 * MIB}, start=START, end=END)
    sync(third, {utc(2026, 3, 6, 2): 7 * MIB}, start=START, end=END)
    # Hours 12:00-15:00Z are 5 March in Shanghai, 16:00Z on 6 March.
    expected = {
        dt.date(2026, 3, 5): (1 + 2 + 3 + 4) * MIB,
        dt.date(2026, 3, 6): (sum(range(5, 25)) + 5 + 7) * MIB,
    }
    assert rollup(shanghai.reseller) == stored_days(shanghai.reseller) == expected

    sync(first, hours, start=START, end=END)  # the same report again: nothing changes
    assert rollup(shanghai.reseller) == expected

    hours[START] = 10 * MIB  # the upstream corrects an hour up...
    del hours[START + dt.timedelta(hours=23)]  # ...and drops one (stored as 0)
    sync(first, hours, start=START, end=END)
    expected = {
        dt.date(2026, 3, 5): (10 + 2 + 3 + 4) * MIB,
        dt.date(2026, 3, 6): (sum(range(5, 24)) + 5 + 7) * MIB,
    }
    assert rollup(shanghai.reseller) == stored_days(shanghai.reseller) == expected

    sync(third, {}, start=START, end=END)  # everything of a sub-account withdrawn
    expected[dt.date(2026, 3, 6)] -= 7 * MIB
    assert rollup(shanghai.reseller) == stored_days(shanghai.reseller) == expected


@pytest.mark.django_db
def test_a_resync_of_part_of_a_day_keeps_that_days_hours_outside_the_window(shanghai):
    first = shanghai.subs[0]
    hours = {START + dt.timedelta(hours=i): (i + 1) * MIB for i in range(24)}
    sync(first, hours, start=START, end=END)
    # 6 March in Shanghai runs 16:00Z-16:00Z; resync only 02:00-05:00Z of it: 02Z (15 MiB)
    # and 04Z (17 MiB) are no longer reported, 03Z becomes 100 MiB instead of 16.
    run = sync(
        first, {utc(2026, 3, 6, 3): 100 * MIB}, start=utc(2026, 3, 6, 2), end=utc(2026, 3, 6, 5)
    )
    assert run.rows_written == 3 + 1  # three hours, one day
    day = UsageDay.objects.get(sub_account=first, day=dt.date(2026, 3, 6))
    assert (day.bytes, day.revision) == ((sum(range(5, 25)) - 15 - 16 - 17 + 100) * MIB, 1)
    expected = {dt.date(2026, 3, 5): (1 + 2 + 3 + 4) * MIB, dt.date(2026, 3, 6): 342 * MIB}
    assert rollup(shanghai.reseller) == stored_days(shanghai.reseller) == expected


@pytest.mark.django_db
def test_ledger_usage_adds_to_the_rollup(shanghai):
    upstream = factories.UpstreamAccountFactory(
        reseller=shanghai.reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    sub = factories.SubAccountFactory(
        customer=shanghai.a, upstream_account=upstream, credentials={"token": "bf-secret"}
    )
    ledger = FakeLedger()
    for hour, used in ((10, 5000), (11, 8000), (17, 20_000)):
        ledger.push(utc(2026, 3, 6, hour), [("r1", GIB, used, True, utc(2026, 3, 1))])
        usage_snapshot_bytesflows(sub_account=sub, now=utc(2026, 3, 6, hour), connector=ledger)
    # 3,000 bytes in 10:00Z (6 March in Shanghai), 12,000 over 11:00-17:00Z (2,000 an hour;
    # from 16:00Z the 7th).
    assert rollup(shanghai.reseller) == {
        dt.date(2026, 3, 6): 3000 + 5 * 2000,
        dt.date(2026, 3, 7): 2000,
    }
    assert rollup(shanghai.reseller) == stored_days(shanghai.reseller)


@pytest.mark.django_db
def test_a_sub_account_moving_between_customers_keeps_the_rollup_equal_to_the_days(shanghai):
    first = shanghai.subs[0]
    sync(first, {utc(2026, 3, 6, 2): 3 * MIB}, start=START, end=END)
    sub_account_move(sub_account=first, to_customer=shanghai.b, on_day=dt.date(2026, 3, 7))
    first.refresh_from_db()
    later = {utc(2026, 3, 6, 2): 3 * MIB, utc(2026, 3, 7, 2): 4 * MIB}
    sync(first, later, start=START, end=utc(2026, 3, 7, 12))
    assert rollup(shanghai.reseller) == stored_days(shanghai.reseller)
    assert rollup(shanghai.reseller) == {dt.date(2026, 3, 6): 3 * MIB, dt.date(2026, 3, 7): 4 * MIB}
    series = usage_series(
        reseller=shanghai.reseller,
        granularity="day",
        first_day=dt.date(2026, 3, 6),
        last_day=dt.date(2026, 3, 7),
    )
    assert [point.bytes for point in series] == [3 * MIB, 4 * MIB]


@pytest.mark.django_db
def test_the_reseller_wide_series_reads_the_rollup_and_a_customer_series_its_days(shanghai):
    first, _, third = shanghai.subs
    sync(first, {utc(2026, 3, 6, 2): 3 * MIB}, start=START, end=END)
    sync(third, {utc(2026, 3, 6, 3): 4 * MIB}, start=START, end=END)
    day = dt.date(2026, 3, 6)
    rollup_table = ResellerUsageDay._meta.db_table
    for customer_id, expected, table in (
        (None, 7 * MIB, rollup_table),
        (shanghai.b.pk, 4 * MIB, UsageDay._meta.db_table),
    ):
        for granularity in ("day", "month"):
            with CaptureQueriesContext(connection) as queries:
                points = usage_series(
                    reseller=shanghai.reseller,
                    granularity=granularity,
                    first_day=day,
                    last_day=day,
                    customer_id=customer_id,
                )
            assert [point.bytes for point in points] == [expected]
            assert len(queries) == 1
            assert table in queries[0]["sql"]
            assert (rollup_table in queries[0]["sql"]) == (customer_id is None)


@pytest.mark.django_db
def test_rebuild_recomputes_a_rollup_that_drifted(shanghai):
    first, second, _ = shanghai.subs
    sync(first, {utc(2026, 3, 6, 2): 3 * MIB}, start=START, end=END)
    sync(second, {utc(2026, 3, 5, 13): 2 * MIB}, start=START, end=END)
    other = factories.SubAccountFactory()  # another reseller: untouched by the rebuild
    sync(other, {utc(2026, 3, 6, 2): 9 * MIB}, start=START, end=END)
    UsageDay.objects.filter(sub_account=first).update(bytes=5 * MIB)  # written around storage
    ResellerUsageDay.objects.filter(reseller=shanghai.reseller, day=dt.date(2026, 3, 5)).delete()
    assert rollup(shanghai.reseller) == {dt.date(2026, 3, 6): 3 * MIB}

    reseller_usage_days_rebuild(reseller=shanghai.reseller)
    assert rollup(shanghai.reseller) == {dt.date(2026, 3, 5): 2 * MIB, dt.date(2026, 3, 6): 5 * MIB}
    assert rollup(other.customer.reseller) == {dt.date(2026, 3, 6): 9 * MIB}


@pytest.mark.django_db
def test_the_rebuild_command_rebuilds_one_reseller_by_slug(shanghai, capsys):
    sync(shanghai.subs[1], {utc(2026, 3, 6, 2): 3 * MIB}, start=START, end=END)
    ResellerUsageDay.objects.all().delete()
    call_command("rebuild_usage_rollup", reseller=shanghai.reseller.slug)
    assert rollup(shanghai.reseller) == {dt.date(2026, 3, 6): 3 * MIB}
    assert f"{shanghai.reseller.slug}: 1 rollup rows" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_migration_backfills_the_rollup_from_stored_days(shanghai):
    first, second, third = shanghai.subs
    UsageDay.objects.bulk_create(  # loaded around storage, as before the rollup existed
        UsageDay(sub_account=sub, day=dt.date(2026, 3, day), bytes=n * MIB)
        for sub, day, n in ((first, 1, 1), (second, 1, 2), (third, 1, 4), (third, 2, 8))
    )
    assert rollup(shanghai.reseller) == {}
    migration = importlib.import_module("usage.migrations.0011_reseller_usage_day_rollup")
    from django.apps import apps

    migration.backfill(apps, types.SimpleNamespace(connection=connection))
    assert rollup(shanghai.reseller) == {dt.date(2026, 3, 1): 7 * MIB, dt.date(2026, 3, 2): 8 * MIB}
    # first and third share a slot: one row for them on the 1st, one for second
    assert ResellerUsageDay.objects.filter(day=dt.date(2026, 3, 1)).count() == 2


def _write_hours(sub, hours: dict[dt.datetime, int]) -> None:
    """What a sync writes, without the sync lock around it (different sub-accounts)."""
    report = validate_hours(
        [
            HourlyUsage(hour_start=h, bytes=n, raw_value=str(n), raw_unit="B")
            for h, n in hours.items()
        ],
        window_start=START,
        window_end=END,
    )
    changed = hours_replace(sub_account_id=sub.pk, hours=report, window_start=START, window_end=END)
    days_recompute(sub_account_id=sub.pk, hours=changed, tz=sub.customer.reseller.tzinfo)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_of_one_reseller_day_and_slot_both_land_in_the_rollup(shanghai):
    """The second writer's addition waits on the row the first holds until it commits,
    then adds to the committed figure (a read-modify-write would lose one of them)."""
    first, _, third = shanghai.subs  # different customers, the same slot
    first_wrote, errors = threading.Event(), []

    def writer(sub, hours, *, hold: bool):
        try:
            with transaction.atomic():
                if not hold:
                    first_wrote.wait(5)
                _write_hours(sub, hours)
                if hold:
                    first_wrote.set()
                    threading.Event().wait(0.5)  # the other writer is now blocked on the row
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=writer, args=(first, {utc(2026, 3, 6, 2): 3 * MIB}), kwargs={"hold": True}
        ),
        threading.Thread(
            target=writer, args=(third, {utc(2026, 3, 6, 3): 4 * MIB}), kwargs={"hold": False}
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert rollup(shanghai.reseller) == stored_days(shanghai.reseller)
    assert rollup(shanghai.reseller) == {dt.date(2026, 3, 6): 7 * MIB}
    slot = first.pk % SLOTS
    assert ResellerUsageDay.objects.get(reseller=shanghai.reseller, slot=slot).bytes == 7 * MIB
