"""`BatchResult` (review finding 9a of issue 18 item 5): each list has one meaning in every
kind of batch, and a failure names its customer and its draft by explicit fields, so a batch's
error is looked up by the key asked for, never by an id of the other kind."""

import datetime as dt

import pytest

from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.engine import refusal_of
from billing.invoicing.issuing import invoice_issue, invoices_issue_for_period
from billing.invoicing.results import BatchResult
from billing.models import Invoice
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, customers_using

OCT = dt.date(2026, 10, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)


@pytest.fixture
def three(db):
    """Three customers on 10.00 base + 100 GB free + 2.50/GB with October usage."""
    reseller = factories.ResellerFactory(invoice_prefix="BR")
    plan = PlanFactory(reseller=reseller)
    return reseller, customers_using(reseller, plan, count=3, start=OCT, days=31, gib_per_day=5)


def test_an_error_is_found_by_the_key_named_never_by_an_id_of_the_other_kind():
    """An issue batch's failure (customer 3, no draft) merged with a finalize batch's
    (customer 7, draft 3): the old dict keyed by either id would have let one overwrite the
    other."""
    issuing = BatchResult()
    issuing.failed.append(refusal_of(ApplicationError("currency_mismatch", "A"), customer_id=3))
    finalizing = BatchResult()
    finalizing.failed.append(
        refusal_of(ApplicationError("internal_error", "B"), customer_id=7, invoice_id=3)
    )
    issuing.merge(finalizing)

    assert issuing.error_for(customer_id=3).message == "A"
    assert issuing.error_for(invoice_id=3).message == "B"
    assert issuing.error_for(customer_id=7).message == "B"
    assert issuing.error_for(invoice_id=7) is None
    with pytest.raises(TypeError):
        issuing.error_for(customer_id=3, invoice_id=3)


def test_drafting_a_month_again_reports_issued_invoices_as_already_issued_not_as_resumed(three):
    reseller, (issued_one, drafted, new) = three
    issued, _ = invoice_issue(
        customer=issued_one, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    invoices_generate_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, customer=drafted
    )

    later = AFTER_OCTOBER + dt.timedelta(hours=1)
    result = invoices_generate_for_period(reseller=reseller, period_start=OCT, now=later)

    draft = Invoice.objects.get(customer=drafted)
    created = Invoice.objects.get(customer=new)
    assert [i.pk for i in result.already] == [issued.pk]
    assert (result.created, result.refreshed, result.resumed) == ([created.pk], [draft.pk], [])
    assert sorted(result.invoice_ids) == sorted([issued.pk, draft.pk, created.pk])


def test_a_draft_that_fails_when_its_month_is_issued_names_its_customer_and_its_draft(three):
    reseller, (first, broken, third) = three
    invoices_generate_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, customer=broken
    )
    draft = Invoice.objects.get(customer=broken)
    euro = PlanFactory(reseller=reseller, currency="EUR")
    SubscriptionFactory(customer=broken, plan=euro, starts_on=dt.date(2026, 10, 15))

    result = invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )

    assert [(f.customer_id, f.invoice_id, f.code) for f in result.failed] == [
        (broken.pk, draft.pk, "currency_mismatch")
    ]
    assert result.error_for(customer_id=broken.pk).code == "currency_mismatch"
    assert result.error_for(customer_id=first.pk) is None
    assert sorted(i.customer_id for i in result.issued) == [first.pk, third.pk]
    with pytest.raises(ApplicationError) as raised:
        invoice_issue(customer=broken, period_start=OCT, now=AFTER_OCTOBER, send_email=False)
    assert raised.value.code == "currency_mismatch"
