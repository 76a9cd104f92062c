"""Finalizing drafts: one (`invoice_finalize`) or many in chunks (`invoices_finalize`, which the
hourly cycle and `manage.py finalize_due_invoices` run through `invoices_finalize_due`).

Both run `finalize_chunk`, a chunk of drafts of one reseller and period per transaction:

1. lock the customers' rows (NO KEY UPDATE, id order), then the drafts' rows (id order): the
   lock order of every path that takes both; a draft finalized or discarded meanwhile is
   reported in `not_draft` (`invoice_not_draft`), never finalized twice;
2. re-rate every draft from the rows read once for the chunk (`RatingContext`): a draft that
   cannot be rated (say a plan in another currency) is reported in `failed` and stays a
   draft, the others go on. A draft whose customer has nothing billable left in the period
   any more (a mistaken subscription deleted) is never numbered: with `discard_empty` (the
   cycle, closing a month) it is discarded, else it fails with `nothing_billable` and stays
   a draft (for staff to discard);
3. rewrite the lines and usage of the drafts whose figures changed since they were last rated;
4. number, stamp, log and queue the emails (`billing.invoicing.engine.issue`).

Anything else going wrong in a chunk rolls it back (no number is used) and its drafts are
finalized one at a time, so only the bad one is reported. PDFs are rendered after the commit
and the emails dispatched (`engine.IssueBatch`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence

from django.db import transaction

from accounts.locks import lock_customers
from accounts.models import Customer, Reseller
from billing.invoicing.compute import invoice_compute
from billing.invoicing.context import CHUNK_SIZE, RatingContext
from billing.invoicing.engine import (
    IssueBatch,
    Issued,
    computation_rows,
    drafts_delete,
    failure_of,
    fill_from_computation,
    issue,
    lock_drafts,
    not_draft,
    nothing_billable,
    one_at_a_time,
    refusal_of,
    require_ended,
    rewrite_changed_rows,
)
from billing.invoicing.periods import Period, period_due_at
from billing.invoicing.results import BatchResult
from billing.models import Invoice, InvoiceStatus
from core.errors import ApplicationError

logger = logging.getLogger(__name__)


def invoice_finalize(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", send_email: bool = True
) -> Invoice:
    """Issue a draft: re-rate, number, freeze, then render the PDF and queue the email.

    Issue date is `now` in the reseller's timezone; due date adds its payment terms. A draft
    that is no longer one raises `invoice_not_draft`, one that cannot be rated its error."""
    result = invoices_finalize(invoices=[invoice], now=now, actor=actor, send_email=send_email)
    error = result.error_for(invoice_id=invoice.pk)
    if error is not None:
        raise error
    return result.issued[0]


def invoices_finalize(
    *,
    invoices: Sequence[Invoice],
    now: dt.datetime,
    actor: str = "",
    send_email: bool = True,
    pdf_processes: int = 0,
    chunk_size: int = CHUNK_SIZE,
    discard_empty: bool = False,
) -> BatchResult:
    """Finalize these drafts, numbered in the order given (each reseller its own sequence).
    Drafts that cannot be finalized are reported in `failed`; the others are finalized."""
    result = BatchResult()
    with IssueBatch(now=now, expected=len(invoices), pdf_processes=pdf_processes) as batch:
        for chunk in _chunks(invoices, max(chunk_size, 1)):
            issued = finalize_chunk(
                chunk,
                now=now,
                actor=actor,
                send_email=send_email,
                result=result,
                discard_empty=discard_empty,
            )
            batch.committed(issued)
    return result


def _chunks(invoices: Sequence[Invoice], size: int) -> Iterator[list[Invoice]]:
    """Runs of at most `size` invoices of the same reseller and period."""
    chunk: list[Invoice] = []
    for invoice in invoices:
        if chunk and (
            len(chunk) == size
            or chunk[0].period_start != invoice.period_start
            or chunk[0].reseller_id != invoice.reseller_id
        ):
            yield chunk
            chunk = []
        chunk.append(invoice)
    if chunk:
        yield chunk


def finalize_chunk(
    chunk: list[Invoice],
    *,
    now: dt.datetime,
    actor: str,
    send_email: bool,
    result: BatchResult,
    discard_empty: bool = False,
) -> list[Issued]:
    """Finalize a chunk of drafts of one reseller and period in one transaction (falling back
    to one draft per transaction when the chunk fails as a whole); returns what was issued,
    for the caller to render and deliver after the commit."""
    done = BatchResult()
    try:
        with transaction.atomic():
            issued = _finalize_locked(
                chunk,
                now=now,
                actor=actor,
                send_email=send_email,
                result=done,
                discard_empty=discard_empty,
            )
    except Exception as exc:
        if len(chunk) > 1:
            return one_at_a_time(
                chunk,
                lambda one: finalize_chunk(
                    one,
                    now=now,
                    actor=actor,
                    send_email=send_email,
                    result=result,
                    discard_empty=discard_empty,
                ),
                exc,
            )
        (invoice,) = chunk
        result.failed.append(
            failure_of(exc, customer_id=invoice.customer_id, invoice_id=invoice.pk)
        )
        return []
    result.merge(done)
    return issued


def _finalize_locked(
    chunk: list[Invoice],
    *,
    now: dt.datetime,
    actor: str,
    send_email: bool,
    result: BatchResult,
    discard_empty: bool,
) -> list[Issued]:
    period = Period(start=chunk[0].period_start, end=chunk[0].period_end)
    # Customers first, then the drafts: the order of every path that locks both (issuing,
    # subscription changes), so none deadlocks with another.
    lock_customers(
        Customer.objects.for_reseller(chunk[0].reseller_id).filter(
            pk__in={i.customer_id for i in chunk}
        )
    )
    locked = lock_drafts(chunk)
    todo = []
    for wanted in chunk:
        invoice = locked.get(wanted.pk)
        if invoice is None or invoice.status != InvoiceStatus.DRAFT:
            logger.info("invoice %s was finalized or discarded meanwhile", wanted.pk)
            result.not_draft.append(
                refusal_of(
                    not_draft(wanted.pk, invoice),
                    customer_id=wanted.customer_id,
                    invoice_id=wanted.pk,
                )
            )
            continue
        try:
            require_ended(period=period, reseller=invoice.reseller, now=now)
        except ApplicationError as exc:
            _fail(result, invoice, exc)
            continue
        todo.append(invoice)
    context = RatingContext(customers=[i.customer for i in todo], period=period)
    rated: list[Issued] = []
    empty: list[Invoice] = []
    for invoice in todo:
        try:
            computation = invoice_compute(
                customer=invoice.customer,
                period=period,
                exclude_invoice_id=invoice.pk,
                context=context,
            )
        except ApplicationError as exc:
            _fail(result, invoice, exc)
            continue
        if nothing_billable(computation):
            if not discard_empty:
                _fail(result, invoice, _nothing_to_issue(invoice, period))
                continue
            logger.info(
                "draft %s of customer %s discarded by the cycle: nothing billable in %s",
                invoice.pk,
                invoice.customer_id,
                period.label,
            )
            empty.append(invoice)
            continue
        fill_from_computation(invoice, computation, now)
        lines, usage = computation_rows(invoice.pk, computation)
        rated.append(Issued(invoice, lines, usage))
    drafts_delete(empty)
    result.discarded += [invoice.pk for invoice in empty]
    rewrite_changed_rows(rated)
    if rated:
        reseller = rated[0].invoice.reseller
        issue(rated, reseller=reseller, now=now, actor=actor, send_email=send_email)
    result.issued += [item.invoice for item in rated]
    return rated


def _nothing_to_issue(invoice: Invoice, period: Period) -> ApplicationError:
    return ApplicationError(
        "nothing_billable",
        f"Draft {invoice.pk} has no subscription, usage or adjustment left in {period.label}: "
        "it is not numbered (discard it).",
        extra={"period": period.label},
    )


def _fail(result: BatchResult, invoice: Invoice, exc: ApplicationError) -> None:
    result.failed.append(failure_of(exc, customer_id=invoice.customer_id, invoice_id=invoice.pk))


def invoices_finalize_due(
    *,
    now: dt.datetime,
    reseller: Reseller | None = None,
    send_email: bool = True,
    pdf_processes: int = 0,
) -> BatchResult:
    """Finalize drafts whose grace period (the reseller's `grace_period_days`) is over, in
    chunks; drafts of customers with nothing billable left are discarded instead."""
    result = BatchResult()
    resellers = [reseller] if reseller is not None else list(Reseller.objects.all())
    for each in resellers:
        result.merge(
            invoices_finalize(
                invoices=invoices_due(reseller=each, now=now),
                now=now,
                send_email=send_email,
                pdf_processes=pdf_processes,
                discard_empty=True,
            )
        )
    return result


def invoices_due(*, reseller: Reseller, now: dt.datetime) -> list[Invoice]:
    """Drafts of `reseller` past their grace period at `now`, oldest period first."""
    drafts = Invoice.objects.for_reseller(reseller).filter(status=InvoiceStatus.DRAFT)
    due = []
    for period_start in sorted(set(drafts.values_list("period_start", flat=True))):
        period = Period.starting(period_start)
        if now >= period_due_at(
            period=period, tz=reseller.tzinfo, grace_days=reseller.grace_period_days
        ):
            due.extend(drafts.filter(period_start=period_start).order_by("customer_id"))
    return due
