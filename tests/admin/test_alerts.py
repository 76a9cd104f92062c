"""Usage alerts fire once per threshold per period, however often syncs run (simulator)."""

import datetime as dt
import threading
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Provider
from billing.dashboard import dashboard_build
from tests import factories
from tests.admin.seed import NOW as SEED_NOW
from usage.alerts import usage_alert_rule_threshold_bytes, usage_alerts_check
from usage.models import LedgerSnapshot, UsageAlert, UsageAlertRule, UsageDay
from usage.services import usage_snapshot_bytesflows, usage_sync_sub_account
from usage.simulator import SimulatorConfig, start_simulator
from usage.tasks import usage_alerts_check_task

GIB = 1_073_741_824
NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
AFTER_SYNC = ["usage.tasks.usage_alerts_check_task"]


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=7, now=NOW, rate_limit_enabled=False)
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.fixture
def clock(monkeypatch):
    """The task reads the clock: pin it where the simulator's clock is."""
    state = {"now": NOW}
    monkeypatch.setattr(timezone, "now", lambda: state["now"])
    return state


def _mib_bytes(flow: str) -> int:
    return int((Decimal(flow) * 1_048_576).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _rule(customer, **fields):
    return UsageAlertRule.objects.create(customer=customer, **fields)


def test_thresholds_round_up_to_whole_bytes(db):
    rule = UsageAlertRule(kind="quota_share", quota_gb=Decimal("100"), percent=80, unit_bytes=GIB)
    assert usage_alert_rule_threshold_bytes(rule=rule) == 85_899_345_920
    rule = UsageAlertRule(
        kind="quota_share", quota_gb=Decimal("0.000001"), percent=3, unit_bytes=1_000_000_000
    )
    assert usage_alert_rule_threshold_bytes(rule=rule) == 30  # 3% of 0.000001 GB (1,000 bytes)
    rule = UsageAlertRule(kind="remaining_below", remaining_gb=Decimal("1.5"), unit_bytes=GIB)
    assert usage_alert_rule_threshold_bytes(rule=rule) == 1_610_612_736


@pytest.mark.django_db
def test_repeated_syncs_fire_each_quota_threshold_once(
    sim, clock, settings, django_capture_on_commit_callbacks
):
    settings.FLOWBILL_AFTER_SYNC_TASKS = AFTER_SYNC
    customer = factories.CustomerFactory(email="ops@customer.example", cc_emails="cfo@x.example")
    upstream = factories.UpstreamAccountFactory(
        reseller=customer.reseller, base_url=sim.url, credentials=CREDS
    )
    sub = factories.SubAccountFactory(
        customer=customer, upstream_account=upstream, upstream_id="SIM00001"
    )
    start = NOW.replace(minute=0) - dt.timedelta(hours=72)
    middle = start + dt.timedelta(hours=36)
    first = sum(
        _mib_bytes(f)
        for f in sim.expected_hourly_flows(account="SIM00001", start=start, end=middle).values()
    )
    everything = sum(
        _mib_bytes(f)
        for f in sim.expected_hourly_flows(
            account="SIM00001", start=start, end=NOW.replace(minute=0) + dt.timedelta(hours=1)
        ).values()
    )
    quota = (Decimal(first) / GIB / Decimal("0.9")).quantize(Decimal("0.000001"))
    eighty = _rule(customer, kind="quota_share", quota_gb=quota, percent=80)
    hundred = _rule(customer, kind="quota_share", quota_gb=quota, percent=100)
    assert usage_alert_rule_threshold_bytes(rule=eighty) <= first
    assert usage_alert_rule_threshold_bytes(rule=hundred) > first
    assert everything >= usage_alert_rule_threshold_bytes(rule=hundred)

    def sync(a, b):
        with django_capture_on_commit_callbacks(execute=True):
            run = usage_sync_sub_account(sub_account=sub, start=a, end=b, now=NOW)
        assert run.status == "succeeded", run.error
        return run

    sync(start, middle)
    assert list(UsageAlert.objects.values_list("rule_id", "measured_bytes")) == [(eighty.pk, first)]
    assert len(mail.outbox) == 1
    assert (mail.outbox[0].to, mail.outbox[0].cc) == (["ops@customer.example"], ["cfo@x.example"])
    assert "80% of" in mail.outbox[0].subject

    assert sync(start, middle).rows_written == 0  # same data again: nothing new
    assert usage_alerts_check_task(customer_id=customer.pk) == 0  # an explicit re-check neither
    sync(middle, NOW)
    used = sum(UsageDay.objects.filter(sub_account=sub).values_list("bytes", flat=True))
    assert UsageAlert.objects.get(rule=hundred).measured_bytes == used
    sim.revise(account="SIM00001", hour=middle, flow="1.5")  # a revision: usage changes again
    assert sync(start, NOW).rows_written > 0
    sync(start, NOW)

    alerts = UsageAlert.objects.order_by("rule_id")
    assert [(a.rule_id, a.period_start) for a in alerts] == [
        (eighty.pk, dt.date(2026, 3, 1)),
        (hundred.pk, dt.date(2026, 3, 1)),
    ]
    assert [a.email_status for a in alerts] == ["sent", "sent"]
    assert len(mail.outbox) == 2
    # the share measured when it fired (163% here), and the rule's threshold apart
    share = (Decimal(alerts[1].measured_bytes) * 100 / (quota * GIB)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    assert share > 100
    assert f"{share}% of the {quota} GB monthly quota (alert at 100%)." in alerts[1].message

    # A new month is a new period: the thresholds can fire again there.
    clock["now"] = dt.datetime(2026, 4, 1, 1, tzinfo=dt.UTC)
    assert usage_alerts_check_task(customer_id=customer.pk) == 0  # no April usage yet


@pytest.mark.django_db
def test_remaining_bytesflows_traffic_below_fires_once_per_month(
    sim, clock, settings, django_capture_on_commit_callbacks
):
    settings.FLOWBILL_AFTER_SYNC_TASKS = AFTER_SYNC
    customer = factories.CustomerFactory()
    upstream = factories.UpstreamAccountFactory(
        reseller=customer.reseller, provider=Provider.BYTESFLOWS, base_url=sim.url, credentials={}
    )
    sub = factories.SubAccountFactory(
        customer=customer,
        upstream_account=upstream,
        upstream_id="alice",
        credentials={"token": "bf-alice"},
    )

    def snapshot():
        with django_capture_on_commit_callbacks(execute=True):
            run = usage_snapshot_bytesflows(sub_account=sub, now=sim.now())
        assert run.status == "succeeded", run.error

    snapshot()
    available = LedgerSnapshot.objects.get(sub_account=sub).available_traffic
    threshold = (Decimal(available) / GIB + 1).quantize(Decimal("0.000001"))
    rule = _rule(customer, kind="remaining_below", remaining_gb=threshold, sub_account=sub)
    quiet = _rule(customer, kind="remaining_below", remaining_gb=threshold, notify_customer=False)
    _rule(customer, kind="remaining_below", remaining_gb=threshold, is_active=False)
    for _ in range(3):
        sim.advance(3 * 3600)
        clock["now"] = sim.now()
        snapshot()

    alerts = {a.rule_id: a for a in UsageAlert.objects.all()}
    assert set(alerts) == {rule.pk, quiet.pk}
    assert alerts[rule.pk].email_status == "sent"
    assert alerts[quiet.pk].email_status == "off"  # on the dashboard only
    assert len(mail.outbox) == 1
    assert "BytesFlows traffic left" in alerts[rule.pk].message
    assert alerts[rule.pk].measured_bytes < usage_alert_rule_threshold_bytes(rule=rule)

    later = dt.datetime(2026, 4, 2, tzinfo=dt.UTC)  # next month, still below: fires again
    fired = usage_alerts_check(customer=customer, now=later)
    assert {a.rule_id for a in fired} == {rule.pk, quiet.pk}
    assert UsageAlert.objects.filter(period_start=dt.date(2026, 4, 1)).count() == 2


def test_alert_rule_of_another_customers_sub_account_is_invalid(db):
    from django.core.exceptions import ValidationError

    mine = factories.SubAccountFactory()
    other = factories.SubAccountFactory(customer__reseller=mine.customer.reseller)
    rule = UsageAlertRule(
        customer=mine.customer, kind="remaining_below", remaining_gb=Decimal(1), sub_account=other
    )
    with pytest.raises(ValidationError, match="another customer"):
        rule.full_clean()
    with pytest.raises(ValidationError, match="monthly quota"):
        UsageAlertRule(customer=mine.customer, kind="quota_share", percent=80).full_clean()


def test_fired_alerts_show_on_the_dashboard_and_customer_page(client, alpha, pinned_now):
    acme = alpha.customers["acme"]
    _rule(acme, kind="quota_share", quota_gb=Decimal("100"), percent=80)
    [alert] = usage_alerts_check(customer=acme, now=SEED_NOW)
    assert alert.message.startswith("278.")  # GB used in November so far

    dashboard = dashboard_build(reseller=alpha.reseller, now=SEED_NOW)
    assert [a.pk for a in dashboard.alerts] == [alert.pk]
    client.force_login(alpha.staff)
    assert alert.message in client.get("/admin/").content.decode()
    page = client.get(reverse("admin:accounts_customer_change", args=[acme.pk])).content.decode()
    assert "Usage alerts (once per threshold per month" in page  # the rules inline


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_fire_once():
    day = factories.SubAccountFactory()
    UsageDay.objects.create(sub_account=day, day=NOW.date(), bytes=90 * GIB)
    _rule(day.customer, kind="quota_share", quota_gb=Decimal("100"), percent=80)
    barrier = threading.Barrier(4)
    fired: list[int] = []

    def check():
        try:
            barrier.wait()
            fired.extend(a.pk for a in usage_alerts_check(customer=day.customer, now=NOW))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fired) == 1
    assert UsageAlert.objects.count() == 1
