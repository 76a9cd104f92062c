"""A customer's exposure: what it owes or will owe, in its currency (one selector, so the
API, the policy run and any screen show the same figure).

    exposure = balance due    (finalized monthly invoices: total net of credit notes, balance
                               applied and payments; paid/void 0)
             + unissued       (the last closed month while it has no issued invoice yet:
                               its own lines, as its draft will read, adjustments left out)
             + usage so far   (the open month rated by the invoice engine, as the API's
                               current-usage estimate: `invoice_preview`)
             + unused traffic (remaining bytes of its open sub-accounts, plus allocations
                               not in those figures yet, priced at its plans)
             - customer balance (credit held in the customer's currency, `billing.balance`:
                               not applied to any invoice yet, it pays the next ones)

A top-up invoice (`Invoice.kind == top_up`, `billing.topups`) is a prepayment, not a debt
for traffic: unpaid it counts nothing, paid its money is on the balance (a traffic pack's
bytes, once allocated, are in unused traffic, and the balance the pack bought pays them).
The balance is never below 0, but the exposure can be: a prepaid customer holding 500.00 of
balance that has used 100.00 has an exposure of -400.00, i.e. 400.00 more room than the
credit limit itself. The policy compares exposure plus the next chunk with `credit_limit`,
so that credit is what lets a prepaid customer be topped up (a limit of 0 means "prepaid
only": top up only what the balance covers).

Unused traffic is priced by the engine itself: rate(usage so far + unused) - rate(usage so
far), the unused bytes added to each sub-account's usage of today, so graduated, volume and
package plans price exactly the bytes that would be billed if the customer used them this
month. Traffic of a sub-account no subscription covers is priced at 0 (the engine would not
bill it). "Not in the figures yet": allocations pending or needing review, and confirmed
ones confirmed after the sub-account's stored traffic was read. A sub-account without a
stored figure counts only those allocations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, Sum

from accounts.models import Customer, SubAccount
from billing.balance.selectors import customer_balances
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.invoicing.compute import invoice_compute, invoice_preview
from billing.invoicing.context import RatingContext
from billing.invoicing.periods import Period, period_containing, period_last_closed
from billing.models import Invoice, InvoiceKind, InvoiceStatus
from billing.money import quantize_money
from billing.rating import invoice_totals
from usage.models import Allocation, SubAccountTraffic

ZERO = Decimal(0)
#: Allocations whose bytes the stored remaining figure may not show yet.
IN_FLIGHT = (Allocation.Status.PENDING, Allocation.Status.NEEDS_REVIEW)


@dataclass(frozen=True)
class Exposure:
    """The parts of a customer's exposure and their sum (Decimal, `currency`)."""

    currency: str
    as_of: dt.datetime
    balance_due: Decimal
    unissued: Decimal
    usage_so_far: Decimal
    unused_traffic: Decimal
    unused_bytes: int
    period_start: dt.date
    period_end: dt.date
    customer_balance: Decimal

    @property
    def total(self) -> Decimal:
        """The four parts owed less the balance held (negative: more credit than owed)."""
        owed = self.balance_due + self.unissued + self.usage_so_far + self.unused_traffic
        return owed - self.customer_balance


@dataclass(frozen=True)
class ExposureBase:
    """What the policy run prices chunks against: the fixed parts and the unused bytes per
    sub-account (see `exposure_with_extra`)."""

    customer: Customer
    period: Period
    today: dt.date
    balance_due: Decimal
    unissued: Decimal
    usage_so_far: Decimal
    unused_by_sub_account: Mapping[int, int]
    customer_balance: Decimal

    @property
    def fixed(self) -> Decimal:
        """What no top-up changes: balance due and the unissued month, less the balance."""
        return self.balance_due + self.unissued - self.customer_balance


class _WithExtraUsage(RatingContext):
    """The rating context of one customer whose sub-accounts used `extra` more bytes today:
    every active window containing `today` sees them (exactly one per sub-account and
    subscription, since windows of one subscription do not overlap)."""

    def __init__(self, *, customer: Customer, period: Period, today: dt.date, extra) -> None:
        super().__init__(customers=[customer], period=period)
        self._customer_id = customer.pk
        self._today = today
        self._extra = {pk: n for pk, n in extra.items() if n > 0}

    def usage(self, customer_id: int, start: dt.date, end: dt.date) -> dict[int, int]:
        held = super().usage(customer_id, start, end)
        if customer_id != self._customer_id or not (start <= self._today < end):
            return held
        merged = dict(held)  # never change the cached rows
        for pk, nbytes in self._extra.items():
            merged[pk] = merged.get(pk, 0) + nbytes
        return merged


