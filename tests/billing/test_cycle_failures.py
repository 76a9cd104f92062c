"""One bad customer is reported and skipped, the others are billed: in the month issuing (and
its chunk falling back to one customer at a time), the finalization of due drafts, draft
creation, the hourly cycle, PDF rendering and the management commands' summaries."""

import datetime as dt
import logging
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.invoicing import cycle as cycle_module
from billing.invoicing import engine, pdf_pool
from billing.invoicing.cycle import invoice_cycle_run, invoices_generate_for_period
from billing.invoicing.finalizing import invoices_finalize_due
from billing.invoicing.issuing import invoices_issue_for_period
from billing.models import Invoice, Plan
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

OCT = dt.date(2026, 10, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)  # in grace (2 days, UTC)
OCTOBER_DUE = dt.datetime(2026, 11, 3, 0, 30, tzinfo=dt.UTC)


@pytest.fixture
def five(db, settings, tmp_path):
    """Five customers; customer i uses (4 + i) GiB a day in October on 10.00 + 100 GB free +
    2.50/GB: 124..248 GiB -> 70.00, 147.50, 225.00, 302.50, 380.00."""
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(invoice_prefix="FX")
    plan = PlanFactory(reseller=reseller)
    customers = []
    for i in range(5):
        customer = factories.CustomerFactory(reseller=reseller)
        SubscriptionFactory(customer=customer, plan=plan)
        add_usage(factories.SubAccountFactory(customer=customer), OCT, 31, 4 + i)
        customers.append(customer)
    return reseller, customers


def _make_bad(customer) -> None:
    """The customer's plan is priced in EUR while the customer pays USD (set past the
    validation, as a data fix gone wrong would)."""
    plan = PlanFactory(reseller=customer.reseller)
    Plan.objects.filter(pk=plan.pk).update(currency="EUR")
    customer.subscriptions.update(plan=plan)


def _break_snapshot(monkeypatch, bad, message: str) -> None:
    """Freezing the customer's details fails unexpectedly (not a rating error)."""
    real = engine.invoice_snapshot

    def snapshot(*, customer, **kwargs):
        if customer.pk == bad.pk:
            raise RuntimeError(message)
        return real(customer=customer, **kwargs)

    monkeypatch.setattr(engine, "invoice_snapshot", snapshot)


def _issued(reseller) -> list[tuple[int, str, Decimal]]:
    return list(
        Invoice.objects.filter(reseller=reseller, status="finalized")
        .order_by("sequence_number")
        .values_list("customer_id", "number", "total")
    )


def _expected(customers, skip: int) -> list[tuple[int, str, Decimal]]:
    totals = ["70.00", "147.50", "225.00", "302.50", "380.00"]
    pairs = zip(customers, totals, strict=True)
    kept = [(c.pk, Decimal(t)) for i, (c, t) in enumerate(pairs) if i != skip]
    return [(pk, f"FX-2026-{n:05d}", total) for n, (pk, total) in enumerate(kept, start=1)]


def test_issuing_skips_a_customer_with_a_plan_in_another_currency(five, caplog):
    reseller, customers = five
    _make_bad(customers[2])
    with caplog.at_level(logging.WARNING):
        result = invoices_issue_for_period(
            reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
        )
    assert [(f.customer_id, f.code) for f in result.failed] == [
        (customers[2].pk, "currency_mismatch")
    ]
    assert _issued(reseller) == _expected(customers, skip=2)  # gapless, in customer order
    assert f"customer {customers[2].pk} not billed" in caplog.text and "currency_mismatch" in (
        caplog.text
    )


def test_a_chunk_that_breaks_is_issued_one_customer_at_a_time(five, monkeypatch):
    """Something unexpected (not a rating error) for one customer rolls its chunk back; the
    chunk is issued again one customer at a time, so only that customer is skipped."""
    reseller, customers = five
    _break_snapshot(monkeypatch, customers[1], "disk full")
    result = invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False, chunk_size=3
    )
    assert [(f.customer_id, f.code) for f in result.failed] == [(customers[1].pk, "internal_error")]
    assert "disk full" in result.error_for(customer_id=customers[1].pk).message
    assert _issued(reseller) == _expected(customers, skip=1)
    assert not Invoice.objects.filter(customer=customers[1]).exists()


def test_due_drafts_of_good_customers_are_finalized_when_one_breaks(five, monkeypatch):
    reseller, customers = five
    invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    bad = Invoice.objects.get(customer=customers[3])
    _break_snapshot(monkeypatch, customers[3], "broken address")
    result = invoices_finalize_due(reseller=reseller, now=OCTOBER_DUE, send_email=False)
    assert [(f.customer_id, f.invoice_id, f.code) for f in result.failed] == [
        (customers[3].pk, bad.pk, "internal_error")
    ]
    assert _issued(reseller) == _expected(customers, skip=3)
    bad.refresh_from_db()
    assert (bad.status, bad.number, bad.total) == ("draft", None, Decimal("302.50"))


