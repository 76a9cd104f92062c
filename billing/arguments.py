"""Service arguments shared by billing's services: the 400 naming a field, and a positive
money amount read by the one money parser (`core.money`) with the currency's decimals (for
callers other than the API and the admin too: shell, tasks)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing.money import currency_exponent, quantize_money
from core.errors import ApplicationError
from core.money import InvalidAmount, parse_amount


def field_error(code: str, field: str, message: str) -> ApplicationError:
    return ApplicationError(code, message, extra={"fields": {field: [message]}})


def positive_amount(value: Any, *, currency: str, field: str = "amount") -> Decimal:
    """Plain decimal digits, bounded, the currency's decimals, above 0 (else 400
    `invalid_amount` naming `field`)."""
    try:
        amount = parse_amount(value, places=currency_exponent(currency))
    except InvalidAmount as exc:
        raise field_error("invalid_amount", field, exc.message) from None
    if amount <= 0:
        raise field_error("invalid_amount", field, "The amount must be above 0.")
    return quantize_money(amount, currency)
