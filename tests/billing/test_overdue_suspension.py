"""Automatic suspension by overdue invoices (billing.overdue_suspension): suspended once an
invoice is overdue by the reseller's `suspend_after_overdue_days` (its timezone), reinstated
when paid, never when the setting is empty, and staff suspensions left alone. A suspended
customer's usage is still synced and invoiced."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import SubAccount
from accounts.selectors import sub_accounts_syncable
from billing.invoicing.issuing import invoice_issue
from billing.invoicing.transitions import invoice_status_void
from billing.overdue_suspension import customer_overdue_check, customers_suspend_overdue
from billing.payments.services import invoice_mark_paid
from billing.schedule import BEAT_SCHEDULE
from config.celery import app as celery_app
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import AccessChange
from usage.services.suspension import customer_reinstate, customer_suspend

SEPTEMBER = dt.date(2026, 9, 1)
OCTOBER = dt.date(2026, 10, 1)
ISSUED_AT = dt.datetime(2026, 10, 3, 4, tzinfo=dt.UTC)  # 12:00 in Shanghai
# Issued 2026-10-03 with 14 days' terms: due 2026-10-17; 10 days overdue from 2026-10-27,
# which starts in Shanghai (UTC+8) at 2026-10-26 16:00 UTC.
OVERDUE_FROM = dt.datetime(2026, 10, 26, 16, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def shop(db):
    reseller = factories.ResellerFactory(
        timezone="Asia/Shanghai", suspend_after_overdue_days=10, payment_terms_days=14
    )
    customer = factories.CustomerFactory(reseller=reseller)
    sub = factories.SubAccountFactory(
        customer=customer,
        upstream_account=factories.UpstreamAccountFactory(reseller=reseller),
        upstream_id="FBOVERDUE0001",
    )
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    add_usage(sub, SEPTEMBER, 30, 5)  # 150 GiB: 10.00 + 50 GB x 2.50
    invoice, _ = invoice_issue(
        customer=customer, period_start=SEPTEMBER, now=ISSUED_AT, send_email=False
    )
    assert (invoice.status, invoice.total, invoice.due_on) == (
        "finalized",
        Decimal("135.00"),
        dt.date(2026, 10, 17),
    )
    return reseller, customer, sub, invoice


@pytest.mark.django_db
def test_a_customer_is_suspended_once_an_invoice_is_overdue_by_the_resellers_days(shop):
    _reseller, customer, sub, invoice = shop
    assert customers_suspend_overdue(now=OVERDUE_FROM - SECOND).as_dict() == {
        "suspended": [],
        "reinstated": [],
    }
    customer.refresh_from_db()
    assert customer.status == "active"

    result = customers_suspend_overdue(now=OVERDUE_FROM)
    assert result.suspended == [customer.pk]
    customer.refresh_from_db()
    assert (customer.status, customer.suspended_by, customer.suspended_at) == (
        "suspended",
        "overdue",
        OVERDUE_FROM,
    )
    assert invoice.number in customer.suspension_reason
    assert "10 days" in customer.suspension_reason
    block = AccessChange.objects.get(sub_account=sub)
    assert (block.action, block.created_by) == ("block", "system (overdue invoices)")
    # The next pass changes nothing.
    assert customers_suspend_overdue(now=OVERDUE_FROM + dt.timedelta(minutes=15)).suspended == []


@pytest.mark.django_db
def test_paying_the_invoice_reinstates_the_customer_at_once(shop):
    _reseller, customer, sub, invoice = shop
    customers_suspend_overdue(now=OVERDUE_FROM)
    paid_at = OVERDUE_FROM + dt.timedelta(days=2)
    invoice_mark_paid(invoice=invoice, now=paid_at, actor="alice")
    customer.refresh_from_db()
    assert (customer.status, customer.suspended_at, customer.suspended_by) == ("active", None, "")
    assert list(
        AccessChange.objects.filter(sub_account=sub).order_by("pk").values_list("action", "status")
    ) == [("block", "superseded"), ("restore", "pending")]
    assert customers_suspend_overdue(now=paid_at + dt.timedelta(days=30)).as_dict() == {
        "suspended": [],
        "reinstated": [],
    }


@pytest.mark.django_db
def test_a_voided_invoice_lifts_the_suspension_at_the_next_pass(shop):
    _reseller, customer, _sub, invoice = shop
    customers_suspend_overdue(now=OVERDUE_FROM)
    invoice_status_void(invoice=invoice, now=OVERDUE_FROM + SECOND, reason="billed wrongly")
    result = customers_suspend_overdue(now=OVERDUE_FROM + dt.timedelta(minutes=15))
    assert result.reinstated == [customer.pk]
    customer.refresh_from_db()
    assert customer.status == "active"


@pytest.mark.django_db
def test_an_empty_setting_never_suspends(shop):
    reseller, customer, _sub, _invoice = shop
    reseller.suspend_after_overdue_days = None
    reseller.save()
    assert customers_suspend_overdue(now=OVERDUE_FROM + dt.timedelta(days=200)).suspended == []
    customer.refresh_from_db()
    assert customer.status == "active"
    assert not AccessChange.objects.exists()


@pytest.mark.django_db
def test_a_zero_day_setting_suspends_the_day_after_the_due_date_only_if_still_due(shop):
    reseller, customer, _sub, _invoice = shop
    reseller.suspend_after_overdue_days = 0
    reseller.save()
    due_day_start = dt.datetime(2026, 10, 16, 16, tzinfo=dt.UTC)  # 10-17 00:00 Shanghai
    assert customers_suspend_overdue(now=due_day_start - SECOND).suspended == []
    assert customers_suspend_overdue(now=due_day_start).suspended == [customer.pk]


@pytest.mark.django_db
def test_staff_suspensions_are_never_lifted_or_relabelled_automatically(shop):
    _reseller, customer, _sub, invoice = shop
    customer_suspend(customer=customer, reason="Abuse report", actor="login bob", now=ISSUED_AT)
    assert customers_suspend_overdue(now=OVERDUE_FROM).as_dict() == {
        "suspended": [],
        "reinstated": [],
    }
    invoice_mark_paid(invoice=invoice, now=OVERDUE_FROM + SECOND)
    assert customer_overdue_check(customer=customer, now=OVERDUE_FROM + SECOND).reinstated == []
    customer.refresh_from_db()
    assert (customer.status, customer.suspended_by, customer.suspension_reason) == (
        "suspended",
        "staff",
        "Abuse report",
    )


@pytest.mark.django_db
def test_turning_the_setting_off_lifts_only_automatic_suspensions_once_nothing_is_due(shop):
    reseller, customer, _sub, invoice = shop
    customers_suspend_overdue(now=OVERDUE_FROM)
    reseller.suspend_after_overdue_days = None
    reseller.save()
    later = OVERDUE_FROM + dt.timedelta(hours=1)
    assert customers_suspend_overdue(now=later).reinstated == []  # still owes past due
    invoice_mark_paid(invoice=invoice, now=later)
    customer.refresh_from_db()
    assert customer.status == "active"


@pytest.mark.django_db
def test_a_suspended_customers_usage_is_still_synced_and_invoiced(shop):
    _reseller, customer, sub, _invoice = shop
    customer_suspend(customer=customer, reason="Abuse report", actor="login bob", now=ISSUED_AT)
    start = dt.datetime(2026, 10, 10, tzinfo=dt.UTC)
    assert list(sub_accounts_syncable(SubAccount.objects.all(), start=start)) == [sub]
    add_usage(sub, OCTOBER, 31, 4)  # 124 GiB in October: 10.00 + 24 GB x 2.50
    october, created = invoice_issue(
        customer=customer,
        period_start=OCTOBER,
        now=dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
        send_email=False,
    )
    assert created and (october.status, october.total) == ("finalized", Decimal("70.00"))
    customer_reinstate(customer=customer, actor="login bob", now=ISSUED_AT)


def test_the_overdue_pass_runs_every_15_minutes():
    entry = BEAT_SCHEDULE["billing-overdue-suspension"]
    assert entry["task"] == "billing.tasks.customers_suspend_overdue_task"
    assert entry["task"] in celery_app.tasks
    assert str(entry["schedule"]._orig_minute) == "*/15"