def test_draft_creation_reports_the_bad_customer_and_creates_the_others(five):
    reseller, customers = five
    _make_bad(customers[0])
    result = invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    assert [(f.customer_id, f.code) for f in result.failed] == [
        (customers[0].pk, "currency_mismatch")
    ]
    assert len(result.created) == 4
    assert sorted(Invoice.objects.values_list("customer_id", flat=True)) == [
        c.pk for c in customers[1:]
    ]


@pytest.mark.slow
def test_the_hourly_cycle_reports_the_bad_customer_and_bills_the_others(five, monkeypatch):
    reseller, customers = five
    invoice_cycle_run(reseller=reseller, now=AFTER_OCTOBER)  # five drafts
    _make_bad(customers[4])
    real = cycle_module.invoice_refresh_or_discard
    refreshed_bad = []

    def refresh(*, invoice, now):
        if invoice.customer_id == customers[4].pk:
            refreshed_bad.append(invoice.pk)
        return real(invoice=invoice, now=now)

    monkeypatch.setattr(cycle_module, "invoice_refresh_or_discard", refresh)
    result = invoice_cycle_run(reseller=reseller, now=OCTOBER_DUE)
    codes = sorted({(f.customer_id, f.code) for f in result.failed})
    assert codes == [(customers[4].pk, "currency_mismatch")]
    assert refreshed_bad  # the generate step tried it, and reported it instead of stopping
    assert _issued(reseller) == _expected(customers, skip=4)
    assert Invoice.objects.get(customer=customers[4]).status == "draft"


def test_a_pdf_that_fails_leaves_the_invoice_issued_and_the_cycle_renders_it(five, monkeypatch):
    reseller, _ = five
    real = pdf_pool.render_invoice_pdf

    def render(doc):
        if doc.number == "FX-2026-00002":
            raise ValueError("bad glyph")
        return real(doc)

    monkeypatch.setattr(pdf_pool, "render_invoice_pdf", render)
    result = invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    assert len(result.issued) == 5 and result.failed == []
    without = list(Invoice.objects.filter(pdf="").values_list("number", flat=True))
    assert without == ["FX-2026-00002"]
    monkeypatch.setattr(pdf_pool, "render_invoice_pdf", real)
    rendered = invoice_cycle_run(reseller=reseller, now=OCTOBER_DUE).pdfs_rendered
    assert rendered == [Invoice.objects.get(number="FX-2026-00002").pk]


def test_generate_invoices_lists_the_failure_and_exits_non_zero(five):
    reseller, customers = five
    _make_bad(customers[2])
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 customer"):
        call_command(
            "generate_invoices",
            "--period=2026-10",
            f"--reseller={reseller.slug}",
            "--finalize",
            "--no-progress",
            stdout=out,
            stderr=err,
        )
    assert f"customer {customers[2].pk}: currency_mismatch" in err.getvalue()
    assert "4 finalized" in out.getvalue() and "1 failed" in out.getvalue()
    assert len(_issued(reseller)) == 4


def test_finalize_due_invoices_lists_the_failure_and_exits_non_zero(five):
    reseller, customers = five
    invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    _make_bad(customers[1])
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 draft"):
        call_command("finalize_due_invoices", f"--reseller={reseller.slug}", stdout=out, stderr=err)
    bad = Invoice.objects.get(customer=customers[1])
    assert f"invoice {bad.pk} (customer {customers[1].pk}): currency_mismatch" in err.getvalue()
    assert "4 finalized" in out.getvalue()
    assert [number for _, number, _ in _issued(reseller)] == [
        f"FX-2026-{n:05d}" for n in range(1, 5)
    ]


def test_a_soft_time_limit_stops_the_batch_instead_of_failing_one_customer(five, monkeypatch):
    """Celery's soft limit raises inside whatever customer is being billed: the batch stops
    (the task ends; the next cycle resumes), it is not recorded as that customer's failure."""
    from celery.exceptions import SoftTimeLimitExceeded

    reseller, customers = five
    real = cycle_module.invoice_create_draft
    seen = []

    def create(*, customer, **kwargs):
        seen.append(customer.pk)
        if customer.pk == customers[1].pk:
            raise SoftTimeLimitExceeded()
        return real(customer=customer, **kwargs)

    monkeypatch.setattr(cycle_module, "invoice_create_draft", create)
    with pytest.raises(SoftTimeLimitExceeded):
        invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    assert seen == [customers[0].pk, customers[1].pk]  # the other three were not tried
    assert Invoice.objects.count() == 1
