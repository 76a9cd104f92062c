"""Billing one ended month on request (the API's `invoices/generate/`, like the
`generate_invoices` command): drafts, or issued invoices with `finalize`.

A customer with nothing billable in the month gets no invoice and is reported in `skipped`
(`nothing_billable`); a named customer asked for a month that ended before it was created,
with nothing billable in it, is refused (`period_before_customer`, `engine.skipped_for`).
"""

from __future__ import annotations

import datetime as dt

from accounts.models import Customer, Reseller
from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.engine import Failure, require_ended
from billing.invoicing.issuing import invoices_issue_for_period
from billing.invoicing.periods import Period, period_containing
from billing.invoicing.results import BatchResult
from core.errors import ApplicationError


def period_require_started(*, period: Period, reseller: Reseller, now: dt.datetime) -> None:
    if period > period_containing(tz=reseller.tzinfo, now=now):
        raise ApplicationError(
            "period_not_started",
            f"{period.label} has not started yet in {reseller.timezone}.",
            extra={"period": period.label},
        )


def skipped_refusal(skipped: list[Failure], *, customer: Customer | None) -> None:
    """Raise `period_before_customer` when the named customer was skipped for it: asking to
    bill a month before the customer existed is a mistake, not a batch outcome."""
    if customer is None:
        return
    for skip in skipped:
        if skip.customer_id == customer.pk and skip.code == "period_before_customer":
            raise ApplicationError(skip.code, skip.message)


def invoices_generate(
    *,
    reseller: Reseller,
    period: Period,
    now: dt.datetime,
    customer: Customer | None = None,
    finalize: bool = False,
    actor: str = "",
) -> BatchResult:
    """Draft (or with `finalize` issue) the period's invoices of `customer` or of every
    billable customer of the reseller. The period must have ended (`period_not_ended`)."""
    require_ended(period=period, reseller=reseller, now=now)
    if finalize:
        result = invoices_issue_for_period(
            reseller=reseller,
            period_start=period.start,
            now=now,
            customers=[customer] if customer else None,
            actor=actor,
        )
    else:
        result = invoices_generate_for_period(
            reseller=reseller, period_start=period.start, now=now, customer=customer
        )
    skipped_refusal(result.skipped, customer=customer)
    return result
