"""Issue 10, accounts side: a customer's currency is locked once it has subscriptions, and
tax rates, currencies and country codes are checked by the services (so alike by admin,
API and commands), a bad value answering 400 with the field named."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.api_keys import api_key_create
from accounts.models import Customer
from accounts.services import customer_create, customer_update, reseller_create
from core.errors import ApplicationError
from tests import factories
from tests.api.conftest import key_client
from tests.billing.factories import PlanFactory, SubscriptionFactory


@pytest.fixture
def api(reseller):
    return key_client(api_key_create(reseller=reseller, name="automation")[1])


@pytest.mark.django_db
def test_currency_change_of_a_customer_with_a_subscription_is_409(api, customer):
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=customer.reseller))
    url = f"/api/v1/reseller/customers/{customer.pk}/"

    refused = api.patch(url, {"currency": "EUR"})
    emptied = api.patch(url, {"currency": ""})  # the reseller's, USD: no change
    same = api.patch(url, {"currency": "USD", "name": "Renamed"})

    assert refused.status_code == 409
    assert refused.json()["code"] == "customer_currency_locked"
    assert "currency" in refused.json()["extra"]["fields"]
    assert emptied.status_code == same.status_code == 200
    customer.refresh_from_db()
    assert (customer.currency, customer.name) == ("USD", "Renamed")


@pytest.mark.django_db
def test_an_ended_subscription_still_locks_the_currency(customer):
    SubscriptionFactory(
        customer=customer,
        plan=PlanFactory(reseller=customer.reseller),
        starts_on=dt.date(2025, 1, 1),
        ends_on=dt.date(2025, 6, 1),
    )
    with pytest.raises(ApplicationError) as info:
        customer_update(customer=customer, currency="EUR")
    assert info.value.code == "customer_currency_locked"


@pytest.mark.django_db
def test_a_customer_without_subscriptions_may_change_currency(api, customer):
    response = api.patch(f"/api/v1/reseller/customers/{customer.pk}/", {"currency": "EUR"})
    assert response.status_code == 200 and response.json()["currency"] == "EUR"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tax_rate", "100.0001"),
        ("tax_rate", "-1"),
        ("tax_rate", "1e3"),
        ("currency", "usd"),
        ("currency", "XYZ"),
        ("country", "XX"),
        ("country", "de"),
        ("country", "EU"),
        ("country", "DEU"),
    ],
)
def test_api_refuses_bad_tax_currency_and_country_naming_the_field(api, customer, field, value):
    created = api.post(
        "/api/v1/reseller/customers/", {"name": "N", "email": "n@example.com", field: value}
    )
    patched = api.patch(f"/api/v1/reseller/customers/{customer.pk}/", {field: value})
    for response in (created, patched):
        assert response.status_code == 400, response.json()
        assert list(response.json()["extra"]["fields"]) == [field]


@pytest.mark.django_db
def test_bounds_themselves_are_accepted(reseller):
    for rate in ("0", "100", "19.5"):
        customer = customer_create(
            reseller=reseller, name=rate, email="a@example.com", tax_rate=Decimal(rate),
            country="CN",
        )  # fmt: skip
        assert customer.tax_rate == Decimal(rate)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tax_rate": Decimal("150")}, "tax_rate"),
        ({"country": "ZZ"}, "country"),
        ({"currency": "EURO"}, "currency"),
    ],
)
def test_services_refuse_them_too(reseller, fields, field):
    with pytest.raises(ValidationError) as info:
        customer_create(reseller=reseller, name="N", email="n@example.com", **fields)
    assert field in info.value.message_dict


@pytest.mark.django_db
def test_reseller_currency_is_checked_by_the_service_and_the_command():
    with pytest.raises(ValidationError) as info:
        reseller_create(name="R", slug="r", currency="ABC")
    assert list(info.value.message_dict) == ["currency"]
    with pytest.raises(CommandError, match="currency"):
        call_command("create_reseller", "--name", "R", "--currency", "abc", "--timezone", "UTC")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_currency_change_waits_for_a_subscription_being_created_and_is_refused():
    """The currency check and `subscription_create` lock the same customer row: a change
    racing a new subscription waits for it, then sees it and is refused (PostgreSQL)."""
    import threading

    from django.db import connection, transaction

    from accounts.models import Customer
    from billing.plans import subscription_create
    from tests import factories

    customer = factories.CustomerFactory()
    plan = PlanFactory(reseller=customer.reseller)
    subscribed, outcome = threading.Event(), []

    def change_currency():
        try:
            subscribed.wait(5)
            fresh = Customer.objects.select_related("reseller").get(pk=customer.pk)
            customer_update(customer=fresh, currency="EUR")
            outcome.append("changed")
        except ApplicationError as exc:
            outcome.append(exc.code)
        finally:
            connection.close()

    racer = threading.Thread(target=change_currency)
    racer.start()
    with transaction.atomic():
        subscription_create(customer=customer, plan=plan, starts_on=dt.date(2026, 1, 1))
        subscribed.set()  # the racer now blocks on the customer row until this commits
        racer.join(0.5)
        assert racer.is_alive()
    racer.join(10)
    assert outcome == ["customer_currency_locked"]
    customer.refresh_from_db()
    assert customer.currency == "USD"


# --- the currency default: one rule, in `customer_create` / `customer_update` ---------------


@pytest.mark.django_db
def test_a_new_customer_without_a_currency_gets_the_resellers_and_a_given_one_stays():
    reseller = factories.ResellerFactory(currency="EUR")
    defaulted = customer_create(reseller=reseller, name="A", email="a@example.com")
    emptied = customer_create(reseller=reseller, name="B", email="b@example.com", currency="")
    given = customer_create(reseller=reseller, name="C", email="c@example.com", currency="GBP")

    assert [c.currency for c in (defaulted, emptied, given)] == ["EUR", "EUR", "GBP"]
    assert Customer.objects.get(pk=defaulted.pk).currency == "EUR"  # stored, not derived


@pytest.mark.django_db
def test_validating_a_customer_without_a_currency_refuses_it_instead_of_filling_it():
    customer = Customer(
        reseller=factories.ResellerFactory(currency="EUR"), name="A", email="a@example.com"
    )
    with pytest.raises(ValidationError) as raised:
        customer.full_clean()
    assert list(raised.value.message_dict) == ["currency"]
    assert customer.currency == ""  # no silent fill: only the services apply the default


@pytest.mark.django_db
def test_api_creates_a_customer_in_the_resellers_currency_when_none_is_given(api, reseller):
    reseller.currency = "EUR"
    reseller.save(update_fields=["currency"])
    response = api.post("/api/v1/reseller/customers/", {"name": "New", "email": "n@example.com"})
    assert response.status_code == 201
    assert response.json()["currency"] == "EUR"
    assert Customer.objects.get(pk=response.json()["id"]).currency == "EUR"
