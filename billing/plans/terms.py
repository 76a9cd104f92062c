"""A plan as rating sees it: the frozen `PlanTerms`, and their JSON form kept on invoices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing.models import Plan
from billing.rating import PlanTerms, Tier
from core.errors import ApplicationError


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
