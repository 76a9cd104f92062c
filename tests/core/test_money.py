"""`core.money`: the one parser of money input, its API field and its admin form field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django import forms
from rest_framework import serializers

from core.money import (
    NOT_PLAIN,
    NOT_TEXT,
    AmountFormField,
    AmountInputField,
    InvalidAmount,
    amount_pattern,
    decimal_places,
    parse_amount,
)

D = Decimal

#: Text that reads as a number to Python's `Decimal` (or to a person) but is not plain
#: decimal digits: every one is refused with the same message.
NOT_PLAIN_TEXT = [
    "1e400",
    "1E+999999",
    "1e-2",
    "1_0",
    "1_000.00",
    "١٢",  # Arabic-Indic digits
    "۱۲",  # Extended Arabic-Indic
    "１２",  # fullwidth
    "१२",  # Devanagari
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1,50",
    "1.000,50",
    "0x10",
    "+5",
    "--5",
    "1 0",
    "1.2.3",
    ".5",
    "5.",
    ".",
    "-",
    "",
    "   ",
    "10.50\n",
    "\u200b10",  # zero-width space
    "10\u00a0000",  # no-break space
    "1" * 65,
]


@pytest.mark.parametrize("text", NOT_PLAIN_TEXT)
def test_text_that_is_not_plain_decimal_digits_is_refused(text):
    with pytest.raises(InvalidAmount) as exc:
        parse_amount(text, places=2, allow_negative=True)
    assert exc.value.message == NOT_PLAIN
    assert exc.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("text", "places", "expected"),
    [
        ("10", 2, D("10")),
        ("10.50", 2, D("10.50")),
        ("10.500", 2, D("10.500")),  # trailing zeros are not places
        (" 7 ", 0, D("7")),
        ("\t0.001\t", 3, D("0.001")),
        ("007.5", 2, D("7.5")),
        ("0", 0, D("0")),
        ("0.000000", 0, D("0.000000")),
        ("99999999999999.99", 2, D("99999999999999.99")),  # 14 integer digits
        ("1.234567", 6, D("1.234567")),
    ],
)
def test_plain_decimals_within_bounds_are_read_exactly(text, places, expected):
    value = parse_amount(text, places=places)
    assert value == expected and str(value) == str(expected)


@pytest.mark.parametrize(
    ("value", "places", "message"),
    [
        ("100000000000000", 2, "At most 14 digits before the decimal point."),
        (10**14, 2, "At most 14 digits before the decimal point."),
        (D("1E+999999"), 2, "At most 14 digits before the decimal point."),
        ("10.005", 2, "At most 2 decimal places."),
        ("10.5", 0, "No decimal places allowed here (a whole number)."),
        ("0.01", 1, "At most 1 decimal place."),
        ("1.0000000000000000000000000001", 2, "At most 2 decimal places."),  # > 28 digits
        ("-5", 2, "Must not be negative."),
        (D("-0.01"), 2, "Must not be negative."),
    ],
)
def test_out_of_bounds_values_are_refused_with_the_bound(value, places, message):
    with pytest.raises(InvalidAmount) as exc:
        parse_amount(value, places=places)
    assert exc.value.message == message


def test_negatives_only_where_the_caller_allows_them():
    assert parse_amount("-12.50", places=2, allow_negative=True) == D("-12.50")
    assert parse_amount("-0", places=2) == 0 and not parse_amount("-0", places=2).is_signed()
    with pytest.raises(InvalidAmount):
        parse_amount("-12.50", places=2)


def test_the_integer_bound_is_the_callers():
    assert parse_amount("100", places=4, integer_digits=3) == D("100")
    with pytest.raises(InvalidAmount) as exc:
        parse_amount("1000", places=4, integer_digits=3)
    assert exc.value.message == "At most 3 digits before the decimal point."


@pytest.mark.parametrize("value", [10.5, 0.1, float("inf"), float("nan"), True, None, [], {}])
def test_floats_bools_and_other_types_are_refused(value):
    with pytest.raises(InvalidAmount) as exc:
        parse_amount(value, places=2)
    assert exc.value.message == NOT_TEXT


@pytest.mark.parametrize("value", [D("NaN"), D("Infinity"), D("-Infinity"), D("sNaN")])
def test_decimals_that_are_not_finite_are_refused(value):
    with pytest.raises(InvalidAmount):
        parse_amount(value, places=2, allow_negative=True)


def test_ints_and_decimals_from_code_pass_the_same_bounds():
    assert parse_amount(12, places=0) == D(12)
    assert parse_amount(D("12.50"), places=2) == D("12.50")
    assert parse_amount(D("1E+2"), places=0) == D(100)


@pytest.mark.parametrize(
    ("value", "places"),
    [(D("10"), 0), (D("10.500"), 1), (D("1E+2"), 0), (D("0.00"), 0), (D("1.000001"), 6)],
)
def test_decimal_places_ignore_trailing_zeros(value, places):
    assert decimal_places(value) == places


def test_the_schema_pattern_admits_only_what_the_parser_reads():
    assert amount_pattern(places=2, integer_digits=14, allow_negative=False) == (
        r"^[0-9]{1,14}(\.[0-9]{1,2})?$"
    )
    assert amount_pattern(places=0, integer_digits=3, allow_negative=True) == r"^-?[0-9]{1,3}$"


# --- the API field ---------------------------------------------------------------------------


class _Input(serializers.Serializer):
    amount = AmountInputField(places=4)
    rate = AmountInputField(max_digits=7, decimal_places=4, min_value=0, max_value=100)


def _errors(data, **context):
    serializer = _Input(data=data, context=context)
    assert not serializer.is_valid()
    return serializer.errors


def test_the_api_field_parses_and_refuses_with_code_invalid_amount():
    serializer = _Input(data={"amount": "12.5", "rate": "19.0000"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"amount": D("12.5"), "rate": D("19.0000")}
    errors = _errors({"amount": "1e400", "rate": "1_0"})
    assert errors["amount"][0].code == errors["rate"][0].code == "invalid_amount"
    assert str(errors["amount"][0]) == NOT_PLAIN


def test_the_api_field_takes_a_columns_digits_and_range():
    errors = _errors({"amount": "1", "rate": "100.00001"})
    assert errors == {"rate": ["At most 4 decimal places."]}
    assert _errors({"amount": "1", "rate": "1000"}) == {
        "rate": ["At most 3 digits before the decimal point."]
    }
    assert _errors({"amount": "1", "rate": "100.5"}) == {"rate": ["Must be at most 100."]}


def test_the_context_narrows_the_places_to_a_currency():
    assert _errors({"amount": "10.5", "rate": "1"}, amount_places=0) == {
        "amount": ["No decimal places allowed here (a whole number)."]
    }
    # never wider than the field's own places (the column's)
    assert _errors({"amount": "1.00001", "rate": "1"}, amount_places=8) == {
        "amount": ["At most 4 decimal places."]
    }


# --- the form field --------------------------------------------------------------------------


def test_the_form_field_shows_the_same_refusals_and_reads_empty_as_none():
    field = AmountFormField(required=False, places=2)
    assert field.clean("") is None
    assert field.clean("10.50") == D("10.50")
    for text in ("1e400", "1_0", "١٢"):
        with pytest.raises(forms.ValidationError) as exc:
            field.clean(text)
        assert exc.value.messages == [NOT_PLAIN] and exc.value.code == "invalid_amount"


def test_the_form_field_takes_a_model_columns_bounds():
    field = AmountFormField(max_digits=20, decimal_places=6)
    assert (field.places, field.integer_digits) == (6, 14)
    with pytest.raises(forms.ValidationError) as exc:
        field.clean("1.0000001")
    assert exc.value.messages == ["At most 6 decimal places."]
