"""Usage charges: one function per pricing model over frozen `PlanTerms`.

Each returns `RatedLine`s whose amount is quantised once (ROUND_HALF_UP, the currency's minor
unit) and whose details keep the exact figures. Worked examples (all tested in
tests/billing/test_rating.py; 1 GB = 2**30 bytes unless stated):

Graduated, tiers 0-100 @ 0.00 (allowance), 100-500 @ 2.50, over 500 @ 2.00 + flat 10.00:
- 150 GB -> tier 1: 100 x 0.00 = 0.00; tier 2: 50 x 2.50 = 125.00 (two lines).
- 600 GB -> 0.00; 400 x 2.50 = 1000.00; 100 x 2.00 + 10.00 = 210.00 (three lines).
- 100 GB exactly -> only tier 1 (a tier covers (previous up_to, up_to]).
Volume, tiers 0-100 @ 3.00, 100-500 @ 2.00 + flat 5.00, over 500 @ 1.00:
- 150 GB -> 150 x 2.00 + 5.00 = 305.00; 100 GB -> 100 x 3.00 = 300.00.
Package, 100 GB for 20.00: 250 GB -> 3 packages = 60.00; 200 GB -> 2 packages = 40.00.

Zero usage: graduated and volume return one zero line for the first tier (no flat fee, since
no unit falls inside it) so the invoice still shows 0 GB; package returns 0 packages = 0.00.
Volume pricing is not monotonic when a higher tier is cheaper (100 GB @ 3.00 = 300.00 but
101 GB @ 2.00 = 202.00): that is what volume pricing means, and it is tested as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext

from billing.money import quantize_money
from billing.rating.terms import (
    RATING_PRECISION,
    PlanTerms,
    RatedLine,
    Tier,
    _check_count,
    dstr,
    usage_quantity,
)

GB = "GB"


def _tier_label(index: int, lower: Decimal, upper: Decimal | None) -> str:
    if upper is None:
        return f"tier {index}: over {dstr(lower)} GB"
    return f"tier {index}: {dstr(lower)} - {dstr(upper)} GB"


def _tier_details(index: int, lower: Decimal, tier: Tier) -> dict[str, object]:
    return {
        "tier": index,
        "tier_from_gb": dstr(lower),
        "tier_to_gb": None if tier.up_to is None else dstr(tier.up_to),
        "unit_price": dstr(tier.unit_price),
        "flat_fee": dstr(tier.flat_fee),
    }


def _base_details(terms: PlanTerms, usage_bytes: int, quantity: Decimal) -> dict[str, object]:
    return {
        "model": terms.pricing_model,
        "usage_bytes": usage_bytes,
        "unit_bytes": terms.unit_bytes,
        "usage_gb": dstr(quantity),
    }


def rate_graduated(*, terms: PlanTerms, usage_bytes: int) -> tuple[RatedLine, ...]:
    """One line per tier reached: the units inside the tier x its price, + its flat fee.

    150 GB on 0-100 @ 0.00, 100-500 @ 2.50 -> 100 x 0.00 = 0.00 and 50 x 2.50 = 125.00.
    """
    quantity = usage_quantity(usage_bytes, terms.unit_bytes)
    lines: list[RatedLine] = []
    lower = Decimal(0)
    with localcontext(prec=RATING_PRECISION):
        for index, tier in enumerate(terms.tiers, start=1):
            upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
            units = upper - lower  # > 0, except 0 on the first tier at zero usage
            flat_fee = tier.flat_fee if units > 0 else Decimal(0)
            unrounded = units * tier.unit_price + flat_fee
            details = _base_details(terms, usage_bytes, quantity)
            details.update(_tier_details(index, lower, tier))
            details.update(
                units_gb=dstr(units), flat_fee_charged=dstr(flat_fee), unrounded=dstr(unrounded)
            )
            lines.append(
                RatedLine(
                    kind="usage",
                    description=f"Traffic, {_tier_label(index, lower, tier.up_to)}",
                    quantity=units,
                    unit=GB,
                    unit_price=tier.unit_price,
                    amount=quantize_money(unrounded, terms.currency),
                    details=details,
                )
            )
            if tier.up_to is None or quantity <= tier.up_to:
                break
            lower = tier.up_to
    return tuple(lines)


def _volume_tier(tiers: tuple[Tier, ...], quantity: Decimal) -> tuple[int, Decimal, Tier]:
    """The (1-based index, lower bound, tier) whose range (lower, up_to] holds `quantity`."""
    lower = Decimal(0)
    for index, tier in enumerate(tiers, start=1):
        if tier.up_to is None or quantity <= tier.up_to:
            return index, lower, tier
        lower = tier.up_to
    raise ValueError("no tier covers the quantity (the last tier must be unlimited)")


def rate_volume(*, terms: PlanTerms, usage_bytes: int) -> tuple[RatedLine, ...]:
    """One line: every unit at the price of the tier the total falls in, + that tier's flat fee.

    150 GB on 0-100 @ 3.00, 100-500 @ 2.00 + 5.00 -> 150 x 2.00 + 5.00 = 305.00. Zero usage
    falls in the first tier and charges nothing (its flat fee needs at least one unit).
    """
    quantity = usage_quantity(usage_bytes, terms.unit_bytes)
    index, lower, tier = _volume_tier(terms.tiers, quantity)
    with localcontext(prec=RATING_PRECISION):
        flat_fee = tier.flat_fee if quantity > 0 else Decimal(0)
        unrounded = quantity * tier.unit_price + flat_fee
    details = _base_details(terms, usage_bytes, quantity)
    details.update(_tier_details(index, lower, tier))
    details.update(flat_fee_charged=dstr(flat_fee), unrounded=dstr(unrounded))
    line = RatedLine(
        kind="usage",
        description=f"Traffic, volume {_tier_label(index, lower, tier.up_to)}",
        quantity=quantity,
        unit=GB,
        unit_price=tier.unit_price,
        amount=quantize_money(unrounded, terms.currency),
        details=details,
    )
    return (line,)


def rate_package(*, terms: PlanTerms, usage_bytes: int) -> tuple[RatedLine, ...]:
    """One line: usage rounded up to whole packages x package price.

    Packages of 100 GB for 20.00: 250 GB -> 3 x 20.00 = 60.00; 200 GB -> 2 x 20.00 = 40.00;
    1 byte -> 1 package; 0 bytes -> 0 packages = 0.00.
    """
    if terms.package_size is None or terms.package_price is None:
        raise ValueError("package rating needs package_size and package_price")
    quantity = usage_quantity(usage_bytes, terms.unit_bytes)
    with localcontext(prec=RATING_PRECISION):
        whole, remainder = divmod(quantity, terms.package_size)
        packages = whole + (1 if remainder else 0)
        unrounded = packages * terms.package_price
    details = _base_details(terms, usage_bytes, quantity)
    details.update(
        package_size_gb=dstr(terms.package_size),
        package_price=dstr(terms.package_price),
        packages=dstr(packages),
        unrounded=dstr(unrounded),
    )
    line = RatedLine(
        kind="usage",
        description=f"Traffic, packages of {dstr(terms.package_size)} GB",
        quantity=packages,
        unit="package",
        unit_price=terms.package_price,
        amount=quantize_money(unrounded, terms.currency),
        details=details,
    )
    return (line,)


_MODELS = {"graduated": rate_graduated, "volume": rate_volume, "package": rate_package}


def rate_usage(*, terms: PlanTerms, usage_bytes: int) -> tuple[RatedLine, ...]:
    """Usage lines for the summed bytes of one subscription, by the plan's pricing model.

    Sum the bytes of every sub-account in the subscription first (`usage_total`) and rate once:
    rating each sub-account separately would restart the tiers and round more than once.
    """
    _check_count(usage_bytes, "usage_bytes", minimum=0)
    return _MODELS[terms.pricing_model](terms=terms, usage_bytes=usage_bytes)


def usage_total(byte_counts: Iterable[int]) -> int:
    """Sum sub-account byte counts (non-negative ints) into the one figure a subscription rates."""
    total = 0
    for count in byte_counts:
        _check_count(count, "byte count", minimum=0)
        total += count
    return total
