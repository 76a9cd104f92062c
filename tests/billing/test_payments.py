"""Payments and refunds: partial payments reach paid exactly at 0, refunds reopen, limits,
mark-paid semantics, credit notes with payments, webhooks once, PDF, immutability, locking."""

from __future__ import annotations

import datetime as dt
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pypdf
import pytest

from accounts.models import Customer
from billing.balance.models import BalanceEntry
from billing.balance.selectors import customer_balances
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.credit_notes.services import credit_note_create
from billing.invoicing.delivery import invoice_pdf_content
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, InvoiceEvent, InvoiceStatus
from billing.payments.models import Payment, Refund
from billing.payments.services import invoice_mark_paid, payment_create, payment_refund
from billing.traffic_policy.exposure import customer_balance_due
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import in_thread
from tests.billing.test_credit_notes import make_draft_invoice, make_issued_invoice
from webhooks.models import WebhookEvent
from webhooks.services import webhook_endpoint_create

NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def invoice(customer):
    return make_issued_invoice(customer)  # 150.00 + 20 % tax 30.00 = 180.00


def _figures(invoice: Invoice) -> tuple[str, str, str, str]:
    row = invoices_with_credit_totals(Invoice.objects.filter(pk=invoice.pk)).get()
    return (
        row.status,
        f"{row.amount_credited:.2f}",
        f"{row.amount_paid:.2f}",
        f"{row.balance_due:.2f}",
    )


def _pay(invoice, amount, **kwargs):
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("paid_at", NOW - DAY)
    kwargs.setdefault("method", "bank_transfer")
    return payment_create(invoice=invoice, amount=amount, **kwargs)


def _subscribe(reseller, *types):
    return webhook_endpoint_create(
        reseller=reseller, url="https://hooks.example.com/x", enabled_events=list(types)
    )


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_partial_payments_reach_paid_exactly_at_zero(invoice):
    first = _pay(invoice, "100.00", reference="WIRE-1")
    assert (first.amount, first.currency, first.customer_id) == (
        Decimal("100.00"),
        "USD",
        invoice.customer_id,
    )
    assert _figures(invoice) == ("finalized", "0.00", "100.00", "80.00")
    _pay(invoice, "79.99", method="card")
    assert _figures(invoice) == ("finalized", "0.00", "179.99", "0.01")
    last = _pay(invoice, "0.01", paid_at=NOW - dt.timedelta(hours=2))
    assert _figures(invoice) == ("paid", "0.00", "180.00", "0.00")
    invoice.refresh_from_db()
    assert invoice.paid_at == last.paid_at  # when the last money came in
    event = InvoiceEvent.objects.filter(invoice=invoice).latest("pk")
    assert (event.from_status, event.to_status) == ("finalized", "paid")
    assert event.note == f"Paid in full by payment #{last.pk}"


def test_a_payment_above_the_balance_due_puts_the_excess_on_the_customer_balance(invoice):
    _pay(invoice, "150.00")
    over = _pay(invoice, "30.01")
    assert (over.amount, over.to_balance) == (Decimal("30.01"), Decimal("0.01"))
    assert _figures(invoice) == ("paid", "0.00", "180.00", "0.00")
    late = _pay(invoice, "0.01")  # a paid invoice has nothing due: all on the balance
    assert late.to_balance == Decimal("0.01")
    assert _figures(invoice) == ("paid", "0.00", "180.00", "0.00")
    customer = Customer.objects.get(pk=invoice.customer_id)
    assert customer_balances(customer=customer)[0].amount == Decimal("0.02")


@pytest.mark.parametrize(
    ("amount", "code"),
    [("0", "invalid_amount"), ("-1", "invalid_amount"), ("1.005", "invalid_amount")],
)
def test_bad_amounts_are_refused(invoice, amount, code):
    with pytest.raises(ApplicationError) as exc:
        _pay(invoice, amount)
    assert exc.value.code == code and "amount" in exc.value.extra["fields"]


