import datetime as dt
from decimal import Decimal

import pytest

from billing.plans import (
    plan_create,
    plan_terms,
    subscription_create,
    subscription_end,
    terms_from_json,
    terms_to_json,
)
from billing.rating import PlanTerms, Tier
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory

JAN = dt.date(2026, 1, 1)


def test_plan_terms_carry_tiers_in_order(reseller):
    plan = plan_create(
        reseller=reseller,
        code="std",
        name="Standard",
        pricing_model="graduated",
        base_fee=Decimal("20"),
        tiers=[(Decimal("10"), Decimal("0")), (None, Decimal("3"), Decimal("5"))],
    )
    assert plan_terms(plan=plan) == PlanTerms(
        currency="USD",
        pricing_model="graduated",
        tiers=(Tier(Decimal("10"), Decimal("0")), Tier(None, Decimal("3"), Decimal("5"))),
        base_fee=Decimal("20"),
    )


def test_terms_survive_the_json_snapshot(reseller):
    plan = plan_create(
        reseller=reseller,
        code="pk",
        name="Packs",
        pricing_model="package",
        package_size=Decimal("50"),
        package_price=Decimal("100"),
        unit_bytes=1_000_000_000,
    )
    terms = plan_terms(plan=plan)
    assert terms_from_json(terms_to_json(terms)) == terms


def test_a_plan_that_cannot_rate_is_not_saved(reseller):
    with pytest.raises(ApplicationError) as exc:
        plan_create(
            reseller=reseller,
            code="bad",
            name="Bad",
            pricing_model="graduated",
            tiers=[(Decimal("10"), Decimal("1"))],  # last tier must be unlimited
        )
    assert exc.value.code == "invalid_plan"


def test_same_scope_subscriptions_cannot_overlap(customer, upstream_account):
    plan = PlanFactory(reseller=customer.reseller)
    subscription_create(customer=customer, plan=plan, starts_on=JAN, ends_on=dt.date(2026, 6, 1))
    with pytest.raises(ApplicationError) as exc:
        subscription_create(customer=customer, plan=plan, starts_on=dt.date(2026, 5, 1))
    assert exc.value.code == "subscription_overlap"
    # An all-upstreams subscription meets every scoped one too.
    with pytest.raises(ApplicationError):
        subscription_create(
            customer=customer,
            plan=plan,
            starts_on=dt.date(2026, 3, 1),
            upstream_account=upstream_account,
        )
    assert subscription_create(customer=customer, plan=plan, starts_on=dt.date(2026, 6, 1))


def test_different_upstream_scopes_may_overlap(customer):
    plan = PlanFactory(reseller=customer.reseller)
    a, b = (factories.UpstreamAccountFactory(reseller=customer.reseller) for _ in range(2))
    subscription_create(customer=customer, plan=plan, starts_on=JAN, upstream_account=a)
    assert subscription_create(customer=customer, plan=plan, starts_on=JAN, upstream_account=b)


def test_plan_currency_must_match_the_customer(customer):
    plan = PlanFactory(reseller=customer.reseller, currency="EUR")
    with pytest.raises(ApplicationError) as exc:
        subscription_create(customer=customer, plan=plan, starts_on=JAN)
    assert "EUR" in exc.value.message


def test_another_resellers_plan_is_refused(customer):
    with pytest.raises(ApplicationError):
        subscription_create(customer=customer, plan=PlanFactory(), starts_on=JAN)


def test_ending_before_the_start_is_refused_and_on_it_cancels(customer):
    subscription = subscription_create(
        customer=customer, plan=PlanFactory(reseller=customer.reseller), starts_on=JAN
    )
    with pytest.raises(ApplicationError) as exc:
        subscription_end(subscription=subscription, ends_on=JAN - dt.timedelta(days=1))
    assert exc.value.code == "invalid_subscription" and list(exc.value.extra) == ["ends_on"]
    assert subscription_end(subscription=subscription, ends_on=JAN).ends_on == JAN
    assert subscription_end(subscription=subscription, ends_on=dt.date(2026, 2, 1)).ends_on


@pytest.mark.django_db(transaction=True)
def test_subscription_create_locks_inside_its_own_transaction_in_autocommit():
    """Callers outside a transaction (commands, shell, tests) get the service's own."""
    from billing.plans import subscription_create

    customer = factories.CustomerFactory()
    plan = PlanFactory(reseller=customer.reseller)
    subscription = subscription_create(customer=customer, plan=plan, starts_on=dt.date(2026, 10, 1))
    assert subscription.pk is not None
