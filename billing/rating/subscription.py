"""A subscription's lines for one period (base fee, usage, minimum top-up) and invoice totals.

Worked examples (tested in tests/billing/test_rating.py), USD unless stated:
- Base fee 30.00, active 10 of 31 days -> 30.00 x 10 / 31 = 9.677419... -> 9.68.
  Active 30 of 30 days -> 30.00 exactly (a full period is never prorated).
- Minimum 50.00, base fee 10.00, usage 25.00 -> top-up line 15.00 (subscription = 50.00).
  Usage 45.00 -> no top-up (55.00 > 50.00).
- Minimum 50.00 for 10 of 31 days -> 16.129032... -> 16.13 is the prorated minimum.
- Tax 19% on a subtotal of 123.45 -> 23.4555 -> 23.46; total 146.91.
- JPY base fee 1,000 for 15 of 30 days -> 500; 1 yen x 0.5 -> 1 (0 decimals, half up).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext

from billing.money import currency_exponent, quantize_money
from billing.rating.charges import rate_usage
from billing.rating.terms import (
    RATING_PRECISION,
    PlanTerms,
    RatedLine,
    Totals,
    _check_count,
    _check_decimal,
    dstr,
)


def _check_days(active_days: int, period_days: int) -> None:
    _check_count(period_days, "period_days", minimum=1)
    _check_count(active_days, "active_days", minimum=0)
    if active_days > period_days:
        raise ValueError(f"active_days ({active_days}) exceeds period_days ({period_days})")


def prorate(amount: Decimal, *, active_days: int, period_days: int) -> Decimal:
    """amount x active_days / period_days, unrounded; a full period returns `amount` itself.

    30.00 for 10 of 31 days -> 9.677419354838709677... (rounded later, once, to 9.68).
    """
    _check_days(active_days, period_days)
    if active_days == period_days:
        return amount
    with localcontext(prec=RATING_PRECISION):
        return amount * active_days / period_days


def _proration_details(active_days: int, period_days: int) -> dict[str, object]:
    return {
        "active_days": active_days,
        "period_days": period_days,
        "proration": f"{active_days}/{period_days}",
    }


def _base_fee_line(terms: PlanTerms, active_days: int, period_days: int) -> RatedLine:
    unrounded = prorate(terms.base_fee, active_days=active_days, period_days=period_days)
    full = active_days == period_days
    details = {"base_fee": dstr(terms.base_fee), "unrounded": dstr(unrounded)}
    details.update(_proration_details(active_days, period_days))
    return RatedLine(
        kind="base_fee",
        description="Base fee" if full else f"Base fee ({active_days} of {period_days} days)",
        quantity=Decimal(1) if full else Decimal(active_days),
        unit="month" if full else "day",
        unit_price=terms.base_fee if full else None,
        amount=quantize_money(unrounded, terms.currency),
        details=details,
    )


def _minimum_line(
    terms: PlanTerms, charged: Decimal, active_days: int, period_days: int
) -> RatedLine | None:
    prorated = prorate(terms.minimum_charge, active_days=active_days, period_days=period_days)
    minimum = quantize_money(prorated, terms.currency)
    if charged >= minimum:
        return None
    top_up = minimum - charged
    details = {
        "minimum_charge": dstr(terms.minimum_charge),
        "prorated_minimum_unrounded": dstr(prorated),
        "minimum": dstr(minimum),
        "charged_before_top_up": dstr(charged),
        "unrounded": dstr(top_up),
    }
    details.update(_proration_details(active_days, period_days))
    return RatedLine(
        kind="minimum",
        description=f"Minimum charge top-up (minimum {dstr(minimum)})",
        quantity=Decimal(1),
        unit="top-up",
        unit_price=top_up,
        amount=top_up,
        details=details,
    )


def subscription_amount(lines: Iterable[RatedLine]) -> Decimal:
    """What a subscription's lines charge: the sum of their (already rounded) amounts.

    Late usage: adjustment = subscription_amount(re-rated lines) - amount billed before.
    """
    return sum((line.amount for line in lines), Decimal(0))


def rate_subscription(
    *, terms: PlanTerms, usage_bytes: int, active_days: int, period_days: int
) -> tuple[RatedLine, ...]:
    """Base fee line (prorated), usage lines, then a minimum top-up line when needed.

    `usage_bytes` is the sum over every sub-account of the subscription for the period. No base
    fee line is written when the plan has no base fee. The top-up brings base fee + usage up to
    the prorated minimum, rounded once: minimum 50.00, base 10.00, usage 25.00 -> top-up 15.00.
    """
    _check_days(active_days, period_days)
    lines: list[RatedLine] = []
    if terms.base_fee > 0:
        lines.append(_base_fee_line(terms, active_days, period_days))
    lines.extend(rate_usage(terms=terms, usage_bytes=usage_bytes))
    if terms.minimum_charge > 0:
        top_up = _minimum_line(terms, subscription_amount(lines), active_days, period_days)
        if top_up is not None:
            lines.append(top_up)
    return tuple(lines)


def invoice_totals(*, amounts: Iterable[Decimal], tax_rate: Decimal, currency: str) -> Totals:
    """subtotal = sum of rounded line amounts; tax = subtotal x rate / 100, rounded once.

    19% on 123.45 -> 23.4555 -> 23.46, total 146.91. Amounts may be negative (credits and
    adjustments) but must already be rounded to the currency (trailing zeros are fine, e.g.
    "125.0000" from a 4-decimal column): rounding happens per line, never on the sum.
    """
    _check_decimal(tax_rate, "tax_rate")
    exponent = currency_exponent(currency)
    subtotal = Decimal(0)
    with localcontext(prec=RATING_PRECISION):
        for amount in amounts:
            if not isinstance(amount, Decimal) or quantize_money(amount, currency) != amount:
                raise ValueError(
                    f"line amount {amount!r} is not rounded to {currency} ({exponent} decimals)"
                )
            subtotal += amount
        # The sum of rounded amounts is exact; quantising only sets the exponent ("125.0000"
        # read back from a 4-decimal column becomes "125.00").
        subtotal = quantize_money(subtotal, currency)
        tax = quantize_money(subtotal * tax_rate / 100, currency)
        total = subtotal + tax
    return Totals(subtotal=subtotal, tax=tax, total=total)