def test_method_currency_and_date_are_checked(invoice):
    cases = [
        ({"method": "wire"}, "invalid_payment_method"),
        ({"currency": "EUR"}, "payment_currency_mismatch"),
        ({"paid_at": NOW + dt.timedelta(minutes=6)}, "paid_at_in_future"),
        ({"paid_at": dt.datetime(2026, 11, 19, 12)}, "naive_datetime"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ApplicationError) as exc:
            _pay(invoice, "10.00", **kwargs)
        assert exc.value.code == code
    # within the clock skew, and in the invoice's currency said explicitly: accepted
    ok = _pay(invoice, "10.00", paid_at=NOW + dt.timedelta(minutes=4), currency="USD")
    assert ok.paid_at == NOW + dt.timedelta(minutes=4)


def test_drafts_and_void_invoices_take_no_payment(customer):
    draft = make_draft_invoice(customer)
    with pytest.raises(ApplicationError) as exc:
        _pay(draft, "1.00")
    assert (exc.value.code, exc.value.http_status) == ("invoice_not_payable", 409)
    issued = make_issued_invoice(customer)
    invoice_void(invoice=issued, now=NOW, send_email=False)
    with pytest.raises(ApplicationError) as exc:
        _pay(issued, "1.00")
    assert exc.value.code == "invoice_not_payable"
    assert exc.value.extra == {"status": "void"}


def test_an_invoice_holding_payments_is_not_voided_until_they_are_refunded(invoice):
    payment = _pay(invoice, "50.00")
    with pytest.raises(ApplicationError) as exc:
        invoice_void(invoice=invoice, now=NOW, send_email=False)
    assert (exc.value.code, exc.value.extra) == ("invoice_has_payments", {"amount_paid": "50.00"})
    payment_refund(payment=payment, now=NOW)
    assert invoice_void(invoice=invoice, now=NOW, send_email=False).status == "void"


def test_refunds_reopen_a_paid_invoice_and_are_limited_to_the_payment(invoice):
    payment = _pay(invoice, "180.00")
    assert _figures(invoice)[0] == "paid"
    refund = payment_refund(payment=payment, amount="30.00", now=NOW, reason="goodwill")
    assert refund.amount == Decimal("30.00")
    assert _figures(invoice) == ("finalized", "0.00", "150.00", "30.00")
    invoice.refresh_from_db()
    assert invoice.paid_at is None
    event = InvoiceEvent.objects.filter(invoice=invoice).latest("pk")
    assert (event.from_status, event.to_status) == ("paid", "finalized")
    with pytest.raises(ApplicationError) as exc:
        payment_refund(payment=payment, amount="150.01", now=NOW)
    assert exc.value.code == "refund_exceeds_payment"
    assert exc.value.extra == {"remaining": "150.00", "requested": "150.01"}
    payment_refund(payment=payment, now=NOW)  # the rest
    assert _figures(invoice) == ("finalized", "0.00", "0.00", "180.00")
    with pytest.raises(ApplicationError) as exc:
        payment_refund(payment=payment, now=NOW)
    assert exc.value.extra["remaining"] == "0.00"
    # paid again: paid once more
    _pay(invoice, "180.00")
    assert _figures(invoice)[0] == "paid"
    assert Refund.objects.count() == 2


def test_mark_paid_pays_the_balance_due_and_refuses_nothing_due(customer, invoice):
    _pay(invoice, "30.00")
    paid = invoice_mark_paid(invoice=invoice, now=NOW, actor="alice", note="wire 42")
    assert paid.status == "paid" and paid.paid_at == NOW
    last = Payment.objects.latest("pk")
    assert (last.amount, last.method, last.method_detail, last.note, last.created_by) == (
        Decimal("150.00"),
        "other",
        "Marked paid",
        "wire 42",
        "alice",
    )
    assert _figures(invoice) == ("paid", "0.00", "180.00", "0.00")
    with pytest.raises(ApplicationError) as exc:
        invoice_mark_paid(invoice=invoice, now=NOW)
    assert (exc.value.code, exc.value.http_status) == ("nothing_due", 409)
    assert "cannot become paid" in exc.value.message
    # credited in full, no payment: nothing due, and it stays finalized
    credited = make_issued_invoice(customer, period_start=dt.date(2026, 9, 1))
    credit_note_create(invoice=credited, now=NOW, send_email=False)
    with pytest.raises(ApplicationError) as exc:
        invoice_mark_paid(invoice=credited, now=NOW)
    assert exc.value.code == "nothing_due"
    assert _figures(credited) == ("finalized", "180.00", "0.00", "0.00")
    # a draft: the transition table refuses it, as before
    with pytest.raises(ApplicationError) as exc:
        invoice_mark_paid(invoice=make_draft_invoice(customer), now=NOW)
    assert exc.value.code == "invalid_transition"


def test_a_credit_note_and_partial_payments_add_up(invoice):
    credit_note_create(invoice=invoice, amount="60.00", now=NOW, send_email=False)
    assert _figures(invoice) == ("finalized", "60.00", "0.00", "120.00")
    _pay(invoice, "100.00")
    assert _figures(invoice) == ("finalized", "60.00", "100.00", "20.00")
    # a credit note covering the rest settles the invoice (it holds payments)
    credit_note_create(invoice=invoice, amount="20.00", now=NOW, send_email=False)
    assert _figures(invoice) == ("paid", "80.00", "100.00", "0.00")
    note = InvoiceEvent.objects.filter(invoice=invoice).latest("pk").note
    assert note.startswith("Settled by credit note ")


def test_balance_due_flows_into_the_exposure_and_the_overdue_rule(customer, invoice):
    other = make_issued_invoice(customer, period_start=dt.date(2026, 9, 1))  # 180.00
    _pay(invoice, "45.50")
    assert customer_balance_due(customer=customer) == Decimal("314.50")
    _pay(other, "180.00")
    assert customer_balance_due(customer=customer) == Decimal("134.50")


def test_paying_an_overdue_invoice_reinstates_the_customer(customer, invoice, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "billing.invoicing.transitions.customer_overdue_check",
        lambda *, customer, now: calls.append((customer.pk, now)),
    )
    _pay(invoice, "100.00")
    assert calls == []  # still owed: nothing to lift
    _pay(invoice, "80.00")
    assert calls == [(customer.pk, NOW)]


def test_webhooks_are_emitted_once_per_payment_refund_and_transition(reseller, invoice):
    _subscribe(reseller, "payment.created", "payment.refunded", "invoice.paid")
    first = _pay(invoice, "100.00", reference="WIRE-1")
    with pytest.raises(ApplicationError):
        _pay(invoice, "0.001")  # refused: nothing is sent
    second = _pay(invoice, "80.00")
    payment_refund(payment=second, amount="5.00", now=NOW)
    types = list(WebhookEvent.objects.order_by("pk").values_list("type", flat=True))
    assert types == ["payment.created", "invoice.paid", "payment.created", "payment.refunded"]
    created = WebhookEvent.objects.filter(type="payment.created").order_by("pk")
    data = created[0].data
    assert data["id"] == first.pk and data["reference"] == "WIRE-1"
    assert (data["amount"], data["currency"], data["method"]) == ("100.00", "USD", "bank_transfer")
    assert (data["invoice_status"], data["invoice_balance_due"]) == ("finalized", "80.00")
    assert created[1].data["invoice_status"] == "paid"
    paid = WebhookEvent.objects.get(type="invoice.paid").data
    assert (paid["amount_paid"], paid["balance_due"]) == ("180.00", "0.00")
    refunded = WebhookEvent.objects.get(type="payment.refunded").data
    assert refunded["amount_refunded"] == "5.00" and refunded["refunds"][0]["amount"] == "5.00"
    assert (refunded["invoice_status"], refunded["invoice_balance_due"]) == ("finalized", "5.00")


def test_payments_and_refunds_never_change(invoice):
    payment = _pay(invoice, "10.00")
    payment.amount = Decimal("1.00")
    for attempt in (
        payment.save,
        payment.delete,
        lambda: Payment.objects.update(amount=1),
        lambda: Payment.objects.all().delete(),
    ):
        with pytest.raises(ApplicationError) as exc:
            attempt()
        assert exc.value.code == "payment_immutable"
    assert Payment.objects.get().amount == Decimal("10.00")


def test_jpy_payments_take_no_decimals(customer):
    invoice = make_issued_invoice(customer, amounts=("1000",), tax_rate="10", currency="JPY")
    with pytest.raises(ApplicationError) as exc:
        _pay(invoice, "100.5")
    assert exc.value.code == "invalid_amount"
    _pay(invoice, "1099")
    assert _figures(invoice)[3] == "1.00"  # 1 yen left (stored with 4 places)
    _pay(invoice, "1")
    assert _figures(invoice)[0] == "paid"


def test_the_pdf_shows_paid_and_balance_due(invoice):
    _pay(invoice, "100.00")
    text = _text(invoice_pdf_content(invoice=Invoice.objects.get(pk=invoice.pk)))
    assert "Paid\nBalance due" in text
    assert "USD 180.00\n-USD 100.00\nUSD 80.00" in text
    assert "Amount credited" not in text


def test_customer_scope_queries_see_only_their_payments(reseller, invoice):
    from billing.payments.selectors import payments_for_customer, payments_for_reseller

    other_customer = factories.CustomerFactory(reseller=reseller)
    other = make_issued_invoice(other_customer, period_start=dt.date(2026, 9, 1))
    mine = _pay(invoice, "10.00")
    _pay(other, "20.00")
    customer = Customer.objects.get(pk=invoice.customer_id)
    assert list(payments_for_customer(customer=customer)) == [mine]
    assert payments_for_reseller(reseller=factories.ResellerFactory()).count() == 0
    assert payments_for_reseller(reseller=reseller).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_paying_the_balance_at_once_pay_it_once_and_the_second_goes_on_the_balance():
    reseller = factories.ResellerFactory()
    invoice = make_issued_invoice(factories.CustomerFactory(reseller=reseller))
    barrier = threading.Barrier(2)

    def pay():
        try:
            return _pay(invoice, "180.00")
        except ApplicationError as exc:
            return exc.code

    with ThreadPoolExecutor(2) as pool:
        outcomes = [f.result() for f in [pool.submit(in_thread(barrier, pay)) for _ in range(2)]]
    assert [type(o).__name__ for o in outcomes] == ["Payment", "Payment"]
    assert sorted(p.to_balance for p in outcomes) == [Decimal(0), Decimal("180.00")]
    assert Payment.objects.count() == 2
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    assert BalanceEntry.objects.get().amount == Decimal("180.00")
    assert InvoiceEvent.objects.filter(invoice=invoice, to_status="paid").count() == 1


# --- admin -----------------------------------------------------------------------------------


def test_admin_records_a_payment_and_refunds_it_through_the_services(client, invoice):
    from django.urls import reverse

    staff = factories.StaffUserFactory(reseller=invoice.reseller)
    client.force_login(staff)
    page = client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    assert page.status_code == 200 and "Record payment" in page.content.decode()
    action = reverse("admin:billing_invoice_action", args=[invoice.pk, "record_payment"])
    body = {"amount": "80.00", "paid_at": "2026-11-19T10:00", "method": "card", "reference": "R"}
    client.post(action, body)
    payment = Payment.objects.get()
    assert (payment.amount, payment.method, payment.reference, payment.created_by) == (
        Decimal("80.00"),
        "card",
        "R",
        staff.username,
    )
    assert payment.paid_at == dt.datetime(2026, 11, 19, 10, tzinfo=invoice.reseller.tzinfo)
    client.post(action, {**body, "amount": "100.01"})  # 0.01 above: on the balance
    assert _figures(invoice)[0] == "paid"
    assert Payment.objects.latest("pk").to_balance == Decimal("0.01")
    page = client.get(reverse("admin:billing_invoice_change", args=[invoice.pk])).content.decode()
    assert "Paid (payments less refunds)" in page and "$180.00" in page
    listing = client.get(reverse("admin:billing_payment_changelist")).content.decode()
    assert invoice.number in listing and "$80.00" in listing
    refund = reverse("admin:billing_payment_action", args=[payment.pk, "refund"])
    client.post(refund, {"amount": "20.00", "reason": "goodwill"})
    assert _figures(invoice) == ("finalized", "0.00", "160.00", "20.00")
    assert Refund.objects.get().created_by == staff.username
    theirs = make_issued_invoice(factories.CustomerFactory(), period_start=dt.date(2026, 9, 1))
    other = reverse("admin:billing_invoice_action", args=[theirs.pk, "record_payment"])
    assert client.post(other, body).status_code == 404
    assert not Payment.objects.filter(invoice=theirs).exists()


def test_the_migration_gives_invoices_paid_before_payments_their_payment(customer, invoice):
    import importlib

    from django.apps import apps

    from billing.invoicing.transitions import invoice_transition

    migration = importlib.import_module("billing.migrations.0009_payments_customer_balance")
    credit_note_create(invoice=invoice, amount="30.00", now=NOW - 2 * DAY, send_email=False)
    invoice_transition(  # paid the old way: a status change, no payment row
        invoice=invoice, to_status="paid", now=NOW - DAY, actor="", note="", stamp="paid_at"
    )
    credit_note_create(invoice=invoice, amount="10.00", now=NOW, send_email=False)  # after
    migration.backfill_payments(apps, None)
    migration.backfill_payments(apps, None)  # twice: still one
    payment = Payment.objects.get()
    assert (payment.amount, payment.paid_at, payment.method) == (
        Decimal("150.00"),
        NOW - DAY,
        "other",
    )
    assert _figures(invoice) == ("paid", "40.00", "150.00", "0.00")
