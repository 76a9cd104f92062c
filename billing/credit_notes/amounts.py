"""Credit note arithmetic (pure): the net and tax one credit takes of an invoice.

An invoice has a net subtotal and a tax rounded once on it; each of its lines has a net
amount and a tax of its own, round(amount x rate). Over all credit notes of an invoice the
credited net never exceeds the subtotal and the credited tax never exceeds the tax; for line
credits the same holds per line. Every figure is rounded half up to the currency's minor unit
(`billing.money`), and is cumulative: a note takes the rounded target for everything credited
so far minus what earlier notes took, so many small credits converge on the invoice's figures
instead of rounding the same way each time.

- A gross amount (tax included; `None`: all that is left) splits at the invoice's own
  net/total ratio: after the note, round(credited total x subtotal / total) of net is
  credited; the note's net is that minus the net credited before (kept within what is left of
  each component), its tax the rest. On 0.05 + 100 % tax, ten credits of 0.01 take
  0.05 + 0.05 (0.01 + 0.00, then 0.00 + 0.01, ...), never 0.10 + 0.00; the credit that takes
  what is left takes exactly the uncredited net and tax.
- A line's net amount: its tax is round(credited net of the line x rate) minus the tax already
  credited on the line, kept within what is left of the line's tax and of the invoice's tax.

Refusals are `CreditRefused` (the service turns them into a 409): more than is left of the
invoice (`credit_exceeds_invoice`: its total for an amount, its subtotal for lines) or of a
line (`credit_exceeds_line`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from billing.money import MONEY_PRECISION, quantize_money

HUNDRED = Decimal(100)
ZERO = Decimal(0)


@dataclass(frozen=True)
class NetTax:
    """A net amount and its tax: an invoice's, a line's, what was credited of them, a credit."""

    net: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.net + self.tax

    def __add__(self, other: NetTax) -> NetTax:
        return NetTax(self.net + other.net, self.tax + other.tax)

    def left_after(self, credited: NetTax) -> NetTax:
        """What is left of each component once `credited` is taken, never below 0 (notes
        issued before the per-component rule may have taken too much of one)."""
        return NetTax(max(self.net - credited.net, ZERO), max(self.tax - credited.tax, ZERO))


NOTHING = NetTax(ZERO, ZERO)


@dataclass(frozen=True)
class Credited:
    """What an invoice's notes credited: in all, and per invoice line id by line credits."""

    overall: NetTax = NOTHING
    lines: Mapping[int, NetTax] = field(default_factory=dict)


class CreditRefused(Exception):
    """The credit is more than is left: a stable `code`, a message, and `extra` details."""

    def __init__(self, code: str, message: str, extra: dict[str, Any]):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def line_tax(net: Decimal, *, tax_rate: Decimal, currency: str) -> Decimal:
    """The tax of a line's net amount, rounded once: 0.10 at 25 % -> 0.03 (0.025 half up)."""
    return quantize_money(net * tax_rate / HUNDRED, currency)


def credit_split_gross(
    gross: Decimal | None, *, invoice: NetTax, credited: NetTax, currency: str
) -> NetTax:
    """Split a gross credit (`None`: all that is left) of an invoice whose subtotal and tax
    are `invoice`, of which `credited` is credited already (see the module docstring).

    150.00 + 30.00, nothing credited: 60.00 -> 50.00 + 10.00; then None -> 100.00 + 20.00."""
    left = invoice.left_after(credited)
    total_left = _total_left(invoice, credited, currency)
    requested = total_left if gross is None else gross
    if requested > total_left or total_left <= 0:
        raise CreditRefused(
            "credit_exceeds_invoice",
            f"Only {total_left} {currency} is left to credit on this invoice.",
            {"remaining": str(total_left), "requested": str(requested)},
        )
    target = ZERO
    if invoice.total > 0:
        with localcontext(prec=MONEY_PRECISION):
            after = credited.total + requested
            target = quantize_money(after * invoice.net / invoice.total, currency)
    # Anything in [requested - tax left, net left] keeps both components within the invoice;
    # the interval is never empty because requested <= net left + tax left.
    net = min(max(target - credited.net, requested - left.tax, ZERO), requested, left.net)
    net = quantize_money(net, currency)
    return NetTax(net, quantize_money(requested - net, currency))


def credit_split_lines(
    requests: Sequence[tuple[int, Decimal]],
    *,
    lines: Mapping[int, Decimal],
    invoice: NetTax,
    credited: Credited,
    tax_rate: Decimal,
    currency: str,
) -> list[NetTax]:
    """Net amounts of invoice lines, `(line id, net)` each (ids of `lines`, which maps every
    line id of the invoice to its net amount, each id once): one split per request.

    Line 100.00 at 20 %: 40.00 -> 40.00 + 8.00; then 60.00 -> 60.00 + 12.00; then 0.01 is
    refused (`credit_exceeds_line`)."""
    left = invoice.left_after(credited.overall)
    tax_left = left.tax
    splits = []
    for line_id, net in requests:
        amount = lines[line_id]
        before = credited.lines.get(line_id, NOTHING)
        line_left = NetTax(amount, line_tax(amount, tax_rate=tax_rate, currency=currency))
        line_left = line_left.left_after(before)
        if net > line_left.net:
            remaining = quantize_money(line_left.net, currency)
            raise CreditRefused(
                "credit_exceeds_line",
                f"Only {remaining} {currency} of line {line_id} is left to credit.",
                {"line": line_id, "remaining": str(remaining), "requested": str(net)},
            )
        target = line_tax(before.net + net, tax_rate=tax_rate, currency=currency)
        tax = min(max(target - before.tax, ZERO), line_left.tax, tax_left)
        tax_left -= tax
        splits.append(NetTax(quantize_money(net, currency), quantize_money(tax, currency)))
    requested = sum(splits, start=NOTHING)
    total_left = _total_left(invoice, credited.overall, currency)
    if requested.net > left.net or requested.total > total_left:
        net_left = quantize_money(left.net, currency)
        raise CreditRefused(
            "credit_exceeds_invoice",
            f"Only {net_left} {currency} of this invoice's subtotal is left to credit.",
            {
                "remaining": str(total_left),
                "requested": str(requested.total),
                "remaining_subtotal": str(net_left),
                "requested_subtotal": str(requested.net),
            },
        )
    return splits


def _total_left(invoice: NetTax, credited: NetTax, currency: str) -> Decimal:
    """What is left of the invoice's total: never more than what is left of its net and tax
    together, nor than its total minus everything credited (whichever component it was)."""
    left = min(invoice.left_after(credited).total, invoice.total - credited.total)
    return quantize_money(max(left, ZERO), currency)
