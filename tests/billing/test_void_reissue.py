"""Void then reissue: a void invoice frees its period, which staff bill again with a new number
(the cycle never does it by itself); what the void invoice billed counts for nothing."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from billing.invoicing.cycle import (
    invoice_create_draft,
    invoice_cycle_run,
    invoices_generate_for_period,
)
from billing.invoicing.issuing import invoice_issue, invoice_reissue, invoices_issue_for_period
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, InvoiceEvent, InvoiceUsage
from billing.payments.services import invoice_mark_paid
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import GIB, PlanFactory, SubscriptionFactory, add_usage
from usage.models import UsageDay

OCT, NOV = dt.date(2026, 10, 1), dt.date(2026, 11, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)
AFTER_NOVEMBER = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)


@pytest.fixture
def october(db, settings, tmp_path):
    """Three customers on 10.00 + 100 GB free + 2.50/GB using 5 GiB a day: 155 GiB in
    October = 147.50 each, issued SH-2026-00001..00003 in customer order."""
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(invoice_prefix="SH")
    plan = PlanFactory(reseller=reseller)
    customers, sub_accounts = [], []
    for _ in range(3):
        customer = factories.CustomerFactory(reseller=reseller)
        SubscriptionFactory(customer=customer, plan=plan)
        sa = factories.SubAccountFactory(customer=customer)
        add_usage(sa, OCT, 31, 5)
        customers.append(customer)
        sub_accounts.append(sa)
    invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    return reseller, customers, sub_accounts


def _numbers(customer) -> list[tuple[str, str]]:
    return list(
        Invoice.objects.filter(customer=customer).order_by("pk").values_list("number", "status")
    )


def test_generate_for_the_named_customer_reissues_a_voided_month_with_the_next_number(october):
    _, customers, _ = october
    third = Invoice.objects.get(number="SH-2026-00003")
    assert third.customer_id == customers[2].pk
    invoice_void(invoice=third, now=AFTER_OCTOBER, reason="wrong plan")
    out, err = StringIO(), StringIO()
    call_command(
        "generate_invoices",
        "--period=2026-10",
        f"--customer={customers[2].pk}",
        "--finalize",
        "--no-progress",
        stdout=out,
        stderr=err,
    )
    assert "1 finalized" in out.getvalue() and err.getvalue() == ""
    issued_year = Invoice.objects.get(customer=customers[2], status="finalized").sequence_year
    assert _numbers(customers[2]) == [
        ("SH-2026-00003", "void"),
        (f"SH-{issued_year}-{4 if issued_year == 2026 else 1:05d}", "finalized"),
    ]
    new = Invoice.objects.get(customer=customers[2], status="finalized")
    assert new.total == Decimal("147.50") and new.period_start == OCT


def test_reissue_re_rates_the_usage_the_void_invoice_billed(october):
    _, customers, sub_accounts = october
    voided = invoice_void(invoice=Invoice.objects.get(customer=customers[0]), now=AFTER_OCTOBER)
    # The usage was wrong: October 31st was 25 GiB, not 5 (+20 GiB x 2.50 = +50.00).
    UsageDay.objects.filter(sub_account=sub_accounts[0], day=dt.date(2026, 10, 31)).update(
        bytes=25 * GIB
    )
    new, created = invoice_reissue(invoice=voided, now=AFTER_OCTOBER, actor="ops")
    assert created
    assert (new.number, new.total, new.status) == ("SH-2026-00004", Decimal("197.50"), "finalized")
    # Both keep their own usage rows: the void invoice's never block the new one.
    assert list(
        InvoiceUsage.objects.filter(sub_account=sub_accounts[0])
        .order_by("invoice_id")
        .values_list("invoice_id", "bytes")
    ) == [(voided.pk, 155 * GIB), (new.pk, 175 * GIB)]
    note = InvoiceEvent.objects.filter(invoice=voided).order_by("pk").last()
    assert (note.to_status, note.note, note.actor) == ("void", "reissued as SH-2026-00004", "ops")


def test_reissuing_again_returns_the_live_invoice_and_takes_no_number(october):
    _, customers, _ = october
    voided = invoice_void(invoice=Invoice.objects.get(customer=customers[1]), now=AFTER_OCTOBER)
    first, created = invoice_reissue(invoice=voided, now=AFTER_OCTOBER)
    again, created_again = invoice_reissue(invoice=voided, now=AFTER_OCTOBER)
    assert (created, created_again) == (True, False) and again.pk == first.pk
    assert sorted(Invoice.objects.values_list("sequence_number", flat=True)) == [1, 2, 3, 4]


def test_only_void_invoices_are_reissued(october):
    _, customers, _ = october
    live = Invoice.objects.get(customer=customers[0])
    with pytest.raises(ApplicationError) as caught:
        invoice_reissue(invoice=live, now=AFTER_OCTOBER)
    assert caught.value.code == "invoice_not_void"
    assert Invoice.objects.count() == 3


def test_a_paid_invoice_cannot_be_voided(october):
    _, customers, _ = october
    paid = invoice_mark_paid(invoice=Invoice.objects.get(customer=customers[0]), now=AFTER_OCTOBER)
    with pytest.raises(ApplicationError) as caught:
        invoice_void(invoice=paid, now=AFTER_OCTOBER)
    assert (caught.value.code, caught.value.extra) == (
        "invalid_transition",
        {"from": "paid", "to": "void"},
    )


def test_the_cycle_and_the_whole_reseller_runs_never_rebill_a_voided_month(october):
    reseller, customers, _ = october
    invoice_void(invoice=Invoice.objects.get(customer=customers[1]), now=AFTER_OCTOBER)
    for hour in range(3):
        result = invoice_cycle_run(reseller=reseller, now=AFTER_OCTOBER + dt.timedelta(hours=hour))
        assert result.generated.voided == [customers[1].pk] and result.failed == []
    generated = invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    issued = invoices_issue_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    assert generated.voided == issued.voided == [customers[1].pk]
    assert generated.created == [] and issued.issued == []
    assert _numbers(customers[1]) == [("SH-2026-00002", "void")]
    out = StringIO()
    call_command("generate_invoices", "--period=2026-10", "--no-progress", stdout=out)
    assert f"customer {customers[1].pk}: 2026-10 was voided" in out.getvalue()
    assert Invoice.objects.count() == 3


def test_a_draft_created_for_the_named_customer_after_a_void_is_a_new_live_invoice(october):
    _, customers, _ = october
    invoice_void(invoice=Invoice.objects.get(customer=customers[0]), now=AFTER_OCTOBER)
    draft, created = invoice_create_draft(
        customer=customers[0], period_start=OCT, now=AFTER_OCTOBER
    )
    assert created and draft.status == "draft" and draft.total == Decimal("147.50")
    again, created_again = invoice_create_draft(
        customer=customers[0], period_start=OCT, now=AFTER_OCTOBER
    )
    assert (again.pk, created_again) == (draft.pk, False)
    issued, created = invoice_issue(customer=customers[0], period_start=OCT, now=AFTER_OCTOBER)
    assert (issued.pk, issued.number, created) == (draft.pk, "SH-2026-00004", True)


def test_late_usage_is_adjusted_against_the_reissued_invoice_never_the_void_one(october):
    _, customers, sub_accounts = october
    customer, sa = customers[0], sub_accounts[0]
    voided = invoice_void(invoice=Invoice.objects.get(customer=customer), now=AFTER_OCTOBER)
    # A void month with no reissue is billed by nothing: no adjustment refers to it.
    november, _ = invoice_create_draft(customer=customer, period_start=NOV, now=AFTER_NOVEMBER)
    assert not november.lines.filter(kind="adjustment").exists()
    november.delete()
    reissued, _ = invoice_reissue(invoice=voided, now=AFTER_OCTOBER)
    UsageDay.objects.filter(sub_account=sa, day=dt.date(2026, 10, 31)).update(bytes=15 * GIB)
    add_usage(sa, NOV, 30, 1)  # 30 GiB: 10.00 in November
    november, _ = invoice_issue(customer=customer, period_start=NOV, now=AFTER_NOVEMBER)
    adjustments = list(november.lines.filter(kind="adjustment"))
    assert [(a.adjusts_invoice_id, a.amount) for a in adjustments] == [
        (reissued.pk, Decimal("25.00"))  # +10 GiB x 2.50, once
    ]
    assert november.total == Decimal("35.00")


def test_an_adjustment_on_a_voided_invoice_is_billed_again_by_its_reissue(october):
    _, customers, sub_accounts = october
    customer, sa = customers[0], sub_accounts[0]
    add_usage(sa, NOV, 30, 1)
    UsageDay.objects.filter(sub_account=sa, day=dt.date(2026, 10, 31)).update(bytes=15 * GIB)
    november, _ = invoice_issue(customer=customer, period_start=NOV, now=AFTER_NOVEMBER)
    assert november.total == Decimal("35.00")  # 10.00 + the October adjustment of 25.00
    invoice_void(invoice=november, now=AFTER_NOVEMBER)
    again, created = invoice_reissue(invoice=november, now=AFTER_NOVEMBER)
    assert created and again.total == Decimal("35.00")
    assert list(again.lines.filter(kind="adjustment").values_list("amount", flat=True)) == [
        Decimal("25.00")
    ]
