"""Billing factories and helpers: plans with tiers, subscriptions, usage days."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.db import connection

from billing.models import Plan, PlanTier, Subscription
from tests.factories import CustomerFactory, ResellerFactory, SubAccountFactory
from usage.models import UsageDay

GIB = 1_073_741_824


class PlanFactory(factory.django.DjangoModelFactory):
    """A graduated USD plan: base 10.00, first 100 GB free, then 2.50 per GB."""

    class Meta:
        model = Plan
        skip_postgeneration_save = True

    reseller = factory.SubFactory(ResellerFactory)
    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    currency = factory.LazyAttribute(lambda p: p.reseller.currency)
    base_fee = Decimal("10.00")
    pricing_model = Plan.PricingModel.GRADUATED

    @factory.post_generation
    def tiers(obj, create, extracted, **kwargs):
        if not create or obj.pricing_model == Plan.PricingModel.PACKAGE:
            return
        tiers = extracted or [(Decimal("100"), Decimal("0")), (None, Decimal("2.50"))]
        for position, tier in enumerate(tiers, start=1):
            PlanTier.objects.create(
                plan=obj,
                position=position,
                up_to=tier[0],
                unit_price=tier[1],
                flat_fee=tier[2] if len(tier) > 2 else Decimal(0),
            )


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(PlanFactory, reseller=factory.SelfAttribute("..customer.reseller"))
    starts_on = dt.date(2026, 1, 1)


def add_usage(sub_account, start: dt.date, days: int, gib_per_day: int | Decimal) -> None:
    """`gib_per_day` GiB on each of `days` days from `start` (bulk, no signals)."""
    UsageDay.objects.bulk_create(
        UsageDay(
            sub_account=sub_account,
            day=start + dt.timedelta(days=i),
            bytes=int(Decimal(gib_per_day) * GIB),
        )
        for i in range(days)
    )


def in_thread(barrier, fn):
    """`fn` for a worker thread: starts with the others at `barrier`, closes its own
    database connection at the end (each thread has one)."""

    def run():
        try:
            barrier.wait()
            return fn()
        finally:
            connection.close()

    return run


def customers_using(reseller, plan, *, count: int, start: dt.date, days: int, gib_per_day):
    """`count` customers of `reseller` subscribed to `plan`, each with one sub-account using
    `gib_per_day` GiB on `days` days from `start`."""
    customers = []
    for _ in range(count):
        customer = CustomerFactory(reseller=reseller)
        SubscriptionFactory(customer=customer, plan=plan)
        add_usage(SubAccountFactory(customer=customer), start, days, gib_per_day)
        customers.append(customer)
    return customers
