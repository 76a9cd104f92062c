"""Prepaid top-ups: an invoice issued at once (numbered, no tax, one line), the balance
credited once when it is paid, traffic packs priced at the plan and allocated upstream once,
outside the month's invoicing rules, and the automatic top-up rule (one open at a time)."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.core import mail

from billing.balance.models import BalanceEntry
from billing.balance.selectors import customer_balances
from billing.balance.services import balance_adjust
from billing.credit_notes.services import credit_note_create
from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, InvoiceKind, InvoiceStatus
from billing.payments.services import invoice_mark_paid, payment_create, payment_refund
from billing.topups.models import TopUp
from billing.topups.services import auto_top_up_check, balance_auto_top_up_set, top_up_create
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage, in_thread
from usage.models import Allocation

NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
GIB = 1_073_741_824


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def balance_of(customer) -> str:
    return f"{customer_balances(customer=customer)[0].amount:.2f}"


def test_a_money_top_up_issues_a_numbered_invoice_without_tax_and_credits_once_paid(
    customer, django_capture_on_commit_callbacks
):
    customer.tax_rate = Decimal("20")
    customer.save()
    with django_capture_on_commit_callbacks(execute=True):
        top_up = top_up_create(customer=customer, amount="100.00", now=NOW, actor="alice")
    invoice = Invoice.objects.get(pk=top_up.invoice_id)
    assert (invoice.kind, invoice.status, invoice.number is not None) == (
        "top_up",
        "finalized",
        True,
    )
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("100.00"),
        Decimal("0.00"),
        Decimal("0.00") + Decimal("100.00"),
    )
    assert invoice.balance_applied == 0 and invoice.pdf
    (line,) = invoice.lines.all()
    assert line.kind == "top_up" and line.description.startswith("Prepaid balance top-up")
    assert len(mail.outbox) == 1 and invoice.number in mail.outbox[0].subject
    assert (top_up.status, balance_of(customer)) == ("open", "0.00")
    payment_create(invoice=invoice, amount="60.00", now=NOW, method="card")
    assert TopUp.objects.get().status == "open"  # not paid in full yet
    invoice_mark_paid(invoice=invoice, now=NOW)
    top_up.refresh_from_db()
    assert (top_up.status, top_up.credited_at, balance_of(customer)) == ("credited", NOW, "100.00")
    entry = BalanceEntry.objects.get(kind="top_up")
    assert (entry.top_up_id, entry.invoice_id, entry.amount) == (
        top_up.pk,
        invoice.pk,
        Decimal("100.00"),
    )
    payment = invoice.payments.first()
    with pytest.raises(ApplicationError) as exc:  # the money is on the balance now
        payment_refund(payment=payment, now=NOW)
    assert exc.value.code == "invoice_is_top_up"


def test_top_up_invoices_are_outside_the_months_rules(customer):
    """A top-up issued on the 1st does not take the month's invoice slot, is never credited,
    and an unpaid one voided is void; nothing billable still issues nothing."""
    first_day = dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC)
    type(customer).objects.filter(pk=customer.pk).update(created_at=first_day - dt.timedelta(30))
    customer.refresh_from_db()
    top_up = top_up_create(customer=customer, amount="50.00", now=first_day)
    result = invoices_generate_for_period(
        reseller=customer.reseller, period_start=dt.date(2026, 10, 1), now=NOW, customer=customer
    )
    assert [s.code for s in result.skipped] == ["nothing_billable"]
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=customer.reseller))
    result = invoices_generate_for_period(
        reseller=customer.reseller, period_start=dt.date(2026, 10, 1), now=NOW
    )
    assert len(result.created) == 1
    month = Invoice.objects.get(pk=result.created[0])
    assert (month.kind, month.period_start) == (InvoiceKind.PERIOD, top_up.invoice.period_start)
    with pytest.raises(ApplicationError) as exc:
        credit_note_create(invoice=top_up.invoice, amount="10.00", now=NOW, send_email=False)
    assert exc.value.code == "invoice_is_top_up"
    invoice_void(invoice=top_up.invoice, now=NOW, send_email=False)
    assert TopUp.objects.get().status == "void"
    assert balance_of(customer) == "0.00"


def test_a_traffic_pack_is_priced_at_the_plans_usage_price(customer):
    plan = PlanFactory(reseller=customer.reseller, tiers=[(None, Decimal("2.50"))])
    SubscriptionFactory(customer=customer, plan=plan)
    top_up = top_up_create(customer=customer, bytes=10 * GIB, now=NOW)
    assert top_up.amount == Decimal("25.00")  # 10 GB x 2.50, no base fee
    line = top_up.invoice.lines.get()
    assert (line.quantity, line.unit, line.amount) == (Decimal("10"), "GB", Decimal("25.00"))
    free = factories.CustomerFactory(reseller=customer.reseller)
    SubscriptionFactory(customer=free, plan=PlanFactory(reseller=customer.reseller))
    with pytest.raises(ApplicationError) as exc:  # inside the plan's free 100 GB
        top_up_create(customer=free, bytes=10 * GIB, now=NOW)
    assert exc.value.code == "top_up_free"
    with pytest.raises(ApplicationError) as exc:
        top_up_create(customer=factories.CustomerFactory(), bytes=GIB, now=NOW)
    assert exc.value.code == "no_plan_price"
    with pytest.raises(ApplicationError) as exc:
        top_up_create(customer=customer, bytes=GIB, amount="1.00", now=NOW)
    assert exc.value.code == "validation_error"


def test_a_paid_traffic_pack_for_an_ipfoxy_sub_account_is_allocated_once(customer, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "usage.services.upstream_writes.write_enqueue", lambda kind, pk: sent.append(pk)
    )
    plan = PlanFactory(reseller=customer.reseller, tiers=[(None, Decimal("2.00"))])
    SubscriptionFactory(customer=customer, plan=plan)
    sub = factories.SubAccountFactory(customer=customer)
    top_up = top_up_create(customer=customer, bytes=5 * GIB, sub_account=sub, now=NOW)
    assert Allocation.objects.count() == 0  # nothing before it is paid
    invoice_mark_paid(invoice=top_up.invoice, now=NOW)
    top_up.refresh_from_db()
    allocation = Allocation.objects.get()
    assert (allocation.sub_account_id, allocation.bytes, allocation.reason) == (
        sub.pk,
        5 * GIB,
        "order",
    )
    assert (top_up.allocation_id, top_up.status, balance_of(customer)) == (
        allocation.pk,
        "credited",
        "10.00",
    )
    payment_create(invoice=top_up.invoice, amount="1.00", now=NOW, method="card")  # paid again
    assert (
        Allocation.objects.count() == 1 and BalanceEntry.objects.filter(kind="top_up").count() == 1
    )


def test_the_automatic_rule_issues_one_top_up_below_the_threshold_at_most_one_open(
    customer, django_capture_on_commit_callbacks
):
    balance_adjust(customer=customer, amount="30.00", reason="Prepaid", now=NOW)
    balance_auto_top_up_set(customer=customer, threshold="20.00", amount="100.00", now=NOW)
    assert TopUp.objects.count() == 0  # 30 is not below 20
    with django_capture_on_commit_callbacks(execute=True):
        balance_adjust(customer=customer, amount="-15.00", reason="Paid out", now=NOW)
    (top_up,) = TopUp.objects.all()  # the check ran when the balance went down
    assert (top_up.automatic, top_up.amount, top_up.created_by) == (
        True,
        Decimal("100.00"),
        "system",
    )
    assert auto_top_up_check(customer=customer, currency="USD", now=NOW) is None
    with django_capture_on_commit_callbacks(execute=True):
        balance_adjust(customer=customer, amount="-15.00", reason="Paid out", now=NOW)
    assert TopUp.objects.count() == 1
    invoice_mark_paid(invoice=top_up.invoice, now=NOW)
    assert balance_of(customer) == "100.00"
    with pytest.raises(ApplicationError) as exc:
        balance_auto_top_up_set(customer=customer, threshold="10", amount=None, now=NOW)
    assert exc.value.code == "auto_top_up_rule_invalid"


def test_the_months_invoice_is_paid_from_a_top_up(customer):
    top_up = top_up_create(customer=customer, amount="100.00", now=NOW)
    invoice_mark_paid(invoice=top_up.invoice, now=NOW)
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=customer.reseller))
    add_usage(factories.SubAccountFactory(customer=customer), dt.date(2026, 11, 1), 30, 4)
    after = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)
    result = invoices_generate_for_period(
        reseller=customer.reseller, period_start=dt.date(2026, 11, 1), now=after
    )
    month = invoice_finalize(
        invoice=Invoice.objects.get(pk=result.created[0]), now=after, send_email=False
    )
    month.refresh_from_db()
    assert (month.total, month.balance_applied, month.status) == (
        Decimal("60.00"),
        Decimal("60.00"),
        InvoiceStatus.PAID,
    )
    assert balance_of(customer) == "40.00"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_paying_a_top_up_at_once_credit_it_once():
    customer = factories.CustomerFactory()
    top_up = top_up_create(customer=customer, amount="100.00", now=NOW, send_email=False)
    barrier = threading.Barrier(2)

    def pay():
        return payment_create(invoice=top_up.invoice, amount="100.00", now=NOW, method="card")

    with ThreadPoolExecutor(2) as pool:
        [f.result() for f in [pool.submit(in_thread(barrier, pay)) for _ in range(2)]]
    assert BalanceEntry.objects.filter(kind="top_up").count() == 1
    assert balance_of(customer) == "200.00"  # the credit once, the second payment as an overpayment
    assert TopUp.objects.get().status == "credited"


def test_a_top_up_issued_on_the_first_is_not_the_closed_months_invoice_in_the_exposure(customer):
    from billing.traffic_policy import customer_exposure

    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=customer.reseller))
    top_up_create(customer=customer, amount="50.00", now=dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC))
    exposure = customer_exposure(customer=customer, now=NOW)
    assert exposure.unissued == Decimal("10.00")  # October's base fee, not invoiced yet
