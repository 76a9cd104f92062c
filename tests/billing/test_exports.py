"""Accounting exports (billing.exports): one CSV row per document of the month with net,
tax, gross, currency and status; a `total` row per currency that adds up the documents;
void invoices listed but not totalled; the API and the admin give the same file."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.api_keys import api_key_create
from billing.credit_notes.services import credit_note_create
from billing.exports import export_build, export_csv
from billing.invoicing.issuing import invoice_issue
from billing.invoicing.periods import period_parse
from billing.invoicing.transitions import invoice_status_void
from billing.payments.services import payment_create, payment_refund
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

SEPTEMBER = dt.date(2026, 9, 1)
ISSUED_AT = dt.datetime(2026, 10, 3, 4, tzinfo=dt.UTC)  # 2026-10-03 in Shanghai
PAID_AT = dt.datetime(2026, 10, 10, 4, tzinfo=dt.UTC)


def _customer(reseller, name, currency, gib, upstream_id):
    customer = factories.CustomerFactory(reseller=reseller, name=name, currency=currency)
    plan = PlanFactory(reseller=reseller, currency=currency)
    SubscriptionFactory(customer=customer, plan=plan)
    sub = factories.SubAccountFactory(
        customer=customer, upstream_account__reseller=reseller, upstream_id=upstream_id
    )
    add_usage(sub, SEPTEMBER, 30, gib)
    invoice, _ = invoice_issue(
        customer=customer, period_start=SEPTEMBER, now=ISSUED_AT, send_email=False
    )
    return invoice


@pytest.fixture
def books(db):
    """September in two currencies: a USD invoice credited 30.00 and paid 50.00 (10.00 of it
    refunded), a EUR invoice, and a voided USD invoice of a customer named like a formula."""
    reseller = factories.ResellerFactory(timezone="Asia/Shanghai", currency="USD")
    usd = _customer(reseller, "Globex", "USD", 5, "FBEXPORT00001")
    eur = _customer(reseller, "Initech", "EUR", 2, "FBEXPORT00002")
    void = _customer(reseller, "=HYPERLINK(1)", "USD", 1, "FBEXPORT00003")
    invoice_status_void(invoice=void, now=ISSUED_AT, actor="alice", reason="billed twice")
    note = credit_note_create(invoice=usd, now=PAID_AT, amount="30.00", send_email=False)
    payment = payment_create(invoice=usd, amount="50.00", now=PAID_AT, reference="wire 7")
    payment_refund(payment=payment, amount="10.00", now=PAID_AT + dt.timedelta(days=1))
    return reseller, usd, eur, void, note


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_invoices_one_row_each_and_totals_per_currency_without_the_void_one(books):
    reseller, usd, eur, void, note = books
    export = export_build(reseller=reseller, kind="invoices", period=period_parse("2026-09"))
    table = rows(export_csv(export))

    by_number = {r["number"]: r for r in table if r["number"] != "total"}
    assert set(by_number) == {usd.number, eur.number, void.number}
    usd_row = by_number[usd.number]
    assert (usd_row["status"], usd_row["currency"]) == ("finalized", "USD")
    assert (usd_row["net"], usd_row["tax"], usd_row["gross"]) == (
        str(usd.subtotal),
        str(usd.tax),
        str(usd.total),
    )
    assert (usd_row["credited"], usd_row["paid"]) == (str(note.total), "40.00")
    assert Decimal(usd_row["balance_due"]) == usd.total - note.total - Decimal("40.00")
    assert by_number[void.number]["status"] == "void"
    assert by_number[void.number]["customer"] == "'=HYPERLINK(1)"  # never a formula

    totals = {r["currency"]: r for r in table if r["number"] == "total"}
    assert set(totals) == {"EUR", "USD"}  # never a sum across currencies
    assert totals["USD"]["gross"] == str(usd.total)  # the void invoice is not counted
    assert totals["EUR"]["gross"] == str(eur.total)
    assert export.filename == "invoices-2026-09.csv"


def test_credit_notes_of_the_month_they_were_issued(books):
    reseller, usd, _, _, note = books
    october = rows(
        export_csv(
            export_build(reseller=reseller, kind="credit-notes", period=period_parse("2026-10"))
        )
    )
    assert [(r["number"], r["invoice"], r["gross"]) for r in october] == [
        (note.number, usd.number, str(note.total)),
        ("total", "", str(note.total)),
    ]
    september = export_build(reseller=reseller, kind="credit-notes", period=period_parse("2026-09"))
    assert (september.rows, september.totals) == ([], {})


def test_payments_and_refunds_of_the_month_add_up_to_what_was_received(books):
    reseller, usd, *_ = books
    table = rows(
        export_csv(export_build(reseller=reseller, kind="payments", period=period_parse("2026-10")))
    )
    assert [(r["type"], r["invoice"], r["reference"], r["amount"]) for r in table] == [
        ("payment", usd.number, "wire 7", "50.00"),
        ("refund", usd.number, "", "-10.00"),
        ("total", "", "", "40.00"),
    ]


def test_the_api_and_the_admin_download_the_same_file(books, client):
    reseller, *_ = books
    _, raw = api_key_create(reseller=reseller, name="accountant")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")

    response = api.get("/api/v1/reseller/exports/invoices.csv?period=2026-09")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="invoices-2026-09.csv"'
    expected = export_csv(
        export_build(reseller=reseller, kind="invoices", period=period_parse("2026-09"))
    )
    assert response.content.decode() == expected

    client.force_login(factories.StaffUserFactory(reseller=reseller))
    admin = client.post(
        f"/admin/accounts/reseller/{reseller.pk}/do/export/",
        {"kind": "invoices", "period": "2026-09"},
    )
    assert admin.content.decode() == expected

    assert api.get("/api/v1/reseller/exports/invoices.csv").status_code == 400
    assert api.get("/api/v1/reseller/exports/invoices.csv?period=2026-13").status_code == 400
    assert api.get("/api/v1/reseller/exports/orders.csv?period=2026-09").status_code == 404
