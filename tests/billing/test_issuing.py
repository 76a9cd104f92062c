"""Closing a month for many customers at once (`invoices_issue_for_period`): chunks, numbers,
failures kept apart, existing invoices, adjustments, and PDFs rendered in worker processes."""

import datetime as dt
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.core import mail
from pypdf import PdfReader

from billing.invoicing import engine
from billing.invoicing.compute import invoice_preview
from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.delivery import invoice_pdf_render
from billing.invoicing.issuing import invoice_issue, invoices_issue_for_period
from billing.models import Invoice, InvoiceEvent, InvoiceLine
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage, in_thread
from usage.models import UsageDay

OCT = dt.date(2026, 10, 1)
NOV = dt.date(2026, 11, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)
AFTER_NOVEMBER = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)
GIB = 1_073_741_824
# Customer i uses (4 + i) GiB a day in October on 10.00 base, 100 GB free, then 2.50/GB:
# 124, 155, 186, 217, 248 GiB -> 70.00, 147.50, 225.00, 302.50, 380.00.
TOTALS = [
    Decimal("70.00"),
    Decimal("147.50"),
    Decimal("225.00"),
    Decimal("302.50"),
    Decimal("380.00"),
]


@pytest.fixture
def month(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(invoice_prefix="BT", timezone="Asia/Shanghai")
    plan = PlanFactory(reseller=reseller)
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    customers = []
    for i in range(5):
        customer = factories.CustomerFactory(reseller=reseller, name=f"客户 {i}")
        SubscriptionFactory(customer=customer, plan=plan)
        sa = factories.SubAccountFactory(customer=customer, upstream_account=upstream)
        add_usage(sa, OCT, 31, 4 + i)
        customers.append(customer)
    return reseller, customers


def test_chunks_issue_every_customer_with_consecutive_numbers_pdfs_and_emails(
    month, django_capture_on_commit_callbacks
):
    reseller, customers = month
    progress = []
    with django_capture_on_commit_callbacks(execute=True):
        result = invoices_issue_for_period(
            reseller=reseller,
            period_start=OCT,
            now=AFTER_OCTOBER,
            chunk_size=2,
            on_progress=progress.append,
        )
    assert progress == [2, 2, 1]
    invoices = list(Invoice.objects.order_by("customer_id"))
    assert [i.pk for i in result.issued] == [i.pk for i in invoices]
    assert [i.number for i in invoices] == [f"BT-2026-{n:05d}" for n in range(1, 6)]
    assert [i.total for i in invoices] == TOTALS
    assert all(i.status == "finalized" and i.issued_on == dt.date(2026, 11, 3) for i in invoices)
    assert all(i.pdf.name == f"invoices/{reseller.slug}/{i.number}.pdf" for i in invoices)
    with invoices[4].pdf.open("rb") as fh:
        text = PdfReader(io.BytesIO(fh.read())).pages[0].extract_text()
    assert "BT-2026-00005" in text and "380.00" in text and "客户 4" in text
    assert list(
        InvoiceEvent.objects.filter(invoice=invoices[0]).values_list("from_status", "to_status")
    ) == [("", "draft"), ("draft", "finalized")]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in customers)
    assert all(m.attachments[0][1].startswith(b"%PDF") for m in mail.outbox)


def test_the_batch_rates_exactly_like_one_customer_at_a_time(month):
    reseller, customers = month
    previews = [invoice_preview(customer=c, period_start=OCT) for c in customers]
    invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False, chunk_size=3
    )
    for customer, preview in zip(customers, previews, strict=True):
        invoice = Invoice.objects.get(customer=customer)
        stored = list(invoice.lines.order_by("position").values_list("kind", "amount"))
        assert stored == [(line.kind, line.amount) for line in preview.lines]
        assert invoice.total == preview.totals.total


def test_a_customer_that_cannot_be_rated_is_reported_and_the_others_numbered_without_gap(month):
    reseller, customers = month
    euro = PlanFactory(reseller=reseller, currency="EUR")
    SubscriptionFactory(customer=customers[1], plan=euro, starts_on=dt.date(2026, 10, 15))
    result = invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False, chunk_size=10
    )
    assert [(f.customer_id, f.code) for f in result.failed] == [
        (customers[1].pk, "currency_mismatch")
    ]
    assert list(Invoice.objects.order_by("customer_id").values_list("customer_id", "number")) == [
        (customers[0].pk, "BT-2026-00001"),
        (customers[2].pk, "BT-2026-00002"),
        (customers[3].pk, "BT-2026-00003"),
        (customers[4].pk, "BT-2026-00004"),
    ]


