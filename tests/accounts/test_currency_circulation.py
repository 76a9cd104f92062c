"""Issue 17: only ISO 4217 currencies in circulation are billing currencies, and a customer's
currency is locked by any invoice of it (a draft too), not only by subscriptions."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.services import customer_update
from accounts.validators import validate_currency
from billing.invoicing.cycle import invoice_create_draft, invoice_draft_discard
from core.errors import ApplicationError
from tests.billing.factories import add_usage

NON_CIRCULATING = ["XAU", "XAG", "XXX", "XTS", "XDR", "BOV", "CLF", "USN", "DEM", "HRK", "ZWL"]


@pytest.mark.parametrize("code", NON_CIRCULATING)
def test_funds_metals_test_codes_and_withdrawn_currencies_are_refused(code):
    with pytest.raises(ValidationError, match="not an ISO 4217 currency code in circulation"):
        validate_currency(code)


@pytest.mark.parametrize("code", ["USD", "EUR", "JPY", "CNY", "KWD", "BHD", "XOF", "XAF", "XCD"])
def test_currencies_in_circulation_are_accepted(code):
    validate_currency(code)


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["XAU", "XXX"])
def test_create_reseller_refuses_a_non_circulating_currency(code):
    with pytest.raises(CommandError, match=f"{code} is not an ISO 4217 currency code"):
        call_command("create_reseller", "--name", "Gold", "--currency", code, "--timezone", "UTC")


@pytest.mark.django_db
def test_a_draft_locks_the_currency_until_it_is_discarded(
    customer, sub_account, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    add_usage(sub_account, dt.date(2026, 10, 1), 2, 1)
    draft, _ = invoice_create_draft(
        customer=customer,
        period_start=dt.date(2026, 10, 1),
        now=dt.datetime(2026, 11, 3, tzinfo=dt.UTC),
    )
    with pytest.raises(ApplicationError) as caught:
        customer_update(customer=customer, currency="EUR")
    assert caught.value.code == "customer_currency_locked"
    assert caught.value.message == (
        "The customer has invoices in USD; its currency cannot change. "
        "Create a new customer for another currency."
    )
    invoice_draft_discard(invoice=draft, actor="staff", now=dt.datetime(2026, 11, 3, tzinfo=dt.UTC))
    assert customer_update(customer=customer, currency="EUR").currency == "EUR"
