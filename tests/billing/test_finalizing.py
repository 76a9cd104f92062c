"""Finalizing the drafts due after the grace period in chunks (`invoices_finalize`)."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.core import mail

from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.finalizing import invoice_finalize, invoices_finalize, invoices_finalize_due
from billing.models import Invoice, InvoiceEvent, InvoiceLine
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage, in_thread
from usage.models import UsageDay

GIB = 1_073_741_824
SEP, OCT = dt.date(2026, 9, 1), dt.date(2026, 10, 1)
AFTER_SEPTEMBER = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
AFTER_OCTOBER = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
OCTOBER_DUE = dt.datetime(2026, 11, 3, 0, 30, tzinfo=dt.UTC)  # UTC reseller, 2 days of grace


@pytest.fixture
def drafts(db, settings, tmp_path):
    """Four customers on 10.00 + 100 GB free + 2.50/GB; customer i uses (4 + i) GiB a day:
    October 124, 155, 186, 217 GiB -> 70.00, 147.50, 225.00, 302.50 (tax 0)."""
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(invoice_prefix="FD")
    plan = PlanFactory(reseller=reseller)
    customers, subs = [], []
    for i in range(4):
        customer = factories.CustomerFactory(reseller=reseller)
        SubscriptionFactory(customer=customer, plan=plan)
        sa = factories.SubAccountFactory(customer=customer)
        add_usage(sa, OCT, 31, 4 + i)
        customers.append(customer)
        subs.append(sa)
    invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    return reseller, customers, subs


def test_due_drafts_are_finalized_in_chunks_with_consecutive_numbers_pdfs_and_emails(
    drafts, django_capture_on_commit_callbacks
):
    reseller, _, _ = drafts
    with django_capture_on_commit_callbacks(execute=True):
        result = invoices_finalize_due(reseller=reseller, now=OCTOBER_DUE)
    invoices = list(Invoice.objects.order_by("customer_id"))
    assert sorted(result.finalized) == [i.pk for i in invoices] and result.failed == []
    assert [(i.number, i.total) for i in invoices] == [
        ("FD-2026-00001", Decimal("70.00")),
        ("FD-2026-00002", Decimal("147.50")),
        ("FD-2026-00003", Decimal("225.00")),
        ("FD-2026-00004", Decimal("302.50")),
    ]
    assert all(i.status == "finalized" and i.pdf for i in invoices)
    assert InvoiceEvent.objects.filter(to_status="finalized").count() == 4
    assert len(mail.outbox) == 4


def test_late_changes_are_rated_at_finalization_and_unchanged_drafts_keep_their_rows(drafts):
    _, customers, subs = drafts
    kept = set(InvoiceLine.objects.filter(invoice__customer=customers[0]).values_list("pk"))
    # Customer 1's October 31st grows from 5 to 9 GiB after its draft: +4 x 2.50.
    UsageDay.objects.filter(sub_account=subs[1], day=dt.date(2026, 10, 31)).update(bytes=9 * GIB)
    invoices = list(Invoice.objects.order_by("customer_id"))
    result = invoices_finalize(invoices=invoices, now=OCTOBER_DUE, send_email=False, chunk_size=3)
    assert len(result.finalized) == 4
    assert Invoice.objects.get(customer=customers[1]).total == Decimal("157.50")
    assert set(InvoiceLine.objects.filter(invoice__customer=customers[0]).values_list("pk")) == kept


def test_a_draft_that_cannot_be_rated_stays_a_draft_and_the_rest_are_numbered_without_gap(
    drafts,
):
    reseller, customers, _ = drafts
    euro = PlanFactory(reseller=reseller, currency="EUR")
    SubscriptionFactory(customer=customers[2], plan=euro, starts_on=dt.date(2026, 10, 20))
    result = invoices_finalize_due(reseller=reseller, now=OCTOBER_DUE, send_email=False)
    stuck = Invoice.objects.get(customer=customers[2])
    assert [(f.customer_id, f.invoice_id, f.code) for f in result.failed] == [
        (customers[2].pk, stuck.pk, "currency_mismatch")
    ]
    assert stuck.status == "draft" and stuck.number is None
    assert list(
        Invoice.objects.exclude(pk=stuck.pk)
        .order_by("customer_id")
        .values_list("number", flat=True)
    ) == ["FD-2026-00001", "FD-2026-00002", "FD-2026-00003"]


def test_a_draft_finalized_meanwhile_is_reported_not_numbered_twice(drafts):
    stale = list(Invoice.objects.order_by("customer_id"))
    invoice_finalize(invoice=stale[1], now=OCTOBER_DUE, send_email=False)
    result = invoices_finalize(invoices=stale, now=OCTOBER_DUE, send_email=False)
    assert [(f.customer_id, f.invoice_id, f.code) for f in result.not_draft] == [
        (stale[1].customer_id, stale[1].pk, "invoice_not_draft")
    ]
    assert result.failed == [] and result.already == []
    assert result.error_for(invoice_id=stale[1].pk).code == "invoice_not_draft"
    assert result.error_for(customer_id=stale[1].customer_id).code == "invoice_not_draft"
    assert sorted(Invoice.objects.values_list("sequence_number", flat=True)) == [1, 2, 3, 4]


def test_older_periods_are_finalized_first_in_their_own_chunks(drafts):
    reseller, customers, subs = drafts
    add_usage(subs[0], SEP, 30, 1)  # 30 GiB in September: 10.00 base only
    invoices_generate_for_period(
        reseller=reseller, period_start=SEP, now=AFTER_SEPTEMBER, customer=customers[0]
    )
    invoices_finalize_due(reseller=reseller, now=OCTOBER_DUE, send_email=False)
    september = Invoice.objects.get(period_start=SEP)
    assert (september.number, september.total) == ("FD-2026-00001", Decimal("10.00"))
    assert Invoice.objects.get(period_start=OCT, customer=customers[0]).number == "FD-2026-00002"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_finalizing_the_due_drafts_at_once_number_each_once(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(invoice_prefix="PG")
    plan = PlanFactory(reseller=reseller)
    for _ in range(7):
        customer = factories.CustomerFactory(reseller=reseller)
        SubscriptionFactory(customer=customer, plan=plan)
        add_usage(factories.SubAccountFactory(customer=customer), OCT, 31, 4)
    invoices_generate_for_period(reseller=reseller, period_start=OCT, now=AFTER_OCTOBER)
    barrier = threading.Barrier(2)
    job = in_thread(
        barrier,
        lambda: invoices_finalize_due(reseller=reseller, now=OCTOBER_DUE, send_email=False),
    )
    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(job), pool.submit(job)]]
    finalized = results[0].finalized + results[1].finalized
    assert sorted(finalized) == sorted(Invoice.objects.values_list("pk", flat=True))
    assert sorted(Invoice.objects.values_list("sequence_number", flat=True)) == list(range(1, 8))
    assert InvoiceEvent.objects.filter(to_status="finalized").count() == 7
