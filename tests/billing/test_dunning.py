"""Payment terms and dunning (billing.dunning): net days per reseller with a per-customer
override, printed on the invoice; reminders at the reseller's offsets from the due date, each
once, stopping when paid or voided; `invoice.overdue` once, the day after the due date in the
reseller's timezone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from accounts.services import customer_update
from billing.dunning import invoices_dunning_run, reminder_offset_due
from billing.invoicing.issuing import invoice_issue
from billing.invoicing.transitions import invoice_status_void
from billing.models import InvoiceEmail
from billing.payments.services import invoice_mark_paid
from billing.schedule import BEAT_SCHEDULE
from config.celery import app as celery_app
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from webhooks.models import WebhookEndpoint, WebhookEvent

SEPTEMBER = dt.date(2026, 9, 1)
ISSUED_AT = dt.datetime(2026, 10, 3, 4, tzinfo=dt.UTC)  # 2026-10-03 12:00 in Shanghai
SHANGHAI_DAY = dt.timedelta(hours=8)  # local midnight = 16:00 UTC the day before


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) - SHANGHAI_DAY


@pytest.fixture
def shop(db):
    reseller = factories.ResellerFactory(
        timezone="Asia/Shanghai", payment_terms_days=14, reminder_offsets=[-3, 0, 7, 14]
    )
    WebhookEndpoint.objects.create(
        reseller=reseller,
        url="https://hooks.example.com/flowbill",
        enabled_events=["invoice.overdue"],
        signing={"secret": "whsec_test"},
    )
    customer = factories.CustomerFactory(reseller=reseller, email="ap@globex.example")
    sub = factories.SubAccountFactory(
        customer=customer,
        upstream_account=factories.UpstreamAccountFactory(reseller=reseller),
        upstream_id="FBDUNNING0001",
    )
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    add_usage(sub, SEPTEMBER, 30, 5)  # 150 GiB: 135.00
    return reseller, customer


def issue(customer):
    invoice, _ = invoice_issue(
        customer=customer, period_start=SEPTEMBER, now=ISSUED_AT, send_email=False
    )
    return invoice


def run(reseller, day: dt.date, django_capture_on_commit_callbacks, hour: int = 9):
    with django_capture_on_commit_callbacks(execute=True):
        return invoices_dunning_run(
            reseller=reseller, now=local_midnight(day) + dt.timedelta(hours=hour)
        )


def reminders(invoice):
    return list(
        InvoiceEmail.objects.filter(invoice=invoice, kind="reminder")
        .order_by("pk")
        .values_list("reminder_days", "status")
    )


@pytest.mark.django_db
def test_a_customer_with_30_days_terms_is_due_30_days_after_issue(shop):
    _, customer = shop
    customer_update(customer=customer, payment_terms_days=30)
    invoice = issue(customer)
    assert invoice.due_on == dt.date(2026, 11, 2)
    assert invoice.snapshot["payment_terms_days"] == 30


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2026, 10, 13), None),  # 4 days before: nothing yet
        (dt.date(2026, 10, 14), -3),
        (dt.date(2026, 10, 17), 0),
        (dt.date(2026, 10, 30), 7),
        (dt.date(2026, 12, 1), 14),  # long after: only the latest
    ],
)
def test_the_latest_offset_whose_day_has_come(today, expected):
    due, issued = dt.date(2026, 10, 17), dt.date(2026, 10, 3)
    offsets = [-3, 0, 7, 14]
    assert reminder_offset_due(offsets=offsets, due_on=due, issued_on=issued, today=today) == (
        expected
    )


def test_an_offset_before_the_issue_day_is_skipped():
    # Net 0: due the day it is issued, so "3 days before" never comes.
    day = dt.date(2026, 10, 3)
    assert reminder_offset_due(offsets=[-3], due_on=day, issued_on=day, today=day) is None


@pytest.mark.django_db
def test_each_reminder_goes_out_once_on_its_day_with_the_balance_due(
    shop, django_capture_on_commit_callbacks
):
    reseller, customer = shop
    invoice = issue(customer)

    assert run(reseller, dt.date(2026, 10, 13), django_capture_on_commit_callbacks).reminders == []
    run(reseller, dt.date(2026, 10, 14), django_capture_on_commit_callbacks)
    run(reseller, dt.date(2026, 10, 14), django_capture_on_commit_callbacks, hour=20)  # again
    assert reminders(invoice) == [(-3, "sent")]
    [email] = mail.outbox
    assert email.to == ["ap@globex.example"]
    assert email.subject.endswith(f"invoice {invoice.number} from {reseller.name} is due in 3 days")
    assert "Balance due:     $135.00" in email.body
    assert email.attachments[0][0] == f"{invoice.number}.pdf"

    run(reseller, dt.date(2026, 10, 17), django_capture_on_commit_callbacks)
    run(reseller, dt.date(2026, 10, 24), django_capture_on_commit_callbacks)
    assert reminders(invoice) == [(-3, "sent"), (0, "sent"), (7, "sent")]
    assert "is 7 days overdue" in mail.outbox[-1].subject


@pytest.mark.django_db
def test_reminders_stop_when_the_invoice_is_paid_or_voided(
    shop, django_capture_on_commit_callbacks
):
    reseller, customer = shop
    invoice = issue(customer)
    run(reseller, dt.date(2026, 10, 14), django_capture_on_commit_callbacks)
    invoice_mark_paid(invoice=invoice, now=local_midnight(dt.date(2026, 10, 15)), actor="alice")

    run(reseller, dt.date(2026, 10, 17), django_capture_on_commit_callbacks)
    run(reseller, dt.date(2026, 11, 30), django_capture_on_commit_callbacks)
    assert reminders(invoice) == [(-3, "sent")]

    other = factories.CustomerFactory(reseller=reseller, email="x@y.example")
    SubscriptionFactory(customer=other, plan=PlanFactory(reseller=reseller))
    add_usage(
        factories.SubAccountFactory(customer=other, upstream_account__reseller=reseller),
        SEPTEMBER,
        30,
        1,
    )
    voided = issue(other)
    invoice_status_void(invoice=voided, now=ISSUED_AT, actor="alice", reason="billed twice")
    run(reseller, dt.date(2026, 10, 17), django_capture_on_commit_callbacks)
    assert reminders(voided) == []


@pytest.mark.django_db
def test_a_reminder_queued_before_the_payment_is_not_sent(shop, django_capture_on_commit_callbacks):
    reseller, customer = shop
    invoice = issue(customer)
    with django_capture_on_commit_callbacks(execute=False):  # queued, its task not run yet
        invoices_dunning_run(reseller=reseller, now=local_midnight(dt.date(2026, 10, 14)))
    invoice_mark_paid(invoice=invoice, now=local_midnight(dt.date(2026, 10, 14)), actor="alice")
    [delivery] = InvoiceEmail.objects.filter(invoice=invoice, kind="reminder")

    task = celery_app.tasks["billing.tasks.invoice_email_send_task"]
    assert task.apply(args=[delivery.pk]).get() == "failed"
    assert task.apply(args=[delivery.pk]).get() == "failed"
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("not sent: nothing was due")
    assert mail.outbox == []


@pytest.mark.django_db
def test_invoice_overdue_fires_once_the_day_after_the_due_date_in_the_resellers_timezone(
    shop, django_capture_on_commit_callbacks
):
    reseller, customer = shop
    invoice = issue(customer)  # due 2026-10-17 (Shanghai)
    last_second = local_midnight(dt.date(2026, 10, 18)) - dt.timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert invoices_dunning_run(reseller=reseller, now=last_second).overdue == []
    first = run(reseller, dt.date(2026, 10, 18), django_capture_on_commit_callbacks, hour=0)
    again = run(reseller, dt.date(2026, 10, 19), django_capture_on_commit_callbacks)

    assert (first.overdue, again.overdue) == ([invoice.pk], [])
    [event] = WebhookEvent.objects.filter(type="invoice.overdue")
    assert event.data["number"] == invoice.number
    assert (event.data["balance_due"], event.data["days_overdue"]) == ("135.00", 1)
    invoice.refresh_from_db()
    assert invoice.overdue_at == local_midnight(dt.date(2026, 10, 18))


@pytest.mark.django_db
def test_no_reminders_when_the_reseller_has_none(shop, django_capture_on_commit_callbacks):
    reseller, customer = shop
    reseller.reminder_offsets = []
    reseller.save(update_fields=["reminder_offsets"])
    invoice = issue(customer)
    run(reseller, dt.date(2026, 11, 30), django_capture_on_commit_callbacks)
    assert reminders(invoice) == []
    assert invoice.total == Decimal("135.00")


def test_dunning_runs_every_15_minutes():
    entry = BEAT_SCHEDULE["billing-dunning"]
    assert entry["task"] == "billing.tasks.invoices_dunning_task"
    assert entry["task"] in celery_app.tasks


@pytest.mark.django_db
def test_the_api_says_overdue_and_filters_by_it(shop, monkeypatch):
    from django.utils import timezone
    from rest_framework.test import APIClient

    from accounts.api_keys import api_key_create

    reseller, customer = shop
    invoice = issue(customer)  # due 2026-10-17
    _, raw = api_key_create(reseller=reseller, name="ops")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    url = "/api/v1/reseller/invoices/"

    monkeypatch.setattr(timezone, "now", lambda: local_midnight(dt.date(2026, 10, 17)))
    response = client.get(f"{url}{invoice.pk}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["overdue"], body["days_overdue"]) == (False, 0)  # due today: not yet
    assert [i["id"] for i in client.get(f"{url}?overdue=true").json()["results"]] == []

    monkeypatch.setattr(timezone, "now", lambda: local_midnight(dt.date(2026, 10, 20)))
    body = client.get(f"{url}{invoice.pk}/").json()
    assert (body["overdue"], body["days_overdue"]) == (True, 3)
    assert [i["id"] for i in client.get(f"{url}?overdue=true").json()["results"]] == [invoice.pk]
    assert client.get(f"{url}?overdue=false").json()["results"] == []


@pytest.mark.django_db
def test_the_admin_lists_overdue_invoices(shop, client, monkeypatch):
    from django.utils import timezone

    reseller, customer = shop
    invoice = issue(customer)
    client.force_login(factories.StaffUserFactory(reseller=reseller))
    monkeypatch.setattr(timezone, "now", lambda: local_midnight(dt.date(2026, 10, 20)))
    overdue = client.get("/admin/billing/invoice/?overdue=yes")
    assert list(overdue.context["cl"].result_list) == [invoice]
    assert list(client.get("/admin/billing/invoice/?overdue=no").context["cl"].result_list) == []
