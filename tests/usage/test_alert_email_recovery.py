"""A usage alert email claimed by a worker that died mid-send is sent again by the outbox's
stale-claim rule (`core.outbox`), once; a claim still within the send's deadline is left."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from core.outbox import STALE_CLAIM_AFTER
from tests import factories
from usage.alerts import usage_alert_email_send, usage_alert_emails_recover
from usage.models import UsageAlert, UsageAlertRule
from usage.schedule import BEAT_SCHEDULE
from usage.tasks import usage_alert_emails_recover_task

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)


def _alert(customer, **email):
    rule = UsageAlertRule.objects.create(
        customer=customer, kind="quota_share", quota_gb=Decimal("50"), percent=80
    )
    return UsageAlert.objects.create(
        rule=rule,
        period_start=dt.date(2026, 3, 1),
        fired_at=NOW - dt.timedelta(hours=1),
        measured_bytes=45 * 2**30,
        threshold_bytes=40 * 2**30,
        message="45.00 GB used in March 2026: 90% of the 50 GB monthly quota (alert at 80%).",
        **email,
    )


def test_a_send_records_its_claim_time_and_the_email_once():
    alert = _alert(factories.CustomerFactory(email="ops@customer.example"))

    usage_alert_email_send(alert_id=alert.pk, now=NOW)
    usage_alert_email_send(alert_id=alert.pk, now=NOW + dt.timedelta(minutes=1))  # redelivered

    alert.refresh_from_db()
    assert (alert.email_status, alert.email_attempts) == ("sent", 1)
    assert (alert.email_claimed_at, alert.emailed_at) == (NOW, NOW)
    assert len(mail.outbox) == 1


def test_a_claim_older_than_the_threshold_is_sent_again_once_and_a_fresh_one_is_not():
    customer = factories.CustomerFactory(email="ops@customer.example")
    dead = _alert(
        customer,
        email_status="sending",
        email_attempts=1,
        email_claimed_at=NOW - STALE_CLAIM_AFTER - dt.timedelta(seconds=1),
    )
    other_rule_customer = factories.CustomerFactory(reseller=customer.reseller)
    fresh = _alert(
        other_rule_customer,
        email_status="sending",
        email_attempts=1,
        email_claimed_at=NOW - STALE_CLAIM_AFTER + dt.timedelta(seconds=1),
    )

    assert usage_alert_emails_recover(now=NOW) == [dead.pk]  # its send runs (eager)
    assert usage_alert_emails_recover(now=NOW) == []  # a second sweep: nothing left to take

    assert [m.to for m in mail.outbox] == [["ops@customer.example"]]
    dead.refresh_from_db()
    fresh.refresh_from_db()
    assert (dead.email_status, dead.email_attempts) == ("sent", 2)
    assert (fresh.email_status, fresh.email_attempts) == ("sending", 1)


def test_beat_runs_the_alert_email_recovery_every_few_minutes(monkeypatch):
    entry = BEAT_SCHEDULE["usage-alert-emails-recover"]
    assert entry["task"] == "usage.tasks.usage_alert_emails_recover_task"
    assert entry["schedule"] <= 300 and entry["options"]["expires"] < entry["schedule"]
    alert = _alert(
        factories.CustomerFactory(),
        email_status="sending",
        email_claimed_at=NOW - dt.timedelta(minutes=6),
    )
    monkeypatch.setattr(timezone, "now", lambda: NOW)

    assert usage_alert_emails_recover_task() == 1
    assert UsageAlert.objects.get(pk=alert.pk).email_status == "sent"
