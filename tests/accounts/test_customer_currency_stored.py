"""Every customer stores its currency (review finding 6 of issue 18 item 5): `customer_create`
is the one place that defaults it, accounts 0008 filled the empty ones from the reseller, a
check constraint keeps it a three-letter code, and nothing reads "empty, so the reseller's":
a later change of the reseller's currency changes no customer's, and rating uses the stored
one."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from accounts.models import Customer, Reseller
from accounts.services import customer_create, reseller_settings_update
from billing.invoicing.compute import invoice_compute
from billing.invoicing.periods import Period
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

BEFORE = ("accounts", "0007_payment_terms_reminders")
STORED = ("accounts", "0008_customer_currency_stored")


@pytest.mark.django_db
@pytest.mark.parametrize("currency", ["", "usd", "US", "12A"])
def test_the_database_refuses_a_customer_without_a_three_letter_code(currency):
    reseller = factories.ResellerFactory(currency="USD")
    with pytest.raises(IntegrityError, match="customer_currency_code"), transaction.atomic():
        Customer.objects.create(
            reseller=reseller, name="Raw", email="raw@example.com", currency=currency
        )
    assert not Customer.objects.filter(name="Raw").exists()


@pytest.mark.django_db
def test_a_change_of_the_resellers_currency_changes_no_customer_and_rating_keeps_the_stored_one():
    reseller = factories.ResellerFactory(currency="USD")
    customer = customer_create(reseller=reseller, name="A", email="a@example.com")
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    add_usage(factories.SubAccountFactory(customer=customer), dt.date(2026, 10, 1), 31, 5)

    reseller_settings_update(reseller=reseller, platform_admin=True, currency="EUR")

    stored = Customer.objects.select_related("reseller").get(pk=customer.pk)
    rated = invoice_compute(customer=stored, period=Period.of_month(2026, 10))
    assert (stored.reseller.currency, stored.currency) == ("EUR", "USD")
    # 155 GB on the USD plan: 10.00 base + (155 - 100) x 2.50, in the customer's USD
    assert (rated.currency, rated.totals.total) == ("USD", Decimal("147.50"))


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_a_customer_without_a_currency_its_resellers_and_keeps_it():
    """Run accounts 0008 itself: back to 0007, rows as they could be then, forward again."""
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
    old_reseller, old_customer = (old.get_model("accounts", m) for m in ("Reseller", "Customer"))
    eur = old_reseller.objects.create(name="E", slug="e", currency="EUR", invoice_prefix="E")
    gbp = old_reseller.objects.create(name="G", slug="g", currency="GBP", invoice_prefix="G")
    rows = {
        "blank_eur": (eur, ""),
        "blank_gbp": (gbp, ""),
        "spaces": (eur, "   "),
        "lower": (eur, "chf"),
        "own": (gbp, "USD"),
    }
    ids = {
        name: old_customer.objects.create(
            reseller=reseller, name=name, email=f"{name}@example.com", currency=currency
        ).pk
        for name, (reseller, currency) in rows.items()
    }

    executor = MigrationExecutor(connection)
    executor.migrate([STORED])

    stored = dict(Customer.unscoped.filter(pk__in=ids.values()).values_list("name", "currency"))
    assert stored == {
        "blank_eur": "EUR",
        "blank_gbp": "GBP",
        "spaces": "EUR",
        "lower": "CHF",
        "own": "USD",
    }
    reseller = Reseller.objects.get(slug="e")
    reseller_settings_update(reseller=reseller, platform_admin=True, currency="USD")
    assert Customer.unscoped.get(pk=ids["blank_eur"]).currency == "EUR"