def customer_balance_due(*, customer: Customer) -> Decimal:
    """The sum of `balance_due` over the customer's finalized (unpaid) monthly invoices (a
    top-up invoice is a prepayment: see the module text)."""
    invoices = invoices_with_credit_totals(
        Invoice.objects.filter(
            customer=customer, status=InvoiceStatus.FINALIZED, kind=InvoiceKind.PERIOD
        )
    )
    return Decimal(invoices.aggregate(s=Sum("balance_due"))["s"] or ZERO)


def _unissued(customer: Customer, period: Period) -> Decimal:
    issued = Invoice.objects.filter(
        customer=customer, period_start=period.start, kind=InvoiceKind.PERIOD
    ).exclude(status=InvoiceStatus.DRAFT)
    if issued.exists():  # issued (in balance due once finalized), or voided by staff
        return ZERO
    computation = invoice_preview(customer=customer, period_start=period.start)
    own = [line.amount for line in computation.lines if line.adjusts_invoice_id is None]
    if not own:
        return ZERO
    # Adjustments of earlier months are left out: the open month's preview carries them.
    return invoice_totals(
        amounts=own, tax_rate=computation.tax_rate, currency=computation.currency
    ).total


def unused_bytes_by_sub_account(*, customer: Customer) -> dict[int, int]:
    """Bytes allocated to the customer's open sub-accounts and not used yet (see the module
    text), by sub-account id; sub-accounts with none are left out."""
    held_open = SubAccount.objects.filter(customer=customer).exclude(
        status=SubAccount.Status.CLOSED
    )
    stored = SubAccountTraffic.objects.filter(sub_account__in=held_open)
    figures = {row.sub_account_id: row for row in stored}
    unused = {pk: max(row.remaining_bytes, 0) for pk, row in figures.items()}
    for sub_account_id, nbytes, status, confirmed_at in (
        Allocation.objects.filter(sub_account__in=held_open)
        .filter(Q(status__in=IN_FLIGHT) | Q(status=Allocation.Status.CONFIRMED))
        .values_list("sub_account_id", "bytes", "status", "confirmed_at")
    ):
        figure = figures.get(sub_account_id)
        if status == Allocation.Status.CONFIRMED and (
            figure is None or confirmed_at < figure.as_of
        ):
            continue  # in the stored figure already (or, without one, not known)
        unused[sub_account_id] = unused.get(sub_account_id, 0) + nbytes
    return {pk: n for pk, n in unused.items() if n > 0}


def exposure_base(*, customer: Customer, now: dt.datetime) -> ExposureBase:
    tz = customer.reseller.tzinfo
    period = period_containing(tz=tz, now=now)
    preview = invoice_preview(customer=customer, period_start=period.start)
    return ExposureBase(
        customer=customer,
        period=period,
        today=now.astimezone(tz).date(),
        balance_due=customer_balance_due(customer=customer),
        unissued=_unissued(customer, period_last_closed(tz=tz, now=now)),
        usage_so_far=preview.totals.total,
        unused_by_sub_account=unused_bytes_by_sub_account(customer=customer),
        # The customer's currency comes first (0 without a balance yet).
        customer_balance=customer_balances(customer=customer)[0].amount,
    )


def exposure_with_extra(*, base: ExposureBase, extra: Mapping[int, int]) -> Decimal:
    """The open month's total as rated with `extra` more bytes used today per sub-account id:
    rate(usage so far + extra). With `extra` = the unused bytes this is usage so far plus
    the value of unused traffic."""
    if not any(n > 0 for n in extra.values()):
        return base.usage_so_far
    context = _WithExtraUsage(
        customer=base.customer, period=base.period, today=base.today, extra=extra
    )
    return invoice_compute(customer=base.customer, period=base.period, context=context).totals.total


def customer_exposure(*, customer: Customer, now: dt.datetime) -> Exposure:
    """The customer's exposure now (see the module text)."""
    base = exposure_base(customer=customer, now=now)
    with_unused = exposure_with_extra(base=base, extra=base.unused_by_sub_account)
    currency = customer.currency

    def money(amount: Decimal) -> Decimal:
        return quantize_money(amount, currency)

    return Exposure(
        currency=currency,
        as_of=now,
        balance_due=money(base.balance_due),
        unissued=money(base.unissued),
        usage_so_far=money(base.usage_so_far),
        unused_traffic=money(with_unused - base.usage_so_far),
        unused_bytes=sum(base.unused_by_sub_account.values()),
        period_start=base.period.start,
        period_end=base.period.end,
        customer_balance=money(base.customer_balance),
    )
