"""Issue 15.7: credit notes never credit more net or more tax than was invoiced.

Each 0.01 credit of a 0.05 + 100 % tax invoice used to be split on its own (0.01 net, 0.00
tax), so ten of them credited 0.10 net and 0.00 tax against 0.05 / 0.05 invoiced. The split
is now cumulative over the invoice's notes (`billing.credit_notes.amounts`), and line
credits are held to each line's net and tax as well as to the invoice's.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.credit_notes.amounts import NetTax
from billing.credit_notes.selectors import invoice_credited
from billing.credit_notes.services import credit_note_create
from core.errors import ApplicationError
from tests.billing.test_credit_notes import make_issued_invoice

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 10, 9, 30, tzinfo=dt.UTC)
D = Decimal


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _credit(invoice, **kwargs):
    return credit_note_create(invoice=invoice, now=NOW, send_email=False, **kwargs)


def _refused(invoice, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as exc:
        _credit(invoice, **kwargs)
    return exc.value


def test_ten_credits_of_a_cent_credit_the_invoiced_net_and_tax_exactly(customer):
    invoice = make_issued_invoice(customer, amounts=("0.05",), tax_rate="100")
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("0.05"), D("0.05"), D("0.10"))
    splits = []
    for _ in range(10):
        note = _credit(invoice, amount="0.01")
        assert note.total == note.subtotal + note.tax == D("0.01")
        splits.append((note.subtotal, note.tax))
        credited = invoice_credited(invoice=invoice).overall
        assert credited.net <= D("0.05") and credited.tax <= D("0.05")
    # the running totals follow the invoice's 1:1 ratio, rounding half up on the way
    assert splits == [(D("0.01"), D("0.00")), (D("0.00"), D("0.01"))] * 5
    assert invoice_credited(invoice=invoice).overall == NetTax(D("0.05"), D("0.05"))
    refused = _refused(invoice, amount="0.01")
    assert (refused.code, refused.extra) == (
        "credit_exceeds_invoice",
        {"remaining": "0.00", "requested": "0.01"},
    )


def test_the_credit_that_takes_the_rest_takes_exactly_the_uncredited_net_and_tax(customer):
    invoice = make_issued_invoice(customer, amounts=("0.05",), tax_rate="100")
    _credit(invoice, amount="0.01")  # 0.01 + 0.00
    _credit(invoice, amount="0.03")  # cumulative 0.04: 0.02 net in all -> 0.01 + 0.02
    rest = _credit(invoice, amount="0.06")
    assert (rest.subtotal, rest.tax) == (D("0.03"), D("0.03"))
    assert invoice_credited(invoice=invoice).overall == NetTax(D("0.05"), D("0.05"))


def test_line_credits_stay_within_each_lines_net_and_tax(customer):
    # 0.03 at 50 %: the line's tax is round(0.015) = 0.02; the other line keeps the invoice open
    invoice = make_issued_invoice(customer, amounts=("0.03", "1.00"), tax_rate="50")
    small, _big = invoice.lines.order_by("position")
    taxes = [_credit(invoice, lines=[{"line": small.pk, "amount": "0.01"}]).tax for _ in range(3)]
    assert taxes == [D("0.01"), D("0.00"), D("0.01")]  # round(0.005), round(0.010), round(0.015)
    assert invoice_credited(invoice=invoice).lines[small.pk] == NetTax(D("0.03"), D("0.02"))
    refused = _refused(invoice, lines=[{"line": small.pk, "amount": "0.01"}])
    assert (refused.code, refused.extra["line"], refused.extra["remaining"]) == (
        "credit_exceeds_line",
        small.pk,
        "0.00",
    )


def test_line_credits_never_take_more_tax_than_the_invoice_has(customer):
    # three lines of 0.01 at 50 %: each line's tax rounds to 0.01, the invoice's (on 0.03) to 0.02
    invoice = make_issued_invoice(customer, amounts=("0.01", "0.01", "0.01"), tax_rate="50")
    assert invoice.tax == D("0.02")
    taxes = [
        _credit(invoice, lines=[{"line": line.pk, "amount": "0.01"}]).tax
        for line in invoice.lines.order_by("position")
    ]
    assert taxes == [D("0.01"), D("0.01"), D("0.00")]
    assert invoice_credited(invoice=invoice).overall == NetTax(D("0.03"), D("0.02"))


def test_line_credits_never_take_more_net_than_the_invoice_subtotal(customer):
    # an adjustment line lowers the subtotal below the first line: 100.00 - 30.00 = 70.00
    invoice = make_issued_invoice(customer, amounts=("100.00", "-30.00"), tax_rate="20")
    first, adjustment = invoice.lines.order_by("position")
    refused = _refused(invoice, lines=[{"line": first.pk, "amount": "80.00"}])
    assert refused.code == "credit_exceeds_invoice"
    assert (refused.extra["remaining_subtotal"], refused.extra["requested_subtotal"]) == (
        "70.00",
        "80.00",
    )
    assert _refused(invoice, lines=[{"line": adjustment.pk, "amount": "1.00"}]).code == (
        "credit_exceeds_line"
    )
    note = _credit(invoice, lines=[{"line": first.pk, "amount": "70.00"}])
    assert (note.subtotal, note.tax) == (D("70.00"), D("14.00"))
    assert invoice_credited(invoice=invoice).overall == NetTax(invoice.subtotal, invoice.tax)
