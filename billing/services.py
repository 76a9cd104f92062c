"""Plans and subscriptions: the writes, and turning a plan into rating's frozen terms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Customer, Reseller, UpstreamAccount
from billing.models import GIB, Plan, PlanTier, Subscription
from billing.rating import PlanTerms, Tier
from config.errors import ApplicationError


def _plain(value: Decimal | None) -> Decimal | None:
    """10.000000 (a 6-place column) -> 10, so descriptions read "0 - 10 GB"; never 1E+1."""
    if value is None:
        return None
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def plan_terms(*, plan: Plan) -> PlanTerms:
    """Rating's frozen view of a plan. An inconsistent plan raises `invalid_plan`."""
    is_package = plan.pricing_model == Plan.PricingModel.PACKAGE
    tiers = tuple(
        Tier(up_to=_plain(t.up_to), unit_price=_plain(t.unit_price), flat_fee=_plain(t.flat_fee))
        for t in sorted(plan.tiers.all(), key=lambda t: t.position)
    )
    try:
        return PlanTerms(
            currency=plan.currency,
            pricing_model=plan.pricing_model,
            unit_bytes=plan.unit_bytes,
            tiers=() if is_package else tiers,
            package_size=_plain(plan.package_size) if is_package else None,
            package_price=_plain(plan.package_price) if is_package else None,
            base_fee=_plain(plan.base_fee),
            minimum_charge=_plain(plan.minimum_charge),
        )
    except (TypeError, ValueError) as exc:
        raise ApplicationError(
            "invalid_plan", f"Plan {plan.code}: {exc}", extra={"plan": plan.pk}
        ) from exc


def terms_to_json(terms: PlanTerms) -> dict[str, Any]:
    """Terms as JSON (Decimals as strings), frozen on invoices so adjustments re-rate alike."""

    def s(value: Decimal | None) -> str | None:
        return None if value is None else format(value, "f")

    return {
        "currency": terms.currency,
        "pricing_model": terms.pricing_model,
        "unit_bytes": terms.unit_bytes,
        "tiers": [[s(t.up_to), s(t.unit_price), s(t.flat_fee)] for t in terms.tiers],
        "package_size": s(terms.package_size),
        "package_price": s(terms.package_price),
        "base_fee": s(terms.base_fee),
        "minimum_charge": s(terms.minimum_charge),
    }


def terms_from_json(data: dict[str, Any]) -> PlanTerms:
    def d(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return PlanTerms(
        currency=data["currency"],
        pricing_model=data["pricing_model"],
        unit_bytes=int(data["unit_bytes"]),
        tiers=tuple(
            Tier(up_to=d(up_to), unit_price=Decimal(price), flat_fee=Decimal(flat))
            for up_to, price, flat in data["tiers"]
        ),
        package_size=d(data["package_size"]),
        package_price=d(data["package_price"]),
        base_fee=Decimal(data["base_fee"]),
        minimum_charge=Decimal(data["minimum_charge"]),
    )


@transaction.atomic
def plan_create(
    *,
    reseller: Reseller,
    code: str,
    name: str,
    pricing_model: str,
    currency: str | None = None,
    base_fee: Decimal = Decimal(0),
    minimum_charge: Decimal = Decimal(0),
    unit_bytes: int = GIB,
    tiers: Sequence[tuple[Decimal | None, Decimal] | tuple[Decimal | None, Decimal, Decimal]] = (),
    package_size: Decimal | None = None,
    package_price: Decimal | None = None,
) -> Plan:
    """Create a plan and its tiers (`(up_to GB or None, unit_price[, flat_fee])`), validated
    by building its rating terms, so a plan that cannot rate is never saved."""
    plan = Plan(
        reseller=reseller,
        code=code,
        name=name,
        currency=currency or reseller.currency,
        pricing_model=pricing_model,
        base_fee=base_fee,
        minimum_charge=minimum_charge,
        unit_bytes=unit_bytes,
        package_size=package_size,
        package_price=package_price,
    )
    try:
        plan.full_clean()
    except ValidationError as exc:
        raise ApplicationError(
            "invalid_plan", "The plan is invalid.", extra=exc.message_dict
        ) from exc
    plan.save()
    PlanTier.objects.bulk_create(
        PlanTier(
            plan=plan,
            position=index,
            up_to=tier[0],
            unit_price=tier[1],
            flat_fee=tier[2] if len(tier) > 2 else Decimal(0),
        )
        for index, tier in enumerate(tiers, start=1)
    )
    plan_terms(plan=plan)
    return plan


def plan_rename(*, plan: Plan, name: str) -> Plan:
    """Rename a plan. Its prices are fixed once created: drafts, previews and the current
    estimate rate from the live plan, so repricing would silently change an open month.
    New prices are a new plan (end the subscriptions, subscribe again)."""
    plan.name = name
    plan.full_clean(validate_unique=False, validate_constraints=False)
    plan.save(update_fields=["name"])
    return plan


@transaction.atomic
def subscription_create(
    *,
    customer: Customer,
    plan: Plan,
    starts_on: dt.date,
    ends_on: dt.date | None = None,
    upstream_account: UpstreamAccount | None = None,
) -> Subscription:
    """Subscribe a customer; the customer row is locked so two overlapping requests cannot
    both pass the overlap check."""
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    subscription = Subscription(
        customer=customer,
        plan=plan,
        starts_on=starts_on,
        ends_on=ends_on,
        upstream_account=upstream_account,
    )
    try:
        subscription.full_clean()
    except ValidationError as exc:
        code = "subscription_overlap" if "starts_on" in exc.message_dict else "invalid_subscription"
        raise ApplicationError(code, "; ".join(exc.messages), extra=exc.message_dict) from exc
    subscription.save()
    return subscription


@transaction.atomic
def subscription_end(*, subscription: Subscription, ends_on: dt.date) -> Subscription:
    """End a subscription on `ends_on` (exclusive: the first day no longer billed)."""
    Customer.objects.select_for_update().filter(pk=subscription.customer_id).first()
    subscription.ends_on = ends_on
    try:
        subscription.full_clean()
    except ValidationError as exc:
        raise ApplicationError(
            "invalid_subscription", "; ".join(exc.messages), extra=exc.message_dict
        ) from exc
    subscription.save(update_fields=["ends_on"])
    return subscription
