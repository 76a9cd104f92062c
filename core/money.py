"""Money input: the one function every amount, price or rate a person types passes through.

`parse_amount` is called by the API (`AmountInputField`), the admin (`AmountFormField`) and
by services given text. It accepts plain decimal text only:

- ASCII digits, optionally one "." followed by digits: `"10"`, `"10.50"`, `"0.5"`; a leading
  "-" only where the caller allows negatives; spaces or tabs around the number are ignored;
- never an exponent (`"1e400"`, `"1E+999999"`), underscores (`"1_0"`), thousands separators
  (`"1,000"`), non-ASCII digits (Arabic-Indic `"١٢"`, fullwidth `"１２"`), a "+" sign, a bare
  or trailing ".", whitespace inside, `"NaN"` or `"Infinity"`;
- at most `integer_digits` digits before the point (default 14: the `Decimal(20, 6)` price
  columns hold 14, the `Decimal(20, 4)` amount columns 16, so every column fits, and the
  arithmetic on it stays far from any precision limit) and at most `places` digits after it,
  trailing zeros not counted (`"10.500"` is 2 places). `places` is the caller's: the
  currency's exponent for an amount (USD 2, JPY 0, KWD 3: `billing.money.currency_exponent`),
  6 for a per-GB price, 4 for a tax rate in percent. Core knows no currencies.

A Python `int` (not a bool) or a finite `Decimal` (what code, not a person, passes) is
checked for the same range and places; a float is refused (it cannot say 0.1 exactly).

A bad value raises `InvalidAmount` with a message for people. The API field raises it as a
validation error with code `invalid_amount`, which `core.errors` answers as a 400 with that
code and `extra.fields` naming the field; the form field shows it on the field.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.db import models
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

#: Digits before the decimal point that any money column of Flowbill holds (see above).
MAX_INTEGER_DIGITS = 14
#: The longest text looked at (a longer one cannot be a valid amount: 14 + 1 + 1 + places).
MAX_TEXT_LENGTH = 64
#: The error code of every refusal (core.errors.ERROR_CODES).
INVALID_AMOUNT = "invalid_amount"

_PLAIN_DECIMAL = re.compile(r"[ \t]*(-?)([0-9]+)(?:\.([0-9]+))?[ \t]*", re.ASCII)


#: The refusals of a value that is not a plain decimal (text), or not text at all.
NOT_PLAIN = (
    'Give a plain decimal number such as "10.50": ASCII digits and at most one ".", '
    "without exponent, separators or spaces."
)
NOT_TEXT = 'Give a decimal number as text, e.g. "10.50".'


class InvalidAmount(ValueError):
    """The value is not an amount `parse_amount` accepts; `message` says why."""

    code = INVALID_AMOUNT

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _places_message(places: int) -> str:
    if places == 0:
        return "No decimal places allowed here (a whole number)."
    return f"At most {places} decimal place{'s' if places != 1 else ''}."


def _check(value: Decimal, *, places: int, integer_digits: int, allow_negative: bool) -> Decimal:
    if not value.is_finite():
        raise InvalidAmount(NOT_PLAIN)
    if value < 0 and not allow_negative:
        raise InvalidAmount("Must not be negative.")
    if value == 0:
        return abs(value)  # "-0" is 0
    if value.adjusted() >= integer_digits:
        raise InvalidAmount(f"At most {integer_digits} digits before the decimal point.")
    if decimal_places(value) > places:
        raise InvalidAmount(_places_message(places))
    return value


def decimal_places(value: Decimal) -> int:
    """Digits after the point, trailing zeros not counted ("10.500" -> 2), computed exactly
    (`normalize()` would round a value of more than 28 digits first)."""
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "a finite Decimal"
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing)) if any(digits) else 0


def parse_amount(
    value: Any,
    *,
    places: int,
    integer_digits: int = MAX_INTEGER_DIGITS,
    allow_negative: bool = False,
) -> Decimal:
    """`value` (text, int or Decimal) as a Decimal within the bounds, or `InvalidAmount`.

    >>> parse_amount("10.50", places=2), parse_amount(" 7 ", places=0)
    (Decimal('10.50'), Decimal('7'))
    """
    if isinstance(value, bool) or value is None:
        raise InvalidAmount(NOT_TEXT)
    if isinstance(value, str):
        match = _PLAIN_DECIMAL.fullmatch(value) if len(value) <= MAX_TEXT_LENGTH else None
        if match is None:
            raise InvalidAmount(NOT_PLAIN)
        sign, whole, fraction = match.groups()
        number = Decimal(f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}")
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    else:  # float, list, dict...: a float cannot say 0.1 exactly
        raise InvalidAmount(NOT_TEXT)
    return _check(
        number, places=places, integer_digits=integer_digits, allow_negative=allow_negative
    )


def _bounds(
    max_digits: int | None, decimal_places: int | None, places: int | None, integer_digits: int
) -> tuple[int, int]:
    """(places, integer digits), from a model column's `max_digits`/`decimal_places` when
    given (what DRF's ModelSerializer and Django's ModelForm pass), else as set."""
    if decimal_places is not None:
        places = decimal_places if places is None else min(places, decimal_places)
        if max_digits is not None:
            integer_digits = min(integer_digits, max_digits - decimal_places)
    if places is None:
        raise TypeError("give `places` (or a column's `decimal_places`)")
    return places, integer_digits


class _AmountBounds:
    """What both input fields (API and admin) share: their bounds, taken from the keyword
    arguments (`places` or a column's `max_digits`/`decimal_places`, `integer_digits`,
    `allow_negative`, `min_value`/`max_value`), and the parse within them."""

    def _take_bounds(self, kwargs: dict[str, Any]) -> None:
        """Pop the bounds from `kwargs` (the rest goes to the framework's field)."""
        self.places, self.integer_digits = _bounds(
            kwargs.pop("max_digits", None),
            kwargs.pop("decimal_places", None),
            kwargs.pop("places", None),
            kwargs.pop("integer_digits", MAX_INTEGER_DIGITS),
        )
        self.allow_negative = kwargs.pop("allow_negative", False)
        min_value, max_value = kwargs.pop("min_value", None), kwargs.pop("max_value", None)
        self.min_value = None if min_value is None else Decimal(min_value)
        self.max_value = None if max_value is None else Decimal(max_value)
        for unused in ("coerce_to_string", "localize", "rounding", "max_length", "step_size"):
            kwargs.pop(unused, None)

    def _parse(self, value: Any, places: int | None = None) -> Decimal:
        """`parse_amount` within the bounds (the lower and upper bound after parsing: a tax
        rate of 0..100); `InvalidAmount` otherwise."""
        number = parse_amount(
            value,
            places=self.places if places is None else places,
            integer_digits=self.integer_digits,
            allow_negative=self.allow_negative,
        )
        if self.min_value is not None and number < self.min_value:
            raise InvalidAmount(f"Must be at least {self.min_value}.")
        if self.max_value is not None and number > self.max_value:
            raise InvalidAmount(f"Must be at most {self.max_value}.")
        return number


class AmountInputField(_AmountBounds, serializers.Field):
    """An API input amount parsed by `parse_amount`; a bad value is `invalid_amount`.

    `places` (or, from a ModelSerializer, the column's `decimal_places`) bounds the
    decimals; a serializer context key `amount_places` narrows it for one request (the
    credited invoice's currency). Renders as a decimal string.
    """

    default_error_messages = {"invalid": "A valid number is required."}

    def __init__(self, **kwargs: Any):
        self._take_bounds(kwargs)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        places = min(self.context.get("amount_places", self.places), self.places)
        try:
            return self._parse(data, places)
        except InvalidAmount as exc:
            raise serializers.ValidationError(exc.message, code=INVALID_AMOUNT) from None

    def to_representation(self, value: Decimal) -> str:
        return format(value, "f")


def amount_pattern(*, places: int, integer_digits: int, allow_negative: bool) -> str:
    """The JSON-schema pattern of what `parse_amount` accepts (ASCII digits only)."""
    sign = "-?" if allow_negative else ""
    fraction = rf"(\.[0-9]{{1,{places}}})?" if places else ""
    return rf"^{sign}[0-9]{{1,{integer_digits}}}{fraction}$"


class AmountInputFieldSchema(OpenApiSerializerFieldExtension):
    """drf-spectacular: a decimal string with the field's own pattern."""

    target_class = AmountInputField

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema: dict[str, Any] = {
            "type": "string",
            "format": "decimal",
            "pattern": amount_pattern(
                places=field.places,
                integer_digits=field.integer_digits,
                allow_negative=field.allow_negative,
            ),
        }
        schema["example"] = {0: "10", 1: "10.5"}.get(field.places, "10.50")
        return schema


class AmountFormField(_AmountBounds, forms.Field):
    """The admin's amount input, parsed by `parse_amount`: a bad value is a form error on
    the field (code `invalid_amount`). Usable as a ModelForm `field_classes` entry: the
    column's `max_digits`/`decimal_places` bound it."""

    widget = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})

    def __init__(self, **kwargs: Any):
        self._take_bounds(kwargs)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Decimal | None:
        if value in self.empty_values:
            return None
        try:
            return self._parse(value)
        except InvalidAmount as exc:
            raise forms.ValidationError(exc.message, code=INVALID_AMOUNT) from None

    def prepare_value(self, value: Any) -> Any:
        return format(value, "f") if isinstance(value, Decimal) else value


#: `formfield_overrides` of an admin whose model has decimal columns: each becomes an
#: `AmountFormField` bounded by its column (`max_digits`, `decimal_places`).
ADMIN_FORMFIELD_OVERRIDES = {models.DecimalField: {"form_class": AmountFormField}}
