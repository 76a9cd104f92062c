"""Display formatting shared by the invoice PDF and the invoice email.

Amounts are shown with the currency's own exponent (USD 2, JPY 0, BHD 3) from `billing.money`
and rounded there (half up) before Babel formats them, so the text is always the billed
figure; invoices print ISO codes ("USD 1,234.50") rather than symbols, which are ambiguous
across dollars and yuan/yen. Unit prices keep up to six decimals because plans price
traffic in fractions of a cent. Dates are spelled "1 Oct 2026" in English on purpose: the same
document must render identically on any machine, whatever its locale.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel.numbers import format_currency, format_decimal

from billing.document import InvoiceDocument
from billing.money import currency_exponent, quantize_money

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PRICE_DECIMALS = 6


def amount(value: Decimal, currency: str) -> str:
    """A bare amount with the currency's decimals: 1234.5 USD -> "1,234.50", JPY -> "1,235"."""
    value = quantize_money(value, currency)
    return format_currency(value, currency, format="#,##0.00", locale="en", currency_digits=True)


def money(value: Decimal, currency: str) -> str:
    """An amount with its ISO code: "USD 1,234.50", "JPY 1,235", "-USD 12.50"."""
    value = quantize_money(value, currency)
    return format_currency(value, currency, format="¤¤ #,##0.00", locale="en", currency_digits=True)


def unit_price(value: Decimal, currency: str) -> str:
    """At least the currency's decimals, at most six: 0.850000 -> "0.85", 0.0125 -> "0.0125"."""
    exponent = currency_exponent(currency)
    fraction = "0" * exponent + "#" * max(PRICE_DECIMALS - exponent, 0)
    pattern = "#,##0" + (f".{fraction}" if fraction else "")
    return format_currency(value, currency, format=pattern, locale="en", currency_digits=False)


def quantity(value: Decimal, unit: str) -> str:
    """Traffic to three decimals (the line amount uses the exact figure); other units as is."""
    pattern = "#,##0.000" if unit.upper().endswith("B") else "#,##0.####"
    return format_decimal(value, format=pattern, locale="en")


def gigabytes(value: Decimal) -> str:
    return format_decimal(value, format="#,##0.000", locale="en")


def byte_count(value: int) -> str:
    return f"{value:,}"


def percent(value: Decimal) -> str:
    """A tax rate without noise: 8.2500 -> "8.25%", 20 -> "20%"."""
    return format_decimal(value, format="#,##0.####", locale="en") + "%"


def date_label(value: dt.date | None) -> str:
    if value is None:
        return "\u2014"
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def period_label(doc: InvoiceDocument) -> str:
    return f"{date_label(doc.period_start)} \u2013 {date_label(doc.period_end)}"


def invoice_label(doc: InvoiceDocument) -> str:
    """The number, or "DRAFT" while the invoice has none."""
    return doc.number or "DRAFT"
