"""Discarding a draft (`invoice_draft_discard`), and drafts of customers with nothing billable
left: the cycle brings a discarded draft back only while the customer is still billable."""

import datetime as dt
import logging
from decimal import Decimal

import pytest

from billing.invoicing.cycle import invoice_create_draft, invoice_cycle_run, invoice_draft_discard
from billing.invoicing.finalizing import invoice_finalize, invoices_finalize_due
from billing.models import Invoice, InvoiceEvent, InvoiceLine, InvoiceSequence, InvoiceUsage
from billing.selectors import customers_to_invoice
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import UsageDay

OCT, NOV = dt.date(2026, 10, 1), dt.date(2026, 11, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)  # in grace (2 days, UTC)
OCTOBER_DUE = dt.datetime(2026, 11, 3, 0, 30, tzinfo=dt.UTC)


@pytest.fixture
def draft(reseller, customer, sub_account, settings, tmp_path):
    """October's draft: 10.00 + 155 GiB (100 free, 55 x 2.50) = 147.50."""
    settings.MEDIA_ROOT = tmp_path
    subscription = SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    add_usage(sub_account, OCT, 31, 5)
    invoice, _ = invoice_create_draft(customer=customer, period_start=OCT, now=AFTER_OCTOBER)
    assert invoice.total == Decimal("147.50")
    return invoice, subscription


def test_discard_deletes_the_draft_with_its_rows_and_logs_who(draft, caplog):
    invoice, _ = draft
    assert invoice.lines.count() == 3 and invoice.usage.count() == 1
    with caplog.at_level(logging.INFO, logger="billing.invoicing.cycle"):
        assert invoice_draft_discard(invoice=invoice, actor="alice", now=AFTER_OCTOBER) is None
    assert not Invoice.objects.filter(pk=invoice.pk).exists()
    assert not InvoiceLine.objects.filter(invoice_id=invoice.pk).exists()
    assert not InvoiceUsage.objects.filter(invoice_id=invoice.pk).exists()
    assert not InvoiceEvent.objects.filter(invoice_id=invoice.pk).exists()
    (record,) = [r for r in caplog.records if "discarded by alice" in r.getMessage()]
    assert f"customer {invoice.customer_id} for 2026-10" in record.getMessage()
    assert not InvoiceSequence.objects.exists()  # a draft never took a number


def test_an_issued_invoice_is_not_discarded(draft):
    invoice, _ = draft
    invoice = invoice_finalize(invoice=invoice, now=OCTOBER_DUE, send_email=False)
    with pytest.raises(ApplicationError) as caught:
        invoice_draft_discard(invoice=invoice, actor="alice", now=OCTOBER_DUE)
    assert (caught.value.code, caught.value.extra) == ("invoice_not_draft", {"status": "finalized"})
    assert Invoice.objects.get(pk=invoice.pk).lines.count() == 3


def test_discarding_twice_is_not_found_the_second_time(draft):
    invoice, _ = draft
    invoice_draft_discard(invoice=invoice, actor="alice", now=AFTER_OCTOBER)
    with pytest.raises(ApplicationError) as caught:
        invoice_draft_discard(invoice=invoice, actor="alice", now=AFTER_OCTOBER)
    assert caught.value.code == "not_found"


def test_a_discarded_draft_comes_back_at_the_next_cycle_while_still_billable(draft):
    invoice, _ = draft
    invoice_draft_discard(invoice=invoice, actor="alice", now=AFTER_OCTOBER)
    result = invoice_cycle_run(reseller=invoice.reseller, now=AFTER_OCTOBER + dt.timedelta(hours=1))
    (again,) = Invoice.objects.filter(customer_id=invoice.customer_id)
    assert result.generated.created == [again.pk] and again.pk != invoice.pk
    assert (again.status, again.total) == ("draft", Decimal("147.50"))


def test_a_discarded_draft_stays_away_once_the_customer_is_not_billable(draft, sub_account):
    invoice, subscription = draft
    invoice_draft_discard(invoice=invoice, actor="alice", now=AFTER_OCTOBER)
    # Staff move the mistaken subscription out of October and the usage was someone else's.
    type(subscription).objects.filter(pk=subscription.pk).update(starts_on=NOV)
    UsageDay.objects.filter(sub_account=sub_account).delete()
    result = invoice_cycle_run(reseller=invoice.reseller, now=AFTER_OCTOBER + dt.timedelta(hours=1))
    assert result.generated.created == [] and not Invoice.objects.exists()


def test_a_cancelled_subscription_is_not_billable(draft, sub_account):
    invoice, subscription = draft
    UsageDay.objects.filter(sub_account=sub_account).delete()
    type(subscription).objects.filter(pk=subscription.pk).update(
        starts_on=dt.date(2026, 10, 5), ends_on=dt.date(2026, 10, 5)
    )
    assert list(customers_to_invoice(reseller=invoice.reseller, start_day=OCT, end_day=NOV)) == []


def _nothing_billable_left(invoice, subscription, sub_account) -> Invoice:
    """The draft's customer loses its usage and its subscription moves out of October (a
    mistake undone); another customer's draft stays billable. Returns that other draft."""
    other = factories.CustomerFactory(reseller=invoice.reseller)
    SubscriptionFactory(customer=other, plan=subscription.plan)
    kept, _ = invoice_create_draft(customer=other, period_start=OCT, now=AFTER_OCTOBER)
    UsageDay.objects.filter(sub_account=sub_account).delete()
    type(subscription).objects.filter(pk=subscription.pk).update(starts_on=NOV)
    return kept


def test_the_cycle_discards_a_draft_whose_customer_has_nothing_billable_left(draft, sub_account):
    invoice, subscription = draft
    kept = _nothing_billable_left(invoice, subscription, sub_account)
    result = invoice_cycle_run(reseller=invoice.reseller, now=AFTER_OCTOBER + dt.timedelta(hours=1))
    assert result.discarded == [invoice.pk] and result.refreshed == []
    assert list(Invoice.objects.values_list("pk", "status")) == [(kept.pk, "draft")]
    later = invoice_cycle_run(reseller=invoice.reseller, now=AFTER_OCTOBER + dt.timedelta(hours=2))
    assert later.generated.created == [] and Invoice.objects.count() == 1


def test_finalizing_due_drafts_discards_the_empty_ones_and_numbers_the_rest(draft, sub_account):
    invoice, subscription = draft
    kept = _nothing_billable_left(invoice, subscription, sub_account)
    result = invoices_finalize_due(reseller=invoice.reseller, now=OCTOBER_DUE, send_email=False)
    assert (result.discarded, result.finalized, result.failed) == ([invoice.pk], [kept.pk], [])
    assert list(Invoice.objects.values_list("pk", "number", "total")) == [
        (kept.pk, f"{invoice.reseller.invoice_prefix}-2026-00001", Decimal("10.00"))
    ]
