from decimal import Decimal

import pytest

from billing.money import currency_exponent, format_money, is_quantized, quantize_money


@pytest.mark.parametrize(("currency", "exponent"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3)])
def test_currency_exponent_comes_from_babel(currency, exponent):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize("code", ["ABC", "usd", "", "US"])
def test_unknown_currency_code_raises_value_error(code):
    with pytest.raises(ValueError, match="unknown currency code"):
        currency_exponent(code)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("9.677419", "USD", "9.68"),
        ("0.005", "USD", "0.01"),
        ("0.004999", "USD", "0.00"),
        ("2.345", "USD", "2.35"),
        ("-0.005", "USD", "-0.01"),  # half up = away from zero, symmetric for credits
        ("125", "USD", "125.00"),
        ("0.5", "JPY", "1"),
        ("322.58", "JPY", "323"),
        ("1.2345", "KWD", "1.235"),
        ("0.0004", "KWD", "0.000"),
    ],
)
def test_quantize_money_rounds_half_up_to_the_minor_unit(amount, currency, expected):
    result = quantize_money(Decimal(amount), currency)
    assert str(result) == expected
    assert is_quantized(result, currency)


def test_quantize_money_rejects_float():
    with pytest.raises(TypeError, match="never float"):
        quantize_money(0.1, "USD")  # type: ignore[arg-type]


def test_quantize_money_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        quantize_money(Decimal("NaN"), "USD")


def test_is_quantized_checks_the_exact_exponent():
    assert is_quantized(Decimal("1.00"), "USD")
    assert not is_quantized(Decimal("1.0"), "USD")
    assert not is_quantized(Decimal("1.000"), "USD")
    assert is_quantized(Decimal("1"), "JPY")


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        ("1234.5", "USD", "en", "$1,234.50"),
        ("1234.5", "JPY", "en", "¥1,235"),
        ("1234.5", "EUR", "de", "1.234,50\xa0€"),
        ("1.2345", "KWD", "en", "KWD1.235"),
    ],
)
def test_format_money_shows_the_billed_figure(amount, currency, locale, expected):
    assert format_money(Decimal(amount), currency, locale) == expected
