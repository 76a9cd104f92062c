"""Who emails sent for a reseller are from (accounts.email_identity): the reseller's own
address only on a verified domain, else the platform's under the reseller's name; Message-IDs
on the platform's domain; Cc; names that cannot inject headers. Invoices, credit notes and
usage alerts all use it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from email import message_from_string
from email.utils import parseaddr

import pytest
from django.core.mail import EmailMessage

from accounts.email_identity import reseller_email_envelope, sender_email_verified
from accounts.models import Reseller
from tests import factories

PLATFORM = "noreply@flowbill.example"


@pytest.fixture(autouse=True)
def _platform(settings):
    settings.DEFAULT_FROM_EMAIL = f"Flowbill Billing <{PLATFORM}>"
    settings.FLOWBILL_SENDER_DOMAINS = []


def _headers(reseller: Reseller, recipients=("to@customer.example",)):
    envelope = reseller_email_envelope(reseller=reseller, recipients=recipients, idstring="7.1")
    return EmailMessage("Subject", "Body", **envelope.as_kwargs()).message()


def test_an_unverified_sender_is_only_the_reply_to():
    reseller = Reseller(name="Acme Proxies", sender_email="billing@acme.example")
    headers = _headers(reseller)
    assert parseaddr(headers["From"]) == ("Acme Proxies", PLATFORM)
    assert headers["Reply-To"] == "billing@acme.example"
    assert headers["Message-ID"].endswith(".7.1@flowbill.example>")
    assert not sender_email_verified(reseller=reseller)


def test_a_domain_verified_by_the_environment_is_the_from(settings):
    settings.FLOWBILL_SENDER_DOMAINS = ["acme.example"]
    reseller = Reseller(name="Acme Proxies", sender_email="billing@ACME.example")
    headers = _headers(reseller)
    assert parseaddr(headers["From"]) == ("Acme Proxies", "billing@acme.example")
    assert headers["Reply-To"] is None
    assert headers["Message-ID"].endswith("@flowbill.example>")  # the platform sent it


def test_a_domain_verified_for_the_reseller_is_the_from_for_it_alone():
    verified = Reseller(
        name="Acme", sender_email="billing@acme.example", verified_sender_domain="acme.example"
    )
    assert parseaddr(_headers(verified)["From"]) == ("Acme", "billing@acme.example")
    elsewhere = Reseller(
        name="Acme", sender_email="billing@mail.acme.example", verified_sender_domain="acme.example"
    )
    assert parseaddr(_headers(elsewhere)["From"]) == ("Acme", PLATFORM)  # exact domains only
    claimant = Reseller(name="Mallory", sender_email="billing@acme.example")
    assert parseaddr(_headers(claimant)["From"]) == ("Mallory", PLATFORM)


def test_no_sender_email_is_the_platform_address_without_reply_to():
    headers = _headers(Reseller(name="Acme", sender_email=""))
    assert parseaddr(headers["From"]) == ("Acme", PLATFORM)
    assert headers["Reply-To"] is None


def test_the_first_recipient_is_to_and_the_others_cc():
    headers = _headers(Reseller(name="Acme"), ["a@x.example", "b@x.example", "c@x.example"])
    assert (headers["To"], headers["Cc"]) == ("a@x.example", "b@x.example, c@x.example")


@pytest.mark.parametrize(
    "name",
    [
        'Acme "Billing" Ltd\r\nBcc: victim@example.com',
        "Acme\nSubject: pay now",
        "Prøxy 株式会社\u2028Bcc: victim@example.com",
        "Acme <evil@attacker.example>, Other",
        "nul\x00byte\ttab",
    ],
)
def test_a_reseller_name_cannot_add_a_header_or_an_address(name):
    headers = _headers(Reseller(name=name, sender_email="billing@acme.example"))
    assert headers["Bcc"] is None and headers["Subject"] == "Subject"
    assert parseaddr(headers["From"])[1] == PLATFORM
    assert "\n" not in headers["From"] and "\r" not in headers["From"]
    reparsed = message_from_string(headers.as_string())  # as a mail server reads it
    assert sorted(reparsed.keys()) == sorted(headers.keys())  # one From, no Bcc, no Subject
    assert parseaddr(reparsed["From"])[1] == PLATFORM


@pytest.mark.django_db
def test_invoice_emails_use_the_envelope(settings, tmp_path, django_capture_on_commit_callbacks):
    from django.core import mail

    from tests.billing.test_credit_notes import make_issued_invoice

    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(name="Acme", sender_email="billing@acme.example")
    customer = factories.CustomerFactory(
        reseller=reseller, email="ap@globex.example", cc_emails="cfo@globex.example"
    )
    invoice = make_issued_invoice(customer)
    from billing.invoicing.delivery import invoice_email_resend

    with django_capture_on_commit_callbacks(execute=True):
        invoice_email_resend(invoice=invoice, now=dt.datetime(2026, 11, 10, tzinfo=dt.UTC))
    [message] = mail.outbox
    assert parseaddr(message.from_email) == ("Acme", PLATFORM)
    assert message.reply_to == ["billing@acme.example"]
    assert message.extra_headers["Message-ID"].endswith("@flowbill.example>")


@pytest.mark.django_db
def test_usage_alert_emails_use_the_same_envelope():
    from usage.alerts import usage_alert_email_build
    from usage.models import UsageAlert, UsageAlertRule

    reseller = factories.ResellerFactory(name="Acme", sender_email="billing@acme.example")
    customer = factories.CustomerFactory(
        reseller=reseller, email="ops@globex.example", cc_emails="cfo@globex.example"
    )
    rule = UsageAlertRule.objects.create(
        customer=customer, kind="quota_share", quota_gb=Decimal("10"), percent=80
    )
    alert = UsageAlert.objects.create(
        rule=rule,
        period_start=dt.date(2026, 11, 1),
        fired_at=dt.datetime(2026, 11, 10, tzinfo=dt.UTC),
        measured_bytes=9_000_000_000,
        threshold_bytes=8_589_934_592,
        message="80% of 10 GB",
    )
    message = usage_alert_email_build(alert=alert)
    assert parseaddr(message.from_email) == ("Acme", PLATFORM)
    assert (message.to, message.cc) == (["ops@globex.example"], ["cfo@globex.example"])
    assert message.reply_to == ["billing@acme.example"]
    assert message.extra_headers["Message-ID"].endswith(f".alert{alert.pk}@flowbill.example>")


def test_a_cc_list_saved_before_the_cap_is_cut_to_five(reseller):
    recipients = [f"person{i}@example.com" for i in range(8)]

    envelope = reseller_email_envelope(reseller=reseller, recipients=recipients, idstring="1.1")

    assert envelope.to == ["person0@example.com"]
    assert envelope.cc == [f"person{i}@example.com" for i in range(1, 6)]
