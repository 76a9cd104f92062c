"""Plan writes: create (validated by `billing.plans.rules`) and update (name and status only).

A plan's prices are fixed once it exists: drafts, previews and the current-usage estimate rate
from the live plan, so repricing would silently change an open month. New prices are a new
plan (end the subscriptions, subscribe to the new one).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import Reseller
from billing.models import GIB, Plan, PlanTier
from billing.plans.rules import (
    PRICE_INTEGER_DIGITS,
    PRICE_PLACES,
    Errors,
    plan_rules_errors,
    tier_values,
)
from billing.plans.terms import plan_terms
from core.errors import ApplicationError
from core.money import parse_amount

#: What cannot change once a plan is created (`plan_price_immutable`).
PLAN_FIXED_FIELDS = (
    "code",
    "currency",
    "pricing_model",
    "unit_bytes",
    "base_fee",
    "minimum_charge",
    "package_size",
    "package_price",
    "tiers",
)


def plan_error(errors: Errors) -> ApplicationError:
    """`invalid_plan` naming every field path that broke a rule."""
    path, messages = next(iter(errors.items()))
    return ApplicationError(
        "invalid_plan", f"The plan is invalid: {path}: {messages[0]}", extra=errors
    )


def _decimal(value: Any) -> Decimal | None:
    """A value the rules accepted, as the Decimal they read (`core.money.parse_amount`)."""
    if value is None:
        return None
    return parse_amount(
        value, places=PRICE_PLACES, integer_digits=PRICE_INTEGER_DIGITS, allow_negative=True
    )


def _code_taken(reseller: Reseller, code: str) -> Errors:
    return {"code": [f"The reseller already has a plan with code {code!r}."]}


@transaction.atomic
def plan_create(
    *,
    reseller: Reseller,
    code: str,
    name: str,
    pricing_model: str,
    currency: str | None = None,
    base_fee: Decimal | str | int = Decimal(0),
    minimum_charge: Decimal | str | int = Decimal(0),
    unit_bytes: int = GIB,
    tiers: Sequence[Any] = (),
    package_size: Decimal | str | int | None = None,
    package_price: Decimal | str | int | None = None,
    is_active: bool = True,
) -> Plan:
    """Create a plan and its tiers, each `{"up_to", "unit_price", "flat_fee"}` or
    `(up_to GB or None, unit_price[, flat_fee])`. Every rule is checked first and all broken
    ones are reported together (`invalid_plan`, `extra` keyed by field path such as
    `tiers[0].up_to`), so a plan that cannot rate is never saved."""
    currency = reseller.currency if currency is None else currency
    tiers = list(tiers)
    errors = plan_rules_errors(
        pricing_model=pricing_model,
        currency=currency,
        base_fee=base_fee,
        minimum_charge=minimum_charge,
        package_size=package_size,
        package_price=package_price,
        tiers=tiers,
    )
    if unit_bytes not in Plan.Unit.values:
        errors["unit_bytes"] = [f"One of {', '.join(map(str, Plan.Unit.values))}."]
    plan = Plan(
        reseller=reseller,
        code=code,
        name=name,
        currency=currency if "currency" not in errors else "",
        pricing_model=pricing_model,
        unit_bytes=unit_bytes,
        is_active=is_active,
    )
    try:
        plan.clean_fields(exclude=[*PLAN_FIXED_FIELDS[1:], "reseller", *errors])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if "code" not in errors and Plan.objects.filter(reseller=reseller, code=code).exists():
        errors.update(_code_taken(reseller, code))
    if errors:
        raise plan_error(errors)
    plan.base_fee = _decimal(base_fee)
    plan.minimum_charge = _decimal(minimum_charge)
    plan.package_size = _decimal(package_size)
    plan.package_price = _decimal(package_price)
    try:
        with transaction.atomic():
            plan.save()
    except IntegrityError as exc:  # a concurrent create took the code
        raise plan_error(_code_taken(reseller, code)) from exc
    PlanTier.objects.bulk_create(
        PlanTier(
            plan=plan,
            position=position,
            up_to=_decimal(values["up_to"]),
            unit_price=_decimal(values["unit_price"]),
            flat_fee=_decimal(values["flat_fee"]),
        )
        for position, values in enumerate(map(tier_values, tiers), start=1)
    )
    plan_terms(plan=plan)  # the rules above guarantee it rates; this keeps them honest
    return plan


def plan_update(
    *, plan: Plan, name: str | None = None, is_active: bool | None = None, **fixed: Any
) -> Plan:
    """Rename a plan or (de)activate it (an inactive plan takes no new subscriptions but
    keeps billing its existing ones). Any of `PLAN_FIXED_FIELDS` is
    refused with `plan_price_immutable` (400, naming the fields)."""
    unknown = set(fixed) - set(PLAN_FIXED_FIELDS)
    if unknown:
        raise TypeError(f"plan_update() got unexpected fields {sorted(unknown)}")
    if fixed:
        message = (
            "Fixed once the plan is created: create a new plan, end the subscriptions and "
            "subscribe again."
        )
        raise ApplicationError(
            "plan_price_immutable",
            "A plan's prices, tiers, currency, pricing model, unit and code cannot change; "
            "create a new plan instead.",
            extra={field: [message] for field in PLAN_FIXED_FIELDS if field in fixed},
        )
    changed = []
    if name is not None:
        plan.name, changed = name, [*changed, "name"]
    if is_active is not None:
        plan.is_active, changed = is_active, [*changed, "is_active"]
    try:
        plan.clean_fields(exclude=[f.name for f in Plan._meta.fields if f.name not in changed])
    except ValidationError as exc:
        raise plan_error(exc.message_dict) from exc
    if changed:
        plan.save(update_fields=changed)
    return plan
