"""The customer invoice list (`GET /api/v1/invoices/`) is rendered from rows
(`billing.api.invoice_rows`) and reads exactly as each invoice's own detail, which the
serializer renders from the model: amounts due after credit notes and payments, overdue,
paid and void, another
currency's minor unit; pagination counts stay exact; the queries do not grow with the page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from accounts.api_keys import api_key_create
from billing.api.invoice_rows import invoice_rows_plan
from billing.api.serializers import InvoiceOutputSerializer
from billing.credit_notes.services import credit_note_create
from billing.invoicing.voiding import invoice_void
from billing.models import InvoiceStatus
from billing.payments.services import payment_create
from tests import factories
from tests.api.conftest import key_client
from tests.billing.test_credit_notes import make_draft_invoice, make_issued_invoice

NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def customer_api(customer):
    return key_client(api_key_create(reseller=customer.reseller, customer=customer, name="c")[1])


@pytest.fixture
def invoices(customer, settings, tmp_path):
    """Four issued invoices of every kind, and a draft the customer never sees."""
    settings.MEDIA_ROOT = tmp_path
    overdue = make_issued_invoice(customer)  # 180.00, due 15 November
    credit_note_create(invoice=overdue, now=NOW, amount="30.00", reason="")
    payment_create(invoice=overdue, amount="50.00", now=NOW)
    paid = make_issued_invoice(
        customer, period_start=dt.date(2026, 9, 1), status=InvoiceStatus.PAID
    )
    voided = make_issued_invoice(customer, period_start=dt.date(2026, 8, 1), amounts=("12.34",))
    invoice_void(invoice=voided, now=NOW, send_email=False)
    yen = make_issued_invoice(
        customer, period_start=dt.date(2026, 7, 1), amounts=("1500",), currency="JPY"
    )
    make_draft_invoice(customer)
    return [overdue, paid, voided, yen]


@pytest.mark.django_db
def test_each_listed_invoice_reads_exactly_as_its_detail(customer_api, invoices):
    listed = customer_api.get("/api/v1/invoices/").json()
    assert listed["count"] == 4 and listed["next"] is None
    assert [row["id"] for row in listed["results"]] == [invoice.pk for invoice in invoices]
    for row in listed["results"]:
        assert row == customer_api.get(f"/api/v1/invoices/{row['id']}/").json()
    overdue, paid, voided, yen = listed["results"]
    assert (overdue["amount_credited"], overdue["amount_paid"], overdue["balance_due"]) == (
        "30.00",
        "50.00",
        "100.00",
    )
    assert overdue["overdue"] is True and overdue["days_overdue"] > 0
    assert (paid["status"], paid["balance_due"], paid["overdue"]) == ("paid", "0.00", False)
    assert (voided["status"], voided["balance_due"], voided["replaces"]) == ("void", "0.00", None)
    assert (yen["total"], yen["lines"][0]["amount"]) == ("1800", "1500")


@pytest.mark.django_db
def test_pages_filters_and_ordering_keep_exact_counts(customer_api, invoices):
    def get(query):
        return customer_api.get(f"/api/v1/invoices/?{query}").json()

    first = get("limit=2")
    assert (first["count"], len(first["results"])) == (4, 2) and first["next"]
    last = get("limit=3&offset=3")
    assert (last["count"], len(last["results"]), last["next"]) == (4, 1, None)
    beyond = get("limit=2&offset=9")
    assert (beyond["count"], beyond["results"]) == (4, [])
    paid = get("status=paid")
    assert (paid["count"], [row["status"] for row in paid["results"]]) == (1, ["paid"])
    newest = get("ordering=-period_start&limit=1")
    assert newest["results"][0]["period_start"] == "2026-10-01"
    assert get("period=2030-01") == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.django_db
def test_the_list_reads_the_same_number_of_queries_for_one_invoice_or_four(
    customer, customer_api, invoices
):
    def queries(api):
        api.get("/api/v1/invoices/")  # the key's last use is written once, not each time
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/api/v1/invoices/").status_code == 200
        return len(captured)

    other = factories.CustomerFactory(reseller=customer.reseller)
    make_issued_invoice(other)
    one = key_client(api_key_create(reseller=other.reseller, customer=other, name="o")[1])
    assert queries(one) == queries(customer_api) <= 4  # key, page, lines (+ savepoints none)


def test_a_field_without_a_row_based_value_is_refused_by_name():
    class WithExtra(InvoiceOutputSerializer):
        extra = serializers.SerializerMethodField()

        class Meta(InvoiceOutputSerializer.Meta):
            fields = [*InvoiceOutputSerializer.Meta.fields, "extra"]

        def get_extra(self, obj) -> int:
            return 1

    with pytest.raises(ImproperlyConfigured, match=r"WithExtra\.extra"):
        invoice_rows_plan(WithExtra)
