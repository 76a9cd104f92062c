"""The rules a plan's prices must satisfy, in one place (services, admin and API use them).

Pure: raw values in (Decimal, int or plain decimal text, read by `core.money.parse_amount`;
`None` where a field is absent), a dict of errors out, keyed by the field path the caller
names back to the user: `base_fee`, `tiers[0].up_to`, `tiers` (the list as a whole). An
empty dict means the plan can rate.

- currency: an ISO 4217 code Babel knows (upper case), whose exponent drives the next rule;
- fixed amounts (base fee, minimum charge, package price, a tier's flat fee) are money: not
  negative, and no finer than the currency's minor unit (JPY 10.5 is refused, USD 10.505 too);
- per-GB prices (a tier's unit price) and GB quantities (tier bounds, package size) fit the
  `Decimal(20, 6)` columns: at most 6 decimals and 14 integer digits;
- graduated and volume plans have at least one tier; bounds are positive and strictly
  ascending (a duplicate is not ascending); only the last tier is open-ended (`up_to` null);
- package plans have a package size above 0 and a package price, and no tiers; tiered plans
  have no package fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError

from accounts.validators import validate_currency
from billing.models import Plan
from billing.money import currency_exponent
from core.money import InvalidAmount, decimal_places, parse_amount

Errors = dict[str, list[str]]

#: The pricing models: the model field's choices (`Plan.PricingModel`), named once.
PRICING_MODELS = tuple(Plan.PricingModel.values)
#: Places and integer digits of the `Decimal(20, 6)` price and quantity columns.
PRICE_PLACES = 6
PRICE_INTEGER_DIGITS = 14
TIER_FIELDS = ("up_to", "unit_price", "flat_fee")


def _add(errors: Errors, path: str, message: str) -> None:
    errors.setdefault(path, []).append(message)


def parse_decimal(value: Any, path: str, errors: Errors) -> Decimal | None:
    """`value` as a Decimal read by `core.money.parse_amount` (plain decimal text, an int or
    a Decimal; never a float, an exponent or non-ASCII digits) that fits the columns (at most
    14 integer digits and 6 decimals), or None after recording why it is not one. A negative
    value is returned: the callers say "Must not be negative"."""
    try:
        return parse_amount(
            value,
            places=PRICE_PLACES,
            integer_digits=PRICE_INTEGER_DIGITS,
            allow_negative=True,
        )
    except InvalidAmount as exc:
        _add(errors, path, exc.message)
        return None


def check_price(value: Any, path: str, errors: Errors, *, positive: bool = False):
    """A per-GB price or a GB quantity: >= 0 (> 0 when `positive`), at most 6 decimals."""
    number = parse_decimal(value, path, errors)
    if number is None:
        return None
    if positive and number <= 0:
        _add(errors, path, "Must be greater than 0.")
    elif number < 0:
        _add(errors, path, "Must not be negative.")
    return number


def check_amount(value: Any, path: str, errors: Errors, currency: str | None):
    """A fixed amount of money: >= 0 and in the currency's minor unit (when it is known)."""
    number = parse_decimal(value, path, errors)
    if number is None:
        return None
    if number < 0:
        _add(errors, path, "Must not be negative.")
    elif currency is not None:
        exponent = currency_exponent(currency)
        if decimal_places(number) > exponent:
            _add(
                errors,
                path,
                f"{currency} amounts have no decimals."
                if exponent == 0
                else f"{currency} amounts have at most {exponent} decimal places.",
            )
    return number


def check_currency(value: Any, errors: Errors) -> str | None:
    """The currency if it is an ISO 4217 code in circulation (`accounts.validators`, the
    rule customers and resellers follow too), else None (error recorded)."""
    try:
        validate_currency(value)
    except (ValidationError, TypeError):
        _add(
            errors,
            "currency",
            f"{value!r} is not an ISO 4217 currency code in circulation (e.g. USD).",
        )
        return None
    return value


def tier_values(tier: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    """A tier given as a mapping or as `(up_to, unit_price[, flat_fee])`, as a dict."""
    pairs = tier.items() if isinstance(tier, Mapping) else zip(TIER_FIELDS, tier, strict=False)
    values = dict(pairs)
    values.setdefault("up_to", None)
    values.setdefault("flat_fee", Decimal(0))
    return values


def _check_tiers(tiers: Sequence[Any], model: str, currency: str | None, errors: Errors) -> None:
    if not tiers:
        _add(errors, "tiers", f"A {model} plan needs at least one tier.")
        return
    previous: Decimal | None = Decimal(0)
    last = len(tiers) - 1
    for index, raw in enumerate(tiers):
        tier = tier_values(raw)
        path = f"tiers[{index}]"
        if "unit_price" not in tier or tier["unit_price"] is None:
            _add(errors, f"{path}.unit_price", "This field is required.")
        else:
            check_price(tier["unit_price"], f"{path}.unit_price", errors)
        check_amount(tier["flat_fee"], f"{path}.flat_fee", errors, currency)
        if tier["up_to"] is None:
            if index != last:
                _add(errors, f"{path}.up_to", "Only the last tier is open-ended; give its bound.")
            previous = None
            continue
        if index == last:
            _add(errors, f"{path}.up_to", "The last tier must be open-ended (up_to empty).")
        bound = check_price(tier["up_to"], f"{path}.up_to", errors, positive=True)
        if bound is None or bound <= 0 or f"{path}.up_to" in errors:
            previous = None
            continue
        if previous is not None and bound <= previous:
            shown = format(previous.normalize(), "f")
            _add(errors, f"{path}.up_to", f"Must be above the previous tier's bound ({shown}).")
        previous = bound


def plan_rules_errors(
    *,
    pricing_model: Any,
    currency: Any,
    base_fee: Any = Decimal(0),
    minimum_charge: Any = Decimal(0),
    package_size: Any = None,
    package_price: Any = None,
    tiers: Sequence[Any] | None = (),
) -> Errors:
    """Every rule a plan breaks, by field path. `tiers=None` skips the tier rules (a form
    that validates the tiers separately)."""
    errors: Errors = {}
    valid_currency = check_currency(currency, errors)
    check_amount(base_fee, "base_fee", errors, valid_currency)
    check_amount(minimum_charge, "minimum_charge", errors, valid_currency)
    if pricing_model not in PRICING_MODELS:
        _add(errors, "pricing_model", f"One of {', '.join(PRICING_MODELS)}.")
        return errors
    if pricing_model == Plan.PricingModel.PACKAGE:
        if tiers:
            _add(errors, "tiers", "Package plans have no tiers.")
        if package_size is None:
            _add(errors, "package_size", "A package plan needs a package size (GB).")
        else:
            check_price(package_size, "package_size", errors, positive=True)
        if package_price is None:
            _add(errors, "package_price", "A package plan needs a package price.")
        else:
            check_amount(package_price, "package_price", errors, valid_currency)
        return errors
    for name, value in (("package_size", package_size), ("package_price", package_price)):
        if value is not None:
            _add(errors, name, "Only package plans have this.")
    if tiers is not None:
        _check_tiers(tiers, pricing_model, valid_currency, errors)
    return errors
