"""The customer balance: overpayments, credit notes on settled invoices, manual adjustments,
the balance applied after tax when the next invoice is issued (and given back by a void),
refunds that never take back money on the balance, two workers never spending it twice."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import transaction

from billing.balance.models import BalanceEntry
from billing.balance.selectors import customer_balances
from billing.balance.services import balance_adjust
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.credit_notes.services import credit_note_create
from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.engine import Issued, issue
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, InvoiceEvent, InvoiceStatus
from billing.payments.services import payment_create, payment_refund
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage, in_thread
from tests.billing.test_credit_notes import make_issued_invoice

NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
OCT = dt.date(2026, 10, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def balance_of(customer) -> str:
    return f"{customer_balances(customer=customer)[0].amount:.2f}"


def figures(invoice) -> tuple[str, str, str]:
    row = invoices_with_credit_totals(Invoice.objects.filter(pk=invoice.pk)).get()
    return row.status, f"{row.amount_paid:.2f}", f"{row.balance_due:.2f}"


def pay(invoice, amount, **kwargs):
    return payment_create(invoice=invoice, amount=amount, now=NOW, method="bank_transfer", **kwargs)


def october_draft(customer, *, tax_rate="20") -> Invoice:
    """October: 10.00 base + 120 GiB (100 free, 20 x 2.50 = 50.00) = 60.00 + 20 % = 72.00."""
    customer.tax_rate = Decimal(tax_rate)
    customer.save()
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=customer.reseller))
    add_usage(factories.SubAccountFactory(customer=customer), OCT, 30, 4)
    invoices_generate_for_period(reseller=customer.reseller, period_start=OCT, now=AFTER_OCTOBER)
    return Invoice.objects.get(customer=customer, period_start=OCT)


def test_the_part_of_a_payment_above_the_balance_due_goes_on_the_balance(customer):
    invoice = make_issued_invoice(customer)  # 180.00
    payment = pay(invoice, "200.00")
    assert (payment.amount, payment.to_balance) == (Decimal("200.00"), Decimal("20.00"))
    assert figures(invoice) == ("paid", "180.00", "0.00")
    (entry,) = BalanceEntry.objects.all()
    assert (entry.kind, entry.amount, entry.payment_id, entry.invoice_id) == (
        "overpayment",
        Decimal("20.00"),
        payment.pk,
        invoice.pk,
    )
    assert balance_of(customer) == "20.00"
    pay(invoice, "5.00")  # a paid invoice owes nothing: all of it goes on the balance
    assert balance_of(customer) == "25.00"
    assert figures(invoice) == ("paid", "180.00", "0.00")


def test_a_credit_note_on_a_paid_invoice_puts_what_is_no_longer_owed_on_the_balance(customer):
    invoice = make_issued_invoice(customer)
    pay(invoice, "180.00")
    first = credit_note_create(invoice=invoice, amount="60.00", now=NOW, send_email=False)
    credit_note_create(invoice=invoice, amount="30.00", now=NOW, send_email=False)
    assert balance_of(customer) == "90.00"
    entries = BalanceEntry.objects.order_by("pk")
    assert [(e.kind, e.amount) for e in entries] == [
        ("credit_note", Decimal("60.00")),
        ("credit_note", Decimal("30.00")),
    ]
    assert entries[0].credit_note_id == first.pk


def test_a_credit_note_on_an_unpaid_invoice_lowers_what_is_due_and_only_the_excess_moves(
    customer,
):
    invoice = make_issued_invoice(customer)
    credit_note_create(invoice=invoice, amount="60.00", now=NOW, send_email=False)
    assert balance_of(customer) == "0.00"
    pay(invoice, "100.00")  # 180 - 60 - 100 = 20 due
    credit_note_create(invoice=invoice, amount="50.00", now=NOW, send_email=False)
    assert figures(invoice) == ("paid", "100.00", "0.00")
    assert balance_of(customer) == "30.00"  # 60 + 100 + 50 - 180


def test_adjustments_need_a_reason_and_never_take_the_balance_below_zero(customer):
    with pytest.raises(ApplicationError) as exc:
        balance_adjust(customer=customer, amount="10.00", reason=" ", now=NOW)
    assert exc.value.code == "reason_required"
    balance_adjust(customer=customer, amount="25.50", reason="Goodwill", now=NOW, actor="alice")
    with pytest.raises(ApplicationError) as exc:
        balance_adjust(customer=customer, amount="-25.51", reason="Refunded", now=NOW)
    assert (exc.value.code, exc.value.extra["balance"]) == ("balance_insufficient", "25.50")
    entry = balance_adjust(customer=customer, amount="-25.50", reason="Refunded", now=NOW)
    assert (entry.amount, entry.currency, entry.kind) == (Decimal("-25.50"), "USD", "adjustment")
    assert balance_of(customer) == "0.00"
    for bad in ("0", "1.001", "abc"):
        with pytest.raises(ApplicationError) as exc:
            balance_adjust(customer=customer, amount=bad, reason="x", now=NOW)
        assert exc.value.code == "invalid_amount"


def test_the_next_invoice_applies_the_balance_after_tax_and_a_void_gives_it_back(customer):
    balance_adjust(customer=customer, amount="50.00", reason="Prepaid", now=NOW)
    draft = october_draft(customer)
    invoice = invoice_finalize(invoice=draft, now=AFTER_OCTOBER, send_email=False)
    invoice.refresh_from_db()
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("60.00"),
        Decimal("12.00"),
        Decimal("72.00"),
    )
    assert invoice.balance_applied == Decimal("50.00")
    assert figures(invoice) == ("finalized", "0.00", "22.00")
    assert balance_of(customer) == "0.00"
    applied = BalanceEntry.objects.get(kind="applied")
    assert (applied.amount, applied.invoice_id) == (Decimal("-50.00"), invoice.pk)
    invoice_void(invoice=invoice, now=NOW, send_email=False)
    back = BalanceEntry.objects.get(kind="applied_reversed")
    assert (back.amount, back.invoice_id) == (Decimal("50.00"), invoice.pk)
    assert balance_of(customer) == "50.00"


def test_a_balance_above_the_total_pays_the_invoice_at_issue_and_the_rest_stays(customer):
    balance_adjust(customer=customer, amount="100.00", reason="Prepaid", now=NOW)
    invoice = invoice_finalize(invoice=october_draft(customer), now=AFTER_OCTOBER, send_email=False)
    invoice.refresh_from_db()
    assert (invoice.total, invoice.balance_applied, invoice.status) == (
        Decimal("72.00"),
        Decimal("72.00"),
        InvoiceStatus.PAID,
    )
    assert figures(invoice) == ("paid", "0.00", "0.00")
    assert balance_of(customer) == "28.00"
    assert InvoiceEvent.objects.filter(invoice=invoice, to_status="paid").get().note == (
        "Paid from the customer's balance"
    )
    # Credited in full afterwards: what the balance paid comes back to it.
    credit_note_create(invoice=invoice, now=NOW, send_email=False)
    assert balance_of(customer) == "100.00"


def test_a_refund_of_a_credited_amount_takes_it_off_the_balance_never_twice(customer):
    invoice = make_issued_invoice(customer)
    payment = pay(invoice, "180.00")
    credit_note_create(invoice=invoice, amount="60.00", now=NOW, send_email=False)
    assert balance_of(customer) == "60.00"
    refund = payment_refund(payment=payment, amount="50.00", now=NOW)  # the credit, in money
    assert figures(invoice) == ("paid", "130.00", "0.00")
    assert balance_of(customer) == "10.00"
    taken = BalanceEntry.objects.get(kind="refund")
    assert (taken.amount, taken.refund_id, taken.invoice_id) == (
        Decimal("-50.00"),
        refund.pk,
        invoice.pk,
    )
    payment_refund(payment=payment, amount="40.00", now=NOW)  # 10 off the balance, 30 reopens
    assert figures(invoice) == ("finalized", "90.00", "30.00")
    assert balance_of(customer) == "0.00"
    balance_adjust(customer=customer, amount="5.00", reason="Goodwill", now=NOW)
    payment_refund(payment=payment, amount="10.00", now=NOW)  # only reopens more
    assert balance_of(customer) == "5.00"


def test_a_refund_of_money_spent_from_the_balance_is_refused(customer):
    invoice = make_issued_invoice(customer)
    payment = pay(invoice, "180.00")
    credit_note_create(invoice=invoice, amount="60.00", now=NOW, send_email=False)
    balance_adjust(customer=customer, amount="-60.00", reason="Paid out by wire", now=NOW)
    with pytest.raises(ApplicationError) as exc:
        payment_refund(payment=payment, amount="60.00", now=NOW)
    assert exc.value.code == "balance_insufficient"
    assert payment.refunds.count() == 0
    overpaid = pay(make_issued_invoice(customer, period_start=dt.date(2026, 9, 1)), "200.00")
    with pytest.raises(ApplicationError) as exc:  # its 20.00 is on the balance, not refundable
        payment_refund(payment=overpaid, amount="180.01", now=NOW)
    assert (exc.value.code, exc.value.extra["remaining"]) == ("refund_exceeds_payment", "180.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_spending_the_same_balance_spend_it_once():
    customer = factories.CustomerFactory()
    balance_adjust(customer=customer, amount="100.00", reason="Prepaid", now=NOW)
    barrier = threading.Barrier(2)

    def spend():
        try:
            return balance_adjust(customer=customer, amount="-100.00", reason="Paid out", now=NOW)
        except ApplicationError as exc:
            return exc.code

    with ThreadPoolExecutor(2) as pool:
        outcomes = [f.result() for f in [pool.submit(in_thread(barrier, spend)) for _ in range(2)]]
    assert sorted(type(o).__name__ for o in outcomes) == ["BalanceEntry", "str"]
    assert "balance_insufficient" in outcomes
    assert balance_of(customer) == "0.00"


def _draft(customer, period_start: dt.date, total: str) -> Invoice:
    return Invoice.objects.create(
        reseller=customer.reseller,
        customer=customer,
        period_start=period_start,
        period_end=period_start + dt.timedelta(days=28),
        currency="USD",
        subtotal=Decimal(total),
        total=Decimal(total),
        snapshot={"buyer": {"name": customer.name, "emails": [customer.email]}},
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_invoice_issued_while_the_balance_is_spent_never_takes_it_twice(monkeypatch):
    """Issuing (which applies the balance) reads it, then waits; meanwhile a negative
    adjustment wants the same 100. The balance row's lock makes the adjustment wait and find
    0 (without it both would take the 100 and the balance would end at -100)."""
    import time

    from billing.balance import services

    customer = factories.CustomerFactory()
    balance_adjust(customer=customer, amount="100.00", reason="Prepaid", now=NOW)
    draft = _draft(customer, OCT, "100.00")
    barrier = threading.Barrier(2)
    issuing = threading.local()
    real_amount = services.balance_amount

    def slow_when_issuing(**kwargs):
        value = real_amount(**kwargs)
        if getattr(issuing, "on", False):
            time.sleep(0.5)  # the adjustment runs now
        return value

    monkeypatch.setattr(services, "balance_amount", slow_when_issuing)

    def issue_it():
        issuing.on = True
        with transaction.atomic():
            locked = Invoice.objects.select_for_update().get(pk=draft.pk)
            issue(
                [Issued(locked, [], [])],
                reseller=locked.reseller,
                now=NOW,
                actor="",
                send_email=False,
            )
        return locked.balance_applied

    def spend():
        time.sleep(0.25)  # after the issuing read the balance
        try:
            return balance_adjust(customer=customer, amount="-100.00", reason="Wire", now=NOW)
        except ApplicationError as exc:
            return exc.code

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(in_thread(barrier, fn)) for fn in (issue_it, spend)]
        applied, spent = [f.result() for f in futures]
    assert (applied, spent) == (Decimal("100.00"), "balance_insufficient")
    assert balance_of(customer) == "0.00"


def test_the_pdf_prints_balance_applied_and_amount_due_under_the_total(customer):
    import io

    import pypdf

    balance_adjust(customer=customer, amount="50.00", reason="Prepaid", now=NOW)
    invoice = invoice_finalize(invoice=october_draft(customer), now=AFTER_OCTOBER, send_email=False)
    invoice.refresh_from_db()
    with invoice.pdf.open("rb") as fh:
        reader = pypdf.PdfReader(io.BytesIO(fh.read()))
    text = "\n".join(page.extract_text() for page in reader.pages)
    labels = text.index("Total\nBalance applied\nAmount due")
    amounts = text.index("USD 72.00\n-USD 50.00\nUSD 22.00")
    assert labels < amounts


def test_every_entry_sends_customer_balance_changed_with_the_balance_after_it(customer):
    from webhooks.models import WebhookEvent
    from webhooks.services import webhook_endpoint_create

    webhook_endpoint_create(
        reseller=customer.reseller,
        url="https://hooks.example.com/x",
        enabled_events=["customer.balance_changed"],
    )
    first = balance_adjust(customer=customer, amount="25.00", reason="Goodwill", now=NOW)
    balance_adjust(customer=customer, amount="-5.00", reason="Wire", now=NOW)
    events = list(WebhookEvent.objects.filter(type="customer.balance_changed").order_by("pk"))
    assert [(e.data["amount"], e.data["balance"]) for e in events] == [
        ("25.00", "25.00"),
        ("-5.00", "20.00"),
    ]
    assert events[0].data["id"] == first.pk and events[0].data["kind"] == "adjustment"
