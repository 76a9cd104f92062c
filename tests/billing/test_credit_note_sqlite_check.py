"""The credit note's `total = subtotal + tax` check holds on SQLite too, where the database
compares decimals as floating point (0.20 + 0.10 is not 0.30 there)."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.credit_notes.services import credit_note_create
from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.finalizing import invoice_finalize
from billing.models import Invoice
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

pytestmark = pytest.mark.django_db

OCT = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 5, 12, tzinfo=dt.UTC)


def test_a_full_credit_of_020_plus_50_percent_tax_is_stored(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller, tax_rate=Decimal("50"))
    plan = PlanFactory(reseller=reseller, base_fee=Decimal("0.20"))
    SubscriptionFactory(customer=customer, plan=plan)
    add_usage(factories.SubAccountFactory(customer=customer), OCT, 1, 0)
    invoices_generate_for_period(reseller=reseller, period_start=OCT, now=NOW)
    invoice = invoice_finalize(invoice=Invoice.objects.get(), actor="test", now=NOW)
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Decimal("0.20"),
        Decimal("0.10"),
        Decimal("0.30"),
    )

    note = credit_note_create(invoice=invoice, actor="test", now=NOW)

    assert (note.subtotal, note.tax, note.total) == (
        Decimal("0.20"),
        Decimal("0.10"),
        Decimal("0.30"),
    )