def test_existing_drafts_are_finalized_and_issued_invoices_left_alone(month):
    reseller, customers = month
    issued, _ = invoice_issue(
        customer=customers[0], period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    invoices_generate_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, customer=customers[1]
    )
    result = invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    assert [i.pk for i in result.already] == [issued.pk]
    assert len(result.issued) == 4
    assert Invoice.objects.filter(status="finalized").count() == 5
    assert sorted(Invoice.objects.values_list("sequence_number", flat=True)) == [1, 2, 3, 4, 5]
    again = invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    assert (len(again.issued), len(again.already)) == (0, 5)


def test_late_usage_of_many_customers_becomes_their_adjustments_in_the_next_batch(month):
    reseller, customers = month
    invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    # October 31st revised: customer 0 from 4 to 10 GiB (+6 x 2.50 = +15.00), customer 3 from
    # 7 to 1 GiB (-6 x 2.50 = -15.00); the others unchanged.
    for customer, gib in ((customers[0], 10), (customers[3], 1)):
        UsageDay.objects.filter(sub_account__customer=customer, day=dt.date(2026, 10, 31)).update(
            bytes=gib * GIB
        )
    previews = {c.pk: invoice_preview(customer=c, period_start=NOV) for c in customers}
    invoices_issue_for_period(
        reseller=reseller, period_start=NOV, now=AFTER_NOVEMBER, send_email=False, chunk_size=2
    )
    adjustments = dict(
        InvoiceLine.objects.filter(kind="adjustment").values_list("invoice__customer_id", "amount")
    )
    assert adjustments == {customers[0].pk: Decimal("15.00"), customers[3].pk: Decimal("-15.00")}
    for customer in customers:  # the batch and the one-customer path agree
        november = Invoice.objects.get(customer=customer, period_start=NOV)
        assert november.total == previews[customer.pk].totals.total
    assert Invoice.objects.get(customer=customers[0], period_start=NOV).total == Decimal("25.00")


@pytest.mark.slow
def test_pdfs_rendered_in_worker_processes_are_the_bytes_rendered_inline(month, monkeypatch):
    reseller, _ = month
    monkeypatch.setattr(engine, "POOL_MIN_INVOICES", 1)
    result = invoices_issue_for_period(
        reseller=reseller,
        period_start=OCT,
        now=AFTER_OCTOBER,
        send_email=False,
        pdf_processes=2,
        chunk_size=2,
    )
    assert len(result.issued) == 5
    for invoice in Invoice.objects.all():
        with invoice.pdf.open("rb") as fh:
            assert fh.read() == invoice_pdf_render(invoice=invoice)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("other", ["issue", "drafts"])
def test_concurrent_runs_issue_one_invoice_per_customer_with_gapless_numbers(
    other, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(invoice_prefix="PG")
    plan = PlanFactory(reseller=reseller)
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    for _ in range(8):
        customer = factories.CustomerFactory(reseller=reseller)
        SubscriptionFactory(customer=customer, plan=plan)
        sa = factories.SubAccountFactory(customer=customer, upstream_account=upstream)
        add_usage(sa, OCT, 31, 4)
    barrier = threading.Barrier(2)

    def issue():
        return invoices_issue_for_period(
            reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False, chunk_size=3
        )

    def drafts():  # the hourly cycle creating drafts meanwhile
        return invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)

    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(in_thread(barrier, issue)),
            pool.submit(in_thread(barrier, issue if other == "issue" else drafts)),
        ]
        results = [f.result() for f in futures]
    assert Invoice.objects.count() == 8
    assert Invoice.objects.filter(status="finalized").count() == 8
    assert sorted(Invoice.objects.values_list("sequence_number", flat=True)) == list(range(1, 9))
    if other == "issue":
        issued = sorted(i.pk for r in results for i in r.issued)
        assert issued == sorted(Invoice.objects.values_list("pk", flat=True))


def test_pdfs_are_rendered_inline_when_worker_processes_cannot_run(month, monkeypatch):
    """A worker killed, or a process that may not start children (a daemonic pool worker)."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    def broken(*args, **kwargs):
        raise BrokenProcessPool("a worker died")

    reseller, _ = month
    monkeypatch.setattr(engine, "POOL_MIN_INVOICES", 1)
    monkeypatch.setattr(ProcessPoolExecutor, "submit", broken)
    result = invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False, pdf_processes=2
    )
    assert len(result.issued) == 5
    assert all(invoice.pdf for invoice in Invoice.objects.all())
