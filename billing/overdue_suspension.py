"""Automatic suspension of customers who do not pay, and reinstatement once they have.

A reseller with `suspend_after_overdue_days` set (null: never) has each active customer
suspended (`usage.services.suspension.customer_suspend`, `by="overdue"`) as soon as it holds
an **overdue invoice**: finalized (not paid, not void), an amount still due after its credit
notes (`balance_due > 0`, billing.credit_notes.selectors), and a due date at least that many
days before today in the reseller's timezone (`due_on <= today - days`). The reason names the
invoices. A customer suspended `by="overdue"` is reinstated (`by="overdue"`) once it holds no
overdue invoice any more: paid, voided or credited in full. When the reseller has switched
the rule off meanwhile, "overdue" means any amount past its due date. A staff suspension is
never lifted automatically, and a staff-suspended customer is never re-marked as overdue.

`customers_suspend_overdue` (beat, every 15 minutes) walks every reseller;
`customer_overdue_check` does one customer and runs right after an invoice is marked paid.
Known limit: staff reinstating an overdue customer whose invoice is still overdue sees it
suspended again by the next pass (record the payment, or credit the invoice, first).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db.models import QuerySet

from accounts.models import Customer, Reseller
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.models import Invoice, InvoiceStatus
from core.errors import ApplicationError
from usage.services.suspension import customer_reinstate, customer_suspend

logger = logging.getLogger(__name__)

ACTOR = "system (overdue invoices)"
OVERDUE = Customer.SuspendedBy.OVERDUE


@dataclass
class OverdueResult:
    suspended: list[int] = field(default_factory=list)
    reinstated: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[int]]:
        return {"suspended": self.suspended, "reinstated": self.reinstated}


def overdue_cutoff(reseller: Reseller, now: dt.datetime, days: int | None = None) -> dt.date:
    """Invoices due on or before this day are overdue (`days` None: due before today, the
    one definition of "overdue" the dashboard, the API, dunning and suspension use)."""
    today = now.astimezone(reseller.tzinfo).date()
    return today - dt.timedelta(days=days if days is not None else 1)


def invoices_overdue(*, reseller: Reseller, now: dt.datetime, days: int | None) -> QuerySet:
    """The reseller's finalized invoices with an amount still due whose due date is `days`
    or more days past (see the module docstring)."""
    invoices = Invoice.objects.for_reseller(reseller).filter(
        status=InvoiceStatus.FINALIZED,
        due_on__isnull=False,
        due_on__lte=overdue_cutoff(reseller, now, days),
    )
    return invoices_with_credit_totals(invoices).filter(balance_due__gt=0)


def _reason(numbers: list[str], days: int) -> str:
    listed = ", ".join(numbers)
    reason = f"Invoice {listed} unpaid {days} days or more after its due date."
    if len(numbers) > 1:
        reason = f"Invoices {listed} unpaid {days} days or more after their due dates."
    return reason if len(reason) <= 500 else reason[:497] + "..."


def _apply(
    customer: Customer, numbers: list[str], days: int | None, now, result: OverdueResult
) -> None:
    """Suspend or reinstate one customer given its overdue invoice numbers."""
    try:
        if numbers and customer.status == Customer.Status.ACTIVE and days is not None:
            customer_suspend(
                customer=customer, reason=_reason(numbers, days), by=OVERDUE, actor=ACTOR, now=now
            )
            result.suspended.append(customer.pk)
        elif (
            not numbers
            and customer.status == Customer.Status.SUSPENDED
            and customer.suspended_by == OVERDUE
        ):
            customer_reinstate(customer=customer, actor=ACTOR, now=now, by=OVERDUE)
            result.reinstated.append(customer.pk)
    except ApplicationError as exc:  # changed meanwhile (e.g. staff acted first): next pass
        logger.info("overdue check of customer %s: %s", customer.pk, exc)


def _overdue_numbers(reseller: Reseller, now: dt.datetime, days: int | None) -> dict[int, list]:
    rows = (
        invoices_overdue(reseller=reseller, now=now, days=days)
        .order_by("customer_id", "due_on", "pk")
        .values_list("customer_id", "number")
    )
    numbers: dict[int, list[str]] = {}
    for customer_id, number in rows:
        numbers.setdefault(customer_id, []).append(number)
    return numbers


def customers_suspend_overdue(*, now: dt.datetime) -> OverdueResult:
    """One pass over every reseller (see the module docstring)."""
    result = OverdueResult()
    for reseller in Reseller.objects.order_by("pk"):
        days = reseller.suspend_after_overdue_days
        overdue = _overdue_numbers(reseller, now, days)
        candidates = Customer.objects.filter(reseller=reseller).select_related("reseller")
        if days is None:  # switched off: only lift earlier automatic suspensions
            candidates = candidates.filter(status=Customer.Status.SUSPENDED, suspended_by=OVERDUE)
        for customer in candidates.order_by("pk"):
            _apply(customer, overdue.get(customer.pk, []), days, now, result)
    return result


def customer_overdue_check(*, customer: Customer, now: dt.datetime) -> OverdueResult:
    """Suspend or reinstate one customer by the overdue rule (after a payment, say)."""
    customer = Customer.objects.select_related("reseller").row_of(customer).get()
    reseller = customer.reseller
    days = reseller.suspend_after_overdue_days
    numbers = list(
        invoices_overdue(reseller=reseller, now=now, days=days)
        .filter(customer=customer)
        .order_by("due_on", "pk")
        .values_list("number", flat=True)
    )
    result = OverdueResult()
    _apply(customer, numbers, days, now, result)
    return result
