"""Payment API: record (201/400/404/409), list and filter, refund, mark-paid, idempotency,
invoice outputs, and what each key sees."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.api_keys import api_key_create
from billing.payments.models import Payment, Refund
from billing.payments.services import payment_create
from tests import factories
from tests.api.conftest import key_client
from tests.api.test_isolation import MISSING_ID, response_text
from tests.billing.test_credit_notes import make_draft_invoice, make_issued_invoice

R = "/api/v1/reseller"
PAID_AT = "2026-11-19T14:20:00Z"


@pytest.fixture
def invoice(customer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return make_issued_invoice(customer)  # 150.00 + 20 % tax = 180.00


@pytest.fixture
def customer_api(customer):
    return key_client(api_key_create(reseller=customer.reseller, customer=customer, name="c")[1])


def _pay(api, invoice, body, **headers):
    return api.post(f"{R}/invoices/{invoice.pk}/payments/", body, format="json", **headers)


def _body(amount="100.00", **more):
    return {"amount": amount, "paid_at": PAID_AT, "method": "bank_transfer", **more}


def test_recording_partial_payments_until_paid(reseller_api, invoice, customer):
    response = _pay(reseller_api, invoice, _body(reference="WIRE-1", method_detail="Wise"))
    assert response.status_code == 201, response.content
    body = response.json()
    payment = Payment.objects.get()
    assert body == {
        "id": payment.pk,
        "invoice": invoice.pk,
        "invoice_number": invoice.number,
        "customer": customer.pk,
        "currency": "USD",
        "amount": "100.00",
        "amount_refunded": "0.00",
        "paid_at": PAID_AT,
        "method": "bank_transfer",
        "method_detail": "Wise",
        "reference": "WIRE-1",
        "refunds": [],
        "note": "",
        "created_by": payment.created_by,
        "created_at": body["created_at"],
    }
    assert payment.created_by.startswith("api-key ")
    detail = reseller_api.get(f"{R}/invoices/{invoice.pk}/").json()
    assert (detail["status"], detail["amount_paid"], detail["balance_due"]) == (
        "finalized",
        "100.00",
        "80.00",
    )
    assert _pay(reseller_api, invoice, _body("80.00", method="cash")).status_code == 201
    detail = reseller_api.get(f"{R}/invoices/{invoice.pk}/").json()
    assert (detail["status"], detail["amount_paid"], detail["balance_due"]) == (
        "paid",
        "180.00",
        "0.00",
    )
    assert detail["paid_at"] == PAID_AT
    listed = reseller_api.get(f"{R}/invoices/{invoice.pk}/payments/").json()
    assert [p["amount"] for p in listed["results"]] == ["100.00", "80.00"]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (_body("abc"), "invalid_amount", "amount"),
        (_body("0"), "invalid_amount", "amount"),
        (_body("1.001"), "invalid_amount", "amount"),
        (_body(method="wire"), "validation_error", "method"),
        (_body(paid_at="2026-11-19T14:20:00"), "validation_error", "paid_at"),
        (_body(paid_at="2099-01-01T00:00:00Z"), "paid_at_in_future", "paid_at"),
        (_body(currency="EUR"), "payment_currency_mismatch", "currency"),
        ({"amount": "1.00"}, "validation_error", "method"),
        (_body(surprise=1), "validation_error", "surprise"),
        (_body(reference="x" * 201), "validation_error", "reference"),
    ],
)
def test_bad_input_is_400_naming_the_field(reseller_api, invoice, body, code, field):
    response = _pay(reseller_api, invoice, body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert field in response.json()["extra"]["fields"]
    assert not Payment.objects.exists()


def test_overpaying_puts_the_excess_on_the_customer_balance(reseller_api, invoice, customer):
    response = _pay(reseller_api, invoice, _body("180.01"))
    assert response.status_code == 201, response.content
    detail = reseller_api.get(f"{R}/invoices/{invoice.pk}/").json()
    assert (detail["status"], detail["amount_paid"], detail["balance_due"]) == (
        "paid",
        "180.00",
        "0.00",
    )
    balance = reseller_api.get(f"{R}/customers/{customer.pk}/balance/").json()
    assert balance["balances"][0]["amount"] == "0.01"
    assert balance["entries"][0]["kind"] == "overpayment"


def test_drafts_void_and_foreign_invoices(reseller_api, customer, reseller):
    draft = make_draft_invoice(customer)
    response = _pay(reseller_api, draft, _body("1.00"))
    assert (response.status_code, response.json()["code"]) == (409, "invoice_not_payable")
    assert response.json()["extra"] == {"status": "draft"}
    other = make_issued_invoice(factories.CustomerFactory(reseller=factories.ResellerFactory()))
    assert _pay(reseller_api, other, _body("1.00")).status_code == 404
    missing = reseller_api.post(f"{R}/invoices/{MISSING_ID}/payments/", _body(), format="json")
    assert missing.status_code == 404
    assert reseller_api.get(f"{R}/invoices/{other.pk}/payments/").status_code == 404
    assert not Payment.objects.exists()


def test_refunds_reopen_and_are_limited(reseller_api, invoice):
    payment_id = _pay(reseller_api, invoice, _body("180.00")).json()["id"]
    url = f"{R}/payments/{payment_id}/refunds/"
    response = reseller_api.post(url, {"amount": "30.00", "reason": "goodwill"}, format="json")
    assert response.status_code == 201, response.content
    refund = Refund.objects.get()
    assert response.json() == {
        "id": refund.pk,
        "payment": payment_id,
        "amount": "30.00",
        "refunded_at": response.json()["refunded_at"],
        "reason": "goodwill",
        "reference": "",
        "created_at": response.json()["created_at"],
    }
    detail = reseller_api.get(f"{R}/invoices/{invoice.pk}/").json()
    assert (detail["status"], detail["amount_paid"], detail["balance_due"], detail["paid_at"]) == (
        "finalized",
        "150.00",
        "30.00",
        None,
    )
    over = reseller_api.post(url, {"amount": "150.01"}, format="json")
    assert (over.status_code, over.json()["code"]) == (409, "refund_exceeds_payment")
    assert over.json()["extra"] == {"remaining": "150.00", "requested": "150.01"}
    payment = reseller_api.get(f"{R}/payments/{payment_id}/").json()
    assert (payment["amount_refunded"], len(payment["refunds"])) == ("30.00", 1)
    theirs = make_issued_invoice(factories.CustomerFactory(reseller=factories.ResellerFactory()))
    foreign = payment_create(
        invoice=theirs, amount="5.00", method="card", now=dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    )
    for pk in (foreign.pk, MISSING_ID):
        assert reseller_api.post(f"{R}/payments/{pk}/refunds/", {}).status_code == 404
        assert reseller_api.get(f"{R}/payments/{pk}/").status_code == 404
    assert not Refund.objects.filter(payment=foreign).exists()


def test_mark_paid_pays_the_balance_and_refuses_nothing_due(reseller_api, invoice):
    _pay(reseller_api, invoice, _body("30.00"))
    paid = reseller_api.post(f"{R}/invoices/{invoice.pk}/mark-paid/", {"note": "wire 42"})
    assert paid.status_code == 200, paid.content
    assert (paid.json()["status"], paid.json()["amount_paid"], paid.json()["balance_due"]) == (
        "paid",
        "180.00",
        "0.00",
    )
    last = Payment.objects.latest("pk")
    assert (str(last.amount), last.method, last.note) == ("150.0000", "other", "wire 42")
    again = reseller_api.post(f"{R}/invoices/{invoice.pk}/mark-paid/", {})
    assert (again.status_code, again.json()["code"]) == (409, "nothing_due")


def test_voiding_an_invoice_holding_payments_is_409(reseller_api, invoice):
    _pay(reseller_api, invoice, _body("10.00"))
    response = reseller_api.post(f"{R}/invoices/{invoice.pk}/void/", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "invoice_has_payments")


def test_idempotency_key_records_one_payment(reseller_api, invoice):
    first = _pay(reseller_api, invoice, _body("10.00"), HTTP_IDEMPOTENCY_KEY="pay-42")
    second = _pay(reseller_api, invoice, _body("10.00"), HTTP_IDEMPOTENCY_KEY="pay-42")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1


def test_the_payments_list_filters_strictly(reseller_api, reseller, customer, invoice):
    other_customer = factories.CustomerFactory(reseller=reseller)
    other = make_issued_invoice(other_customer, period_start=dt.date(2026, 9, 1))
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    a = payment_create(
        invoice=invoice, amount="10.00", paid_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        method="card", now=now,
    )  # fmt: skip
    b = payment_create(
        invoice=other, amount="20.00", paid_at=dt.datetime(2026, 11, 15, tzinfo=dt.UTC),
        method="cash", now=now,
    )  # fmt: skip
    foreign_customer = factories.CustomerFactory(reseller=factories.ResellerFactory())

    def ids(query=""):
        response = reseller_api.get(f"{R}/payments/{query}")
        assert response.status_code == 200, response.content
        return [p["id"] for p in response.json()["results"]]

    assert ids() == [a.pk, b.pk]
    assert ids(f"?customer={customer.pk}") == [a.pk]
    assert ids(f"?invoice={other.pk}") == [b.pk]
    assert ids("?method=cash") == [b.pk]
    assert ids("?paid_from=2026-11-02") == [b.pk]
    assert ids("?paid_to=2026-11-14") == [a.pk]
    assert ids("?paid_from=2026-11-01&paid_to=2026-11-01") == [a.pk]
    assert ids("?limit=1&offset=1") == [b.pk]
    for query, field in [
        ("?colour=red", "colour"),
        ("?method=wire", "method"),
        ("?paid_from=11/02/2026", "paid_from"),
        ("?paid_from=2026-11-10&paid_to=2026-11-01", "paid_to"),
        ("?customer=abc", "customer"),
    ]:
        response = reseller_api.get(f"{R}/payments/{query}")
        assert response.status_code == 400, query
        assert field in response.json()["extra"]["fields"], query
    assert reseller_api.get(f"{R}/payments/?customer={foreign_customer.pk}").status_code == 404


def test_the_customer_sees_only_its_own_payments(reseller, customer, invoice, customer_api):
    other = make_issued_invoice(
        factories.CustomerFactory(reseller=reseller), period_start=dt.date(2026, 9, 1)
    )
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    mine = payment_create(invoice=invoice, amount="10.00", method="card", now=now, note="intern")
    payment_create(invoice=other, amount="20.00", method="card", now=now)
    listed = customer_api.get("/api/v1/payments/").json()
    assert [p["id"] for p in listed["results"]] == [mine.pk]
    assert "note" not in listed["results"][0] and "created_by" not in listed["results"][0]
    on_invoice = customer_api.get(f"/api/v1/invoices/{invoice.pk}/payments/").json()
    assert [p["id"] for p in on_invoice["results"]] == [mine.pk]
    assert customer_api.get(f"/api/v1/invoices/{other.pk}/payments/").status_code == 404
    detail = customer_api.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (detail["amount_paid"], detail["balance_due"]) == ("10.00", "170.00")
    # wrong scope either way
    assert customer_api.get(f"{R}/payments/").status_code == 403
    assert customer_api.post(f"{R}/invoices/{invoice.pk}/payments/", _body()).status_code == 403


def test_the_invoice_pdf_shows_paid_and_balance_due(reseller_api, invoice):
    _pay(reseller_api, invoice, _body("100.00"))
    text = response_text(reseller_api.get(f"{R}/invoices/{invoice.pk}/pdf/"))
    assert "Paid" in text and "-USD 100.00" in text and "Balance due" in text
