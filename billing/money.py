"""Money helpers: the currency's minor unit, rounding once, and display.

The number of decimals of a currency comes from Babel's CLDR data (a maintained table), never
from a hand-written list: USD 2, EUR 2, JPY 0, KWD 3. Every invoice line amount and every tax
figure passes through `quantize_money` exactly once, half up (0.005 USD -> 0.01, 0.5 JPY -> 1).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from babel.numbers import format_currency, get_currency_precision, is_currency

# Enough significant digits that quantising any realistic amount never hits the context limit.
MONEY_PRECISION = 100


def currency_exponent(currency: str) -> int:
    """Number of decimals of `currency` (ISO 4217, upper case): USD 2, JPY 0, KWD 3.

    Babel answers 2 for codes it does not know, so the code is checked first: an unknown or
    lower-case code is a programming or data error and raises ValueError instead of silently
    billing in cents.
    """
    if not isinstance(currency, str) or not is_currency(currency):
        raise ValueError(f"unknown currency code {currency!r} (expected ISO 4217, e.g. 'USD')")
    return get_currency_precision(currency)


def _require_decimal(amount: object, name: str = "amount") -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"{name} must be a Decimal (never float), got {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """Round `amount` to the currency's minor unit, ROUND_HALF_UP (away from zero on a half).

    >>> quantize_money(Decimal("9.677419"), "USD"), quantize_money(Decimal("0.005"), "USD")
    (Decimal('9.68'), Decimal('0.01'))
    >>> quantize_money(Decimal("0.5"), "JPY"), quantize_money(Decimal("1.2345"), "KWD")
    (Decimal('1'), Decimal('1.235'))
    """
    value = _require_decimal(amount)
    exponent = currency_exponent(currency)
    with localcontext(prec=MONEY_PRECISION):
        return value.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)


def is_quantized(amount: Decimal, currency: str) -> bool:
    """True when `amount` carries exactly the currency's decimals (what a stored line holds)."""
    value = _require_decimal(amount)
    return value.as_tuple().exponent == -currency_exponent(currency)


def format_money(amount: Decimal, currency: str, locale: str = "en") -> str:
    """Format for people (PDFs, emails) with Babel: ("1234.5", USD, en) -> "$1,234.50".

    The amount is quantised first so the text always shows the billed figure; JPY prints
    without decimals ("¥1,235").
    """
    value = quantize_money(amount, currency)
    return format_currency(value, currency, locale=locale)
