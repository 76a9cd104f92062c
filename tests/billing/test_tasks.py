import datetime as dt
from smtplib import SMTPException

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from billing.models import Invoice
from billing.schedule import BEAT_SCHEDULE
from billing.tasks import invoice_cycle_task, invoice_email_send_task, invoice_finalize_task
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory


def test_hourly_cycle_fans_out_to_every_reseller(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    for tz in ("Asia/Shanghai", "America/New_York"):
        customer = factories.CustomerFactory(reseller=factories.ResellerFactory(timezone=tz))
        SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=customer.reseller))
    # 2026-11-01 02:00Z: October is over in Shanghai; New York is still in October, so
    # its last closed month is September.
    result = invoice_cycle_task.apply(kwargs={"now_iso": "2026-11-01T02:00:00+00:00"})
    assert result.get() == 2
    assert sorted(Invoice.objects.values_list("reseller__timezone", "period_start")) == [
        ("America/New_York", dt.date(2026, 9, 1)),
        ("Asia/Shanghai", dt.date(2026, 10, 1)),
    ]


def test_finalize_task_takes_an_id(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer = factories.CustomerFactory()
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=customer.reseller))
    invoice_cycle_task.apply(kwargs={"now_iso": "2026-11-01T02:00:00+00:00"})  # UTC reseller
    invoice = Invoice.objects.get()
    invoice_finalize_task.apply(args=[invoice.pk, "2026-11-01T03:00:00+00:00"])
    invoice.refresh_from_db()
    assert invoice.status == "finalized"
    assert invoice.issued_on == dt.date(2026, 11, 1)


def test_email_task_retries_smtp_and_network_errors_and_a_send_cut_short_with_backoff():
    assert set(invoice_email_send_task.autoretry_for) == {
        SMTPException,
        OSError,
        SoftTimeLimitExceeded,  # the service marked the claim failed: a retry sends once
        OperationalError,
        InterfaceError,
    }
    assert invoice_email_send_task.retry_jitter and invoice_email_send_task.retry_backoff
    assert invoice_email_send_task.acks_late


def test_beat_runs_the_cycle_hourly():
    entry = BEAT_SCHEDULE["billing-invoice-cycle"]
    assert entry["task"] == invoice_cycle_task.name
