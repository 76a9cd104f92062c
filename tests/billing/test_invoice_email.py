"""Invoice emails: queued at finalization, claimed once, retried on SMTP errors, resendable."""

import datetime as dt
from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.delivery import invoice_email_resend, invoice_email_send
from billing.invoicing.finalizing import invoice_finalize
from billing.models import InvoiceEmail
from billing.tasks import invoice_email_send_task
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

OCT = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)


@pytest.fixture
def issued(reseller, customer, sub_account, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    customer.cc_emails = "ap@example.com"
    customer.save()
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    add_usage(sub_account, OCT, 31, 5)
    invoice, _ = invoice_create_draft(customer=customer, period_start=OCT, now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_finalize(invoice=invoice, now=NOW)
    return invoice


def test_finalizing_sends_one_email_with_the_pdf(issued, customer):
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert (message.to, message.cc) == ([customer.email], ["ap@example.com"])
    assert issued.number in message.subject
    _name, content, mimetype = message.attachments[0]
    assert mimetype == "application/pdf" and content.startswith(b"%PDF")
    delivery = InvoiceEmail.objects.get(invoice=issued)
    assert (delivery.status, delivery.attempts, delivery.sequence) == ("sent", 1, 1)
    assert delivery.message_id == message.extra_headers["Message-ID"]


def test_a_retried_send_task_never_sends_twice(issued):
    delivery = InvoiceEmail.objects.get(invoice=issued)
    invoice_email_send_task.apply(args=[delivery.pk])
    invoice_email_send(delivery=delivery, now=NOW)
    assert len(mail.outbox) == 1
    assert InvoiceEmail.objects.get(pk=delivery.pk).attempts == 1


def test_smtp_error_marks_failed_and_the_retry_sends_once(issued, monkeypatch):
    delivery = InvoiceEmail.objects.create(
        invoice=issued, sequence=2, recipients=["x@example.com"], queued_at=NOW
    )
    real_send = EmailBackend.send_messages
    calls = {"n": 0}

    def flaky(self, messages):
        calls["n"] += 1
        if calls["n"] == 1:
            raise SMTPServerDisconnected("Connection unexpectedly closed")
        return real_send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", flaky)
    with pytest.raises(SMTPServerDisconnected):
        invoice_email_send(delivery=delivery, now=NOW)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error.startswith("SMTPServerDisconnected")
    invoice_email_send(delivery=delivery, now=NOW)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(mail.outbox) == 2  # the finalization email + this one, once


def test_a_delivery_stuck_in_sending_is_not_sent_again(issued):
    delivery = InvoiceEmail.objects.create(
        invoice=issued, sequence=2, recipients=["x@example.com"], queued_at=NOW, status="sending"
    )
    assert invoice_email_send(delivery=delivery, now=NOW).status == "sending"
    assert len(mail.outbox) == 1


def test_a_send_abandoned_mid_way_is_sent_again_once_after_15_minutes(
    issued, django_capture_on_commit_callbacks
):
    from billing.invoicing.delivery import invoice_emails_redispatch

    claimed_at = NOW - dt.timedelta(minutes=16)
    stale = InvoiceEmail.objects.create(
        invoice=issued,
        sequence=2,
        recipients=["x@example.com"],
        queued_at=claimed_at,
        status="sending",
        claimed_at=claimed_at,
        attempts=1,
    )
    fresh = InvoiceEmail.objects.create(
        invoice=issued,
        sequence=3,
        recipients=["y@example.com"],
        queued_at=NOW,
        status="sending",
        claimed_at=NOW - dt.timedelta(minutes=5),
        attempts=1,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_emails_redispatch(reseller=issued.reseller, now=NOW) == [stale.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_emails_redispatch(reseller=issued.reseller, now=NOW) == []

    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.attempts) == ("sent", 2)
    assert fresh.status == "sending"  # may still be talking to the SMTP server
    assert [m.to for m in mail.outbox[1:]] == [["x@example.com"]]


def test_staff_resend_is_a_second_delivery_and_a_second_email(
    issued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        resend = invoice_email_resend(invoice=issued, now=NOW, requested_by="alice")
    assert (resend.sequence, resend.is_resend) == (2, True)
    assert len(mail.outbox) == 2
    assert mail.outbox[1].attachments[0][1] == mail.outbox[0].attachments[0][1]
    assert list(InvoiceEmail.objects.filter(invoice=issued).values_list("status", flat=True)) == [
        "sent",
        "sent",
    ]
