"""The usage app's webhook events: `usage.alert` when an alert fires, `sync.failed` when a
sync run ends failed (and nothing when it succeeds)."""

import datetime as dt
from decimal import Decimal

import pytest

from tests.usage.fakes import FakeHistory, utc
from usage.alerts import usage_alerts_check
from usage.models import UsageAlert, UsageAlertRule, UsageDay
from usage.providers.base import AuthError
from usage.services import usage_sync_sub_account
from webhooks.models import WebhookDelivery, WebhookEvent

GIB = 1_073_741_824
NOW = dt.datetime(2026, 10, 20, 12, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_a_fired_alert_emits_usage_alert_once(customer, sub_account, make_endpoint):
    endpoint, _ = make_endpoint(events=["usage.alert"])
    rule = UsageAlertRule.objects.create(
        customer=customer, quota_gb=Decimal("10"), percent=80, notify_customer=False
    )
    UsageDay.objects.create(sub_account=sub_account, day=dt.date(2026, 10, 3), bytes=9 * GIB)

    (alert,) = usage_alerts_check(customer=customer, now=NOW)
    assert usage_alerts_check(customer=customer, now=NOW) == []  # once per period

    event = WebhookEvent.objects.get()
    assert event.type == "usage.alert" and event.created_at == NOW
    assert event.data == {
        "object": "usage_alert",
        "id": alert.pk,
        "rule": rule.pk,
        "kind": "quota_share",
        "customer": customer.pk,
        "sub_account": None,
        "period_start": "2026-10-01",
        "fired_at": "2026-10-20T12:00:00+00:00",
        "measured_bytes": 9 * GIB,
        "threshold_bytes": 8 * GIB,
        "unit_bytes": GIB,
        "message": alert.message,
    }
    assert WebhookDelivery.objects.get().endpoint == endpoint
    assert UsageAlert.objects.count() == 1


@pytest.mark.django_db
def test_a_failed_sync_emits_sync_failed_and_a_good_one_nothing(sub_account, make_endpoint):
    make_endpoint(events=["sync.failed"])
    start, end = utc(2026, 3, 6), utc(2026, 3, 7)

    ok = usage_sync_sub_account(
        sub_account=sub_account, start=start, end=end, now=end, connector=FakeHistory({})
    )
    assert ok.status == "succeeded"
    assert not WebhookEvent.objects.exists()

    failed = usage_sync_sub_account(
        sub_account=sub_account,
        start=start,
        end=end,
        now=end,
        connector=FakeHistory(error=AuthError("IPFoxy authentication failed")),
    )
    assert failed.status == "failed"
    event = WebhookEvent.objects.get()
    assert event.type == "sync.failed"
    assert event.data["object"] == "sync_run"
    assert event.data["id"] == failed.pk
    assert event.data["error_code"] == "upstream_auth_failed"
    assert event.data["sub_account"] == sub_account.pk
    assert event.data["upstream_account"] == sub_account.upstream_account_id
    assert "tok-secret-1" not in str(event.data)
    assert WebhookDelivery.objects.filter(event=event).count() == 1


@pytest.mark.django_db
def test_events_are_not_recorded_for_resellers_without_endpoints(sub_account):
    usage_sync_sub_account(
        sub_account=sub_account,
        start=utc(2026, 3, 6),
        end=utc(2026, 3, 7),
        now=utc(2026, 3, 7),
        connector=FakeHistory(error=AuthError("nope")),
    )
    assert not WebhookEvent.objects.exists()
