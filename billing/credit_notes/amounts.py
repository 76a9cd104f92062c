"""Credit note arithmetic (pure): net, tax and total of one credit line, rounded once.

A gross amount (what the customer gets back, tax included) splits into net =
round(gross / (1 + rate)) and tax = gross - net, so the note's total is exactly what was
asked. A credited invoice line gives its net amount; its tax is round(net x rate). Rounding
is half up to the currency's minor unit (`billing.money`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.money import currency_exponent, quantize_money

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class CreditAmounts:
    amount: Decimal  # net
    tax: Decimal
    total: Decimal


def credit_from_gross(gross: Decimal, *, tax_rate: Decimal, currency: str) -> CreditAmounts:
    """60.00 at 20% -> 50.00 + 10.00 = 60.00."""
    net = quantize_money(gross * HUNDRED / (HUNDRED + tax_rate), currency)
    return CreditAmounts(amount=net, tax=gross - net, total=gross)


def credit_from_net(net: Decimal, *, tax_rate: Decimal, currency: str) -> CreditAmounts:
    """50.00 at 20% -> 50.00 + 10.00 = 60.00."""
    tax = quantize_money(net * tax_rate / HUNDRED, currency)
    return CreditAmounts(amount=net, tax=tax, total=net + tax)


def credit_remainder(
    *, subtotal_left: Decimal, total_left: Decimal, tax_rate: Decimal, currency: str
) -> CreditAmounts:
    """What is left of the invoice: its uncredited subtotal and tax exactly, unless earlier
    rounding made the split impossible (then the gross remainder splits like any amount)."""
    if Decimal(0) <= subtotal_left <= total_left:
        return CreditAmounts(amount=subtotal_left, tax=total_left - subtotal_left, total=total_left)
    return credit_from_gross(total_left, tax_rate=tax_rate, currency=currency)


def money_places_ok(value: Decimal, currency: str) -> bool:
    """True when `value` has no more decimals than the currency (12.50 USD yes, 12.505 no)."""
    exponent = value.normalize().as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= currency_exponent(currency)
