"""Late usage of an issued month lands once, on the next invoice, as a charge or a credit."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.invoicing.compute import invoice_preview
from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.voiding import invoice_void
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import UsageDay

GIB = 1_073_741_824
OCT, NOV, DEC = dt.date(2026, 10, 1), dt.date(2026, 11, 1), dt.date(2026, 12, 1)
AFTER_OCT = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)
AFTER_NOV = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
AFTER_DEC = dt.datetime(2027, 1, 3, tzinfo=dt.UTC)


def _issue(customer, period_start, now):
    invoice, _ = invoice_create_draft(customer=customer, period_start=period_start, now=now)
    return invoice_finalize(invoice=invoice, now=now, send_email=False)


def _set_oct_31(sub_account, gib):
    UsageDay.objects.filter(sub_account=sub_account, day=dt.date(2026, 10, 31)).update(
        bytes=gib * GIB
    )


@pytest.fixture
def october(reseller, customer, sub_account):
    """October billed at 155 GiB: 10.00 base + 55 x 2.50 = 147.50."""
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    add_usage(sub_account, OCT, 31, 5)
    invoice = _issue(customer, OCT, AFTER_OCT)
    assert invoice.subtotal == Decimal("147.50")
    return invoice


def _adjustments(invoice):
    return [(ln.adjusts_invoice_id, ln.amount) for ln in invoice.lines.filter(kind="adjustment")]


def test_no_change_no_adjustment(october, customer):
    november, _ = invoice_create_draft(customer=customer, period_start=NOV, now=AFTER_NOV)
    assert _adjustments(november) == []
    assert november.subtotal == Decimal("10.00")


def test_late_usage_is_charged_once_on_the_next_invoice(october, customer, sub_account):
    _set_oct_31(sub_account, 20)  # October now 170 GiB: 70 x 2.50 = 175.00, billed 137.50
    preview = invoice_preview(customer=customer, period_start=NOV)
    assert [ln.amount for ln in preview.lines if ln.kind == "adjustment"] == [Decimal("37.50")]
    november = _issue(customer, NOV, AFTER_NOV)
    assert _adjustments(november) == [(october.pk, Decimal("37.50"))]
    assert november.subtotal == Decimal("47.50")
    line = november.lines.get(kind="adjustment")
    assert line.details["usage_bytes_billed"] == 155 * GIB
    assert line.details["usage_bytes"] == 170 * GIB
    december, _ = invoice_create_draft(customer=customer, period_start=DEC, now=AFTER_DEC)
    assert _adjustments(december) == []  # not billed twice


def test_usage_revised_down_gives_a_credit(october, customer, sub_account):
    _set_oct_31(sub_account, 20)
    _issue(customer, NOV, AFTER_NOV)  # +37.50 billed
    _set_oct_31(sub_account, 10)  # October now 160 GiB: 150.00; billed 175.00
    december, _ = invoice_create_draft(customer=customer, period_start=DEC, now=AFTER_DEC)
    assert _adjustments(december) == [(october.pk, Decimal("-25.00"))]
    assert december.subtotal == Decimal("-15.00")


def test_an_adjustment_on_a_voided_invoice_does_not_count_as_billed(october, customer, sub_account):
    _set_oct_31(sub_account, 20)
    november = _issue(customer, NOV, AFTER_NOV)
    invoice_void(invoice=november, now=AFTER_NOV)
    december, _ = invoice_create_draft(customer=customer, period_start=DEC, now=AFTER_DEC)
    assert _adjustments(december) == [(october.pk, Decimal("37.50"))]


def test_drafts_do_not_count_as_billed(october, customer, sub_account):
    _set_oct_31(sub_account, 20)
    invoice_create_draft(customer=customer, period_start=NOV, now=AFTER_NOV)  # draft shows it
    december, _ = invoice_create_draft(customer=customer, period_start=DEC, now=AFTER_DEC)
    assert _adjustments(december) == [(october.pk, Decimal("37.50"))]


def test_change_inside_the_free_tier_adds_no_line(reseller, customer, sub_account):
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    add_usage(sub_account, OCT, 31, 1)  # 31 GiB, inside the free 100
    _issue(customer, OCT, AFTER_OCT)
    _set_oct_31(sub_account, 30)  # 60 GiB, still free
    november, _ = invoice_create_draft(customer=customer, period_start=NOV, now=AFTER_NOV)
    assert _adjustments(november) == []


def test_adjustment_rerates_with_the_prices_frozen_on_the_old_invoice(
    october, customer, sub_account
):
    tier = october.lines.first().subscription.plan.tiers.get(position=2)
    tier.unit_price = Decimal("9.00")
    tier.save()
    _set_oct_31(sub_account, 20)
    november, _ = invoice_create_draft(customer=customer, period_start=NOV, now=AFTER_NOV)
    assert _adjustments(november) == [(october.pk, Decimal("37.50"))]
