"""Integration: sync against the local upstream simulator (no internet)."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Provider
from tests import factories
from usage.models import LedgerSnapshot, SyncRun, UpstreamSubAccount, UsageDay, UsageHour
from usage.services import (
    usage_discover_sub_accounts,
    usage_snapshot_bytesflows,
    usage_sync_sub_account,
)
from usage.simulator import SimulatorConfig, start_simulator

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=7, now=NOW, rate_limit_enabled=False)
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.fixture
def ipfoxy_sub(sim, reseller, customer):
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller, base_url=sim.url, credentials=CREDS
    )
    return factories.SubAccountFactory(
        customer=customer, upstream_account=upstream, upstream_id="SIM00001"
    )


def _mib_bytes(flow: str) -> int:
    return int((Decimal(flow) * 1_048_576).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.mark.django_db
def test_72_hours_land_as_the_simulator_reports_them_in_one_request(sim, ipfoxy_sub):
    start = NOW - dt.timedelta(hours=72)
    run = usage_sync_sub_account(sub_account=ipfoxy_sub, start=start, end=NOW, now=NOW)
    assert run.status == "succeeded", run.error
    assert run.requests == 1
    expected = sim.expected_hourly_flows(
        account="SIM00001", start=run.window_start, end=run.window_end
    )
    stored = dict(
        UsageHour.objects.filter(sub_account=ipfoxy_sub).values_list("hour_start", "raw_value")
    )
    assert stored == expected
    hours = dict(
        UsageHour.objects.filter(sub_account=ipfoxy_sub).values_list("hour_start", "bytes")
    )
    assert hours == {h: _mib_bytes(flow) for h, flow in expected.items()}
    assert sum(UsageDay.objects.filter(sub_account=ipfoxy_sub).values_list("bytes", flat=True)) == (
        sum(hours.values())
    )


@pytest.mark.django_db
def test_upstream_revision_bumps_the_bucket_revision_on_resync(sim, ipfoxy_sub):
    start = NOW - dt.timedelta(hours=24)
    usage_sync_sub_account(sub_account=ipfoxy_sub, start=start, end=NOW, now=NOW)
    again = usage_sync_sub_account(sub_account=ipfoxy_sub, start=start, end=NOW, now=NOW)
    assert again.rows_written == 0
    hour = dt.datetime(2026, 3, 10, 3, tzinfo=dt.UTC)
    sim.revise(account="SIM00001", hour=hour, flow="12.5")
    usage_sync_sub_account(sub_account=ipfoxy_sub, start=start, end=NOW, now=NOW)
    row = UsageHour.objects.get(sub_account=ipfoxy_sub, hour_start=hour)
    assert (row.bytes, row.raw_value, row.revision) == (13_107_200, "12.5", 1)


@pytest.mark.django_db
def test_wrong_credentials_fail_cleanly(sim, ipfoxy_sub):
    upstream = ipfoxy_sub.upstream_account
    upstream.credentials = {"api_id": "demo-api-id", "api_token": "wrong-token"}
    upstream.save()
    run = usage_sync_sub_account(
        sub_account=ipfoxy_sub, start=NOW - dt.timedelta(hours=3), end=NOW, now=NOW
    )
    assert (run.status, run.error_code) == ("failed", "upstream_auth_failed")
    assert "wrong-token" not in run.error
    assert not UsageHour.objects.exists()


@pytest.mark.django_db
def test_html_fault_fails_and_keeps_stored_usage(sim, ipfoxy_sub):
    start = NOW - dt.timedelta(hours=6)
    usage_sync_sub_account(sub_account=ipfoxy_sub, start=start, end=NOW, now=NOW)
    before = list(UsageHour.objects.order_by("hour_start").values_list("bytes", "revision"))
    sim.set_faults(html=4)  # one HTML page is retried; this one outlasts the 4 attempts
    run = usage_sync_sub_account(sub_account=ipfoxy_sub, start=start, end=NOW, now=NOW)
    assert (run.status, run.error_code) == ("failed", "upstream_bad_response")
    assert list(UsageHour.objects.order_by("hour_start").values_list("bytes", "revision")) == (
        before
    )


@pytest.mark.django_db
def test_bytesflows_snapshots_meter_usage_and_expired_token_says_so(sim, reseller, customer):
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, base_url=sim.url, credentials={}
    )
    sub = factories.SubAccountFactory(
        customer=customer,
        upstream_account=upstream,
        upstream_id="alice",
        credentials={"token": "bf-alice"},
    )
    first = usage_snapshot_bytesflows(sub_account=sub, now=sim.now())
    assert first.status == "succeeded", first.error
    sim.advance(3 * 3600)
    second = usage_snapshot_bytesflows(sub_account=sub, now=sim.now())
    assert second.status == "succeeded", second.error
    latest = LedgerSnapshot.objects.filter(sub_account=sub).order_by("-taken_at").first()
    assert latest.usage_bytes > 0
    assert sum(UsageHour.objects.filter(sub_account=sub).values_list("bytes", flat=True)) == (
        latest.usage_bytes
    )
    sim.expire_token("bf-alice")
    sim.advance(3600)
    failed = usage_snapshot_bytesflows(sub_account=sub, now=sim.now())
    assert (failed.status, failed.error_code) == ("failed", "upstream_auth_failed")
    assert failed.error.startswith("token expired")


@pytest.mark.django_db
def test_discovery_lists_sub_accounts_and_links_known_ones(sim, ipfoxy_sub):
    run = usage_discover_sub_accounts(upstream_account=ipfoxy_sub.upstream_account, now=NOW)
    assert run.status == "succeeded", run.error
    rows = UpstreamSubAccount.objects.filter(upstream_account=ipfoxy_sub.upstream_account)
    assert rows.count() == 21
    assert rows.get(upstream_id="SIMMAIN").is_main
    assert rows.get(upstream_id="SIM00001").sub_account_id == ipfoxy_sub.pk
    assert rows.filter(sub_account__isnull=True).count() == 20


@pytest.mark.django_db
def test_sync_usage_command_backfills_and_summarises(sim, ipfoxy_sub):
    out = StringIO()
    call_command(
        "sync_usage",
        "--since",
        "2026-03-08",
        "--until",
        "2026-03-09",
        "--workers",
        "1",
        "--no-progress",
        "--now",
        NOW.isoformat(),
        stdout=out,
    )
    assert "1 ok, 0 failed" in out.getvalue()
    days = set(UsageDay.objects.filter(sub_account=ipfoxy_sub).values_list("day", flat=True))
    assert days == {dt.date(2026, 3, 8), dt.date(2026, 3, 9)}
    assert SyncRun.objects.get().requests == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-13-01"], "--since must be a date"),
        (["--since", "2026-03-09", "--until", "2026-03-01"], "--until must not be before"),
        (["--sub-account", "999999"], "No sub-account with id 999999"),
    ],
)
def test_sync_usage_command_rejects_bad_input(args, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("sync_usage", *args, "--no-progress")
