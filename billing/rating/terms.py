"""Frozen inputs and outputs of rating, and the one conversion from bytes to billed units.

Everything here is plain `Decimal`/`int`: no ORM, no settings. Invoicing builds `PlanTerms`
from a `Plan` row, sums the bytes of all sub-accounts of a subscription, and rates the sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any, Literal, get_args

from billing.money import currency_exponent

PricingModel = Literal["graduated", "volume", "package"]
LineKind = Literal["base_fee", "usage", "minimum"]

#: 1 GB = 1024 MB = 1,073,741,824 bytes, the default billing unit (1,000,000,000 selectable).
DEFAULT_UNIT_BYTES = 1_073_741_824
#: Significant digits for every intermediate figure. bytes / 2**30 has at most 30 decimals and
#: a price at most 6, so products of realistic figures are exact well inside this.
RATING_PRECISION = 100


def _check_decimal(value: object, name: str, *, positive: bool = False) -> None:
    """Prices must be Decimal (never float), finite and non-negative (positive when asked)."""
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal (never float), got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be greater than 0, got {value}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _check_count(value: object, name: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def usage_quantity(usage_bytes: int, unit_bytes: int) -> Decimal:
    """Billed units (GB) for a byte count: bytes / unit bytes, exact, never rounded.

    1,610,612,736 bytes / 1,073,741,824 = 1.5 GB; 1,500,000,000 / 1,000,000,000 = 1.5 GB;
    1 byte / 2**30 = 0.000000000931322574615478515625 GB (every digit kept). Units of the form
    2**a * 5**b (both selectable units are) always divide exactly; any other unit keeps
    RATING_PRECISION significant digits.
    """
    _check_count(usage_bytes, "usage_bytes", minimum=0)
    _check_count(unit_bytes, "unit_bytes", minimum=1)
    with localcontext(prec=RATING_PRECISION):
        return Decimal(usage_bytes) / Decimal(unit_bytes)


@dataclass(frozen=True)
class Tier:
    """One price band. `up_to` is in billed GB (None = no limit); it covers (previous, up_to].

    Tier(up_to=Decimal("100"), unit_price=Decimal("0")) is an included 100 GB allowance.
    """

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        if self.up_to is not None:
            _check_decimal(self.up_to, "tier up_to", positive=True)
        _check_decimal(self.unit_price, "tier unit_price")
        _check_decimal(self.flat_fee, "tier flat_fee")


@dataclass(frozen=True)
class PlanTerms:
    """What a plan charges, frozen for one rating run.

    Validated on construction so a bad plan fails loudly before any invoice is written:
    graduated/volume need ascending tiers whose last one is unlimited; package needs
    package_size > 0 and package_price; every price is a non-negative Decimal. Fields another
    model uses (tiers on a package plan, package fields on a tiered plan) are ignored, so a
    plan that switched model keeps rating by the model it has now.
    """

    currency: str
    pricing_model: PricingModel
    unit_bytes: int = DEFAULT_UNIT_BYTES
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal | None = None
    package_price: Decimal | None = None
    base_fee: Decimal = Decimal("0")
    minimum_charge: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        currency_exponent(self.currency)  # unknown currency -> ValueError
        if self.pricing_model not in get_args(PricingModel):
            raise ValueError(
                f"pricing_model must be one of {get_args(PricingModel)}, got {self.pricing_model!r}"
            )
        _check_count(self.unit_bytes, "unit_bytes", minimum=1)
        _check_decimal(self.base_fee, "base_fee")
        _check_decimal(self.minimum_charge, "minimum_charge")
        object.__setattr__(self, "tiers", tuple(self.tiers))
        for tier in self.tiers:
            if not isinstance(tier, Tier):
                raise TypeError(f"tiers must hold Tier objects, got {type(tier).__name__}")
        if self.pricing_model == "package":
            self._validate_package()
        else:
            self._validate_tiers()

    def _validate_tiers(self) -> None:
        model = self.pricing_model
        if not self.tiers:
            raise ValueError(f"a {model} plan needs at least one tier")
        if self.tiers[-1].up_to is not None:
            raise ValueError(f"the last tier of a {model} plan must be unlimited (up_to=None)")
        previous = Decimal(0)
        for index, tier in enumerate(self.tiers[:-1], start=1):
            if tier.up_to is None:
                raise ValueError(f"only the last tier may be unlimited; tier {index} is not last")
            if tier.up_to <= previous:
                raise ValueError(
                    f"tiers must be strictly ascending: tier {index} up_to {tier.up_to} "
                    f"is not above {previous}"
                )
            previous = tier.up_to

    def _validate_package(self) -> None:
        if self.package_size is None or self.package_price is None:
            raise ValueError("a package plan needs both package_size and package_price")
        _check_decimal(self.package_size, "package_size", positive=True)
        _check_decimal(self.package_price, "package_price")


@dataclass(frozen=True)
class RatedLine:
    """One invoice line as rating produced it.

    `amount` is quantised once to the currency; `details` is JSON-serialisable (Decimals as
    strings, byte counts as ints) and keeps the unrounded amount and how it was computed.
    """

    kind: LineKind
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None
    amount: Decimal
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def unit_note(unit_bytes: int) -> str:
    """The unit definition printed on invoices: 1,073,741,824 -> "1 GB = 1,073,741,824 bytes"."""
    _check_count(unit_bytes, "unit_bytes", minimum=1)
    return f"1 GB = {unit_bytes:,} bytes"


def dstr(value: Decimal) -> str:
    """Plain (non-scientific) text for a Decimal in line details: 1E+2 -> "100"."""
    return format(value, "f")
