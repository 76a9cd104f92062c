"""The cycle on SQLite: drafts, rating, finalization, numbering, immutability, grace."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.invoicing.compute import invoice_preview
from billing.invoicing.cycle import (
    invoice_create_draft,
    invoice_cycle_run,
    invoice_refresh_draft,
    invoices_generate_for_period,
)
from billing.invoicing.finalizing import invoice_finalize, invoices_finalize_due
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, InvoiceEvent, InvoiceLine, InvoiceSequence, InvoiceUsage
from billing.payments.services import invoice_mark_paid
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import UsageDay

OCT = dt.date(2026, 10, 1)
NOV = dt.date(2026, 11, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)


@pytest.fixture
def billed(reseller, customer, sub_account):
    """10.00 base + 0-100 GB free + 2.50/GB; 5 GiB a day all October = 155 GiB."""
    customer.tax_rate = Decimal("20")
    customer.save()
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    add_usage(sub_account, OCT, 31, 5)
    return customer


def test_draft_rates_october_usage_with_tax(billed, sub_account):
    invoice, created = invoice_create_draft(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    assert created
    assert invoice.status == "draft" and invoice.number is None
    lines = list(invoice.lines.order_by("position"))
    assert [(ln.kind, ln.amount) for ln in lines] == [
        ("base_fee", Decimal("10.00")),
        ("usage", Decimal("0.00")),
        ("usage", Decimal("137.50")),
    ]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("147.50"),
        Decimal("29.50"),
        Decimal("177.00"),
    )
    usage = InvoiceUsage.objects.get(invoice=invoice)
    assert (usage.sub_account_id, usage.bytes) == (sub_account.pk, 155 * 1_073_741_824)


def test_creating_the_draft_twice_yields_one_invoice(billed):
    first, created_first = invoice_create_draft(
        customer=billed, period_start=OCT, now=AFTER_OCTOBER
    )
    second, created_second = invoice_create_draft(
        customer=billed, period_start=OCT, now=AFTER_OCTOBER
    )
    assert (created_first, created_second) == (True, False)
    assert first.pk == second.pk
    assert Invoice.objects.count() == 1


def test_an_unfinished_period_cannot_be_drafted_but_can_be_previewed(billed):
    with pytest.raises(ApplicationError) as exc:
        invoice_create_draft(
            customer=billed, period_start=OCT, now=dt.datetime(2026, 10, 20, tzinfo=dt.UTC)
        )
    assert exc.value.code == "period_not_ended"
    preview = invoice_preview(customer=billed, period_start=OCT)
    assert preview.totals.total == Decimal("177.00")
    assert Invoice.objects.count() == 0


def test_refresh_rewrites_lines_from_current_usage(billed, sub_account):
    invoice, _ = invoice_create_draft(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    UsageDay.objects.filter(sub_account=sub_account, day=dt.date(2026, 10, 31)).update(
        bytes=15 * 1_073_741_824
    )
    invoice = invoice_refresh_draft(invoice=invoice, now=AFTER_OCTOBER)
    assert invoice.subtotal == Decimal("172.50")  # 165 GiB: 10 + 65 x 2.50
    assert invoice.lines.count() == 3


def test_generate_covers_customers_with_subscription_or_usage_only(reseller, billed):
    plan = PlanFactory(reseller=reseller)
    ended = factories.CustomerFactory(reseller=reseller)
    SubscriptionFactory(customer=ended, plan=plan, ends_on=dt.date(2026, 10, 16))
    factories.CustomerFactory(reseller=reseller)  # nothing in October: no invoice
    result = invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    assert len(result.created) == 2
    prorated = Invoice.objects.get(customer=ended)
    # 15 of 31 days of a 10.00 base fee = 4.838... -> 4.84; no usage.
    assert prorated.lines.get(kind="base_fee").amount == Decimal("4.84")
    an_hour_later = AFTER_OCTOBER + dt.timedelta(hours=1)
    again = invoices_generate_for_period(reseller=reseller, period_start=OCT, now=an_hour_later)
    assert again.created == [] and len(again.refreshed) == 2


def test_finalize_assigns_next_number_per_reseller_and_year(reseller, billed):
    other = factories.CustomerFactory(reseller=reseller)
    SubscriptionFactory(customer=other, plan=PlanFactory(reseller=reseller))
    invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    numbers = [
        invoice_finalize(invoice=inv, now=AFTER_OCTOBER, send_email=False).number
        for inv in Invoice.objects.order_by("pk")
    ]
    prefix = reseller.invoice_prefix
    assert numbers == [f"{prefix}-2026-00001", f"{prefix}-2026-00002"]
    assert InvoiceSequence.objects.get(reseller=reseller, year=2026).last_number == 2


def test_finalize_freezes_snapshot_dates_and_writes_an_event(reseller, billed):
    reseller.payment_terms_days = 10
    reseller.save()
    invoice, _ = invoice_create_draft(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    invoice = invoice_finalize(invoice=invoice, now=AFTER_OCTOBER, send_email=False)
    assert invoice.status == "finalized"
    assert (invoice.issued_on, invoice.due_on) == (dt.date(2026, 11, 3), dt.date(2026, 11, 13))
    assert invoice.snapshot["buyer"]["name"] == billed.name
    assert invoice.snapshot["seller"]["name"] == reseller.name
    billed.name = "Renamed Ltd"
    billed.save()
    invoice.refresh_from_db()
    assert invoice.snapshot["buyer"]["name"] != "Renamed Ltd"
    assert list(
        InvoiceEvent.objects.filter(invoice=invoice).values_list("to_status", flat=True)
    ) == [
        "draft",
        "finalized",
    ]
    with pytest.raises(ApplicationError) as exc:
        invoice_finalize(invoice=invoice, now=AFTER_OCTOBER)
    assert exc.value.code == "invoice_not_draft"


def test_finalized_invoice_refuses_changes_in_the_model_layer(billed):
    invoice, _ = invoice_create_draft(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    invoice = invoice_finalize(invoice=invoice, now=AFTER_OCTOBER, send_email=False)
    invoice.total = Decimal("1.00")
    with pytest.raises(ApplicationError) as exc:
        invoice.save()
    assert exc.value.code == "invoice_immutable"
    invoice.refresh_from_db()
    with pytest.raises(ApplicationError):
        invoice.delete()
    with pytest.raises(ApplicationError):
        Invoice.objects.filter(pk=invoice.pk).update(total=Decimal("1.00"))
    with pytest.raises(ApplicationError):
        Invoice.objects.filter(pk=invoice.pk).delete()
    line = invoice.lines.first()
    line.amount = Decimal("0.01")
    with pytest.raises(ApplicationError):
        line.save()
    with pytest.raises(ApplicationError):
        line.delete()
    with pytest.raises(ApplicationError):
        InvoiceLine.objects.filter(invoice=invoice).update(amount=0)
    with pytest.raises(ApplicationError):
        InvoiceUsage.objects.filter(invoice=invoice).delete()
    with pytest.raises(ApplicationError):
        InvoiceLine.objects.bulk_create(
            [InvoiceLine(invoice=invoice, position=99, kind="usage", description="x", amount=1)]
        )
    invoice.refresh_from_db()
    assert invoice.total == Decimal("177.00")


def test_transitions_follow_the_table_and_log_events(billed):
    invoice, _ = invoice_create_draft(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    with pytest.raises(ApplicationError) as exc:
        invoice_mark_paid(invoice=invoice, now=AFTER_OCTOBER)
    assert exc.value.code == "invalid_transition"
    invoice = invoice_finalize(invoice=invoice, now=AFTER_OCTOBER, send_email=False)
    paid = invoice_mark_paid(invoice=invoice, now=AFTER_OCTOBER, actor="alice", note="wire")
    assert paid.status == "paid" and paid.paid_at == AFTER_OCTOBER
    with pytest.raises(ApplicationError) as exc:
        invoice_void(invoice=paid, now=AFTER_OCTOBER)
    assert exc.value.code == "invalid_transition"
    event = InvoiceEvent.objects.filter(invoice=invoice).last()
    assert (event.from_status, event.to_status, event.actor) == ("finalized", "paid", "alice")


def test_void_keeps_the_number(billed):
    invoice, _ = invoice_create_draft(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    number = invoice_finalize(invoice=invoice, now=AFTER_OCTOBER, send_email=False).number
    voided = invoice_void(invoice=invoice, now=AFTER_OCTOBER, reason="duplicate")
    voided.refresh_from_db()
    assert (voided.status, voided.number) == ("void", number)


def test_status_cannot_be_set_by_save_outside_the_table(billed):
    invoice, _ = invoice_create_draft(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    invoice.status = "paid"
    with pytest.raises(ApplicationError) as exc:
        invoice.save()
    assert exc.value.code == "invalid_transition"


def test_drafts_are_finalized_only_after_the_grace_period(reseller, billed):
    reseller.timezone = "America/New_York"
    reseller.grace_period_days = 2
    reseller.save()
    billed.reseller = reseller
    invoice, _ = invoice_create_draft(
        customer=billed, period_start=OCT, now=dt.datetime(2026, 11, 1, 5, tzinfo=dt.UTC)
    )
    # Grace ends at 2026-11-03 00:00 New York = 05:00Z (EST).
    early = invoices_finalize_due(now=dt.datetime(2026, 11, 3, 4, 59, tzinfo=dt.UTC))
    assert early.finalized == []
    due = invoices_finalize_due(
        now=dt.datetime(2026, 11, 3, 5, tzinfo=dt.UTC), reseller=reseller, send_email=False
    )
    assert due.finalized == [invoice.pk]


def test_cycle_run_creates_then_finalizes_after_grace(reseller, billed, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    first = invoice_cycle_run(reseller=reseller, now=dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC))
    assert len(first.generated.created) == 1 and first.finalized.finalized == []
    later = invoice_cycle_run(reseller=reseller, now=dt.datetime(2026, 11, 3, 1, tzinfo=dt.UTC))
    assert later.finalized.finalized == first.generated.created
    invoice = Invoice.objects.get()
    assert invoice.status == "finalized"
    assert invoice.pdf.name.endswith(f"{invoice.number}.pdf")


def test_subscription_scope_limits_usage_to_its_upstream_account(reseller, customer, sub_account):
    other_upstream = factories.UpstreamAccountFactory(reseller=reseller)
    other_sa = factories.SubAccountFactory(customer=customer, upstream_account=other_upstream)
    SubscriptionFactory(
        customer=customer,
        plan=PlanFactory(reseller=reseller, base_fee=Decimal("0")),
        upstream_account=other_upstream,
    )
    add_usage(sub_account, OCT, 31, 10)  # not in scope: shown, not billed
    add_usage(other_sa, OCT, 1, 120)
    invoice, _ = invoice_create_draft(customer=customer, period_start=OCT, now=AFTER_OCTOBER)
    assert invoice.subtotal == Decimal("50.00")  # 20 x 2.50
    rows = {u.sub_account_id: (u.subscription_id, u.bytes) for u in invoice.usage.all()}
    assert rows[sub_account.pk][0] is None
    assert rows[other_sa.pk][1] == 120 * 1_073_741_824


def test_stored_pdf_equals_a_re_render_from_the_frozen_rows(billed, settings, tmp_path):
    from billing.invoicing.delivery import invoice_pdf_render

    settings.MEDIA_ROOT = tmp_path
    invoice, _ = invoice_create_draft(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    invoice = invoice_finalize(invoice=invoice, now=AFTER_OCTOBER, send_email=False)
    with invoice.pdf.open("rb") as fh:
        stored = fh.read()
    billed.name = "Renamed Later GmbH"
    billed.save()
    assert invoice_pdf_render(invoice=Invoice.objects.get(pk=invoice.pk)) == stored


def test_issue_creates_and_finalizes_in_one_step_once(billed):
    from billing.invoicing.issuing import invoice_issue

    invoice, done = invoice_issue(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    assert done and invoice.status == "finalized" and invoice.total == Decimal("177.00")
    assert list(invoice.events.values_list("to_status", flat=True)) == ["draft", "finalized"]
    again, done_again = invoice_issue(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    assert (again.pk, done_again) == (invoice.pk, False)


def test_issue_finalizes_an_existing_draft(billed):
    from billing.invoicing.issuing import invoice_issue

    draft, _ = invoice_create_draft(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    invoice, done = invoice_issue(customer=billed, period_start=OCT, now=AFTER_OCTOBER)
    assert (invoice.pk, invoice.status, done) == (draft.pk, "finalized", True)
