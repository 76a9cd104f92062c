"""Display text of the dashboard (upstream cost itself is `billing.costs`).

Traffic on the dashboard is shown in GB of 1,073,741,824 bytes (the billing default).
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from billing.money import format_money
from core.formatting import gb_text

__all__ = ["gb_text", "money_text", "percent_text"]


def money_text(amount: Decimal | None, currency: str) -> str:
    return "-" if amount is None else format_money(amount, currency)


def percent_text(part: Decimal | None, whole: Decimal | None) -> str:
    if part is None or not whole:
        return "-"
    with localcontext(prec=50):
        return f"{part * 100 / whole:.0f}%"
