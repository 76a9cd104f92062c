"""Closing a month at once: create and finalize the invoices of many customers, in chunks.

`invoices_issue_for_period` is what `generate_invoices --finalize`, the demo and the benchmark
run; `invoice_issue` is the same for one customer, and `invoice_reissue` bills a voided
invoice's period again. Per chunk of customers, one transaction:

1. lock the chunk's customer rows (`accounts.locks.lock_customers`);
2. skip customers whose live (not void) invoice for the period exists (issued: reported in
   `already`; a draft: finalized after the chunk by `finalizing.finalize_chunk`);
3. read every rating input of the chunk in a few queries (`RatingContext`) and rate;
4. insert the invoices, their lines and usage rows, then number, stamp, log and queue the
   emails (`engine.issue`).

A customer that cannot be rated (say a plan in another currency) is reported and skipped; the
rest of the chunk is issued. A customer with nothing billable in the period gets no invoice
(reported in `skipped`; its draft, if any, discarded), so no zero invoice is ever numbered.
If the chunk fails as a whole (another run created one of its invoices meanwhile, or
anything unexpected), it is rolled back (no number used) and issued one customer at a time,
so only the bad customer is reported.

A new invoice of a period whose invoice was voided `replaces` the voided one.

Void: a voided invoice frees its period. When the customers are not named (the whole
reseller), a period whose only invoice is void is left alone and reported in `voided`: a void
is often deliberate, so billing the period again is an explicit act (`invoice_reissue`,
`invoice_issue`, or `generate_invoices --customer ID --finalize`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from django.db import IntegrityError, connection, transaction

from accounts.locks import lock_customers
from accounts.models import Customer, Reseller
from billing.invoicing.compute import invoice_compute
from billing.invoicing.context import CHUNK_SIZE, RatingContext
from billing.invoicing.engine import (
    Failure,
    IssueBatch,
    Issued,
    computation_rows,
    failure_of,
    fill_from_computation,
    issue,
    new_invoice,
    nothing_billable,
    one_at_a_time,
    require_ended,
    skip_of,
    skipped_for,
)
from billing.invoicing.finalizing import finalize_chunk
from billing.invoicing.periods import Period
from billing.invoicing.results import BatchResult
from billing.invoicing.transitions import invoice_event_record
from billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, InvoiceUsage
from billing.selectors import customers_to_invoice, customers_with_voided_period
from core.errors import ApplicationError

logger = logging.getLogger(__name__)


def invoices_issue_for_period(
    *,
    reseller: Reseller,
    period_start: dt.date,
    now: dt.datetime,
    customers: Sequence[Customer] | None = None,
    actor: str = "",
    send_email: bool = True,
    pdf_processes: int = 0,
    chunk_size: int = CHUNK_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Create and finalize the invoices of an ended period for `customers` (default: every
    customer with a subscription or usage in it, except those whose invoice of the period was
    voided), rated once each; existing drafts are finalized, issued invoices reported in
    `already`.

    `pdf_processes`: render the PDFs in that many worker processes (only for batches of at
    least `engine.POOL_MIN_INVOICES`; 0 renders inline). `on_progress(n)` after each chunk.
    """
    period = Period.starting(period_start)
    require_ended(period=period, reseller=reseller, now=now)
    result = BatchResult(period=period)
    if customers is None:
        customers = list(
            customers_to_invoice(reseller=reseller, start_day=period.start, end_day=period.end)
        )
        voided = customers_with_voided_period(reseller=reseller, period_start=period.start)
        result.voided = [c.pk for c in customers if c.pk in voided]
        customers = [c for c in customers if c.pk not in voided]
    else:
        customers = list(customers)
        if any(c.reseller_id != reseller.pk for c in customers):
            raise ApplicationError("not_found", "Customer not found.")
    for customer in customers:
        customer.reseller = reseller  # one object: its timezone, prefix and terms
    size = max(chunk_size, 1)
    with IssueBatch(now=now, expected=len(customers), pdf_processes=pdf_processes) as batch:
        for offset in range(0, len(customers), size):
            chunk = customers[offset : offset + size]
            batch.committed(
                _issue_chunk(
                    reseller=reseller,
                    customers=chunk,
                    period=period,
                    now=now,
                    actor=actor,
                    send_email=send_email,
                    result=result,
                )
            )
            if on_progress is not None:
                on_progress(len(chunk))
    return result


def invoice_issue(
    *,
    customer: Customer,
    period_start: dt.date,
    now: dt.datetime,
    actor: str = "",
    send_email: bool = True,
) -> tuple[Invoice, bool]:
    """Create and finalize the customer's invoice for an ended period in one transaction
    (rated once). An existing draft is finalized; an issued invoice is returned as is
    (`False`). A voided invoice of the period does not count: the period is billed again
    with a new number. A customer that cannot be rated raises its `ApplicationError`, one
    with nothing billable `nothing_billable` or `period_before_customer`."""
    result = invoices_issue_for_period(
        reseller=customer.reseller,
        period_start=period_start,
        now=now,
        customers=[customer],
        actor=actor,
        send_email=send_email,
    )
    error = result.error_for(customer_id=customer.pk)  # it failed, or has nothing billable
    if error is not None:
        raise error
    if result.issued:
        return result.issued[0], True
    if result.already:
        return result.already[0], False
    # Its draft was discarded while being finalized: nothing is issued.
    raise ApplicationError("invoice_not_draft", "The draft was discarded meanwhile.")


def invoice_reissue(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", send_email: bool = True
) -> tuple[Invoice, bool]:
    """Bill a voided invoice's period again: a new invoice with the next number, rated from
    the usage as it is now (the voided invoice's usage and adjustments count for nothing).

    Returns the period's live invoice and whether this call issued it: when it already has
    one (reissued by someone else meanwhile), that one, untouched (`False`). Refuses an
    invoice that is not void (`invoice_not_void`)."""
    invoice = Invoice.objects.select_related("customer__reseller").row_of(invoice).get()
    if invoice.status != InvoiceStatus.VOID:
        raise ApplicationError(
            "invoice_not_void",
            f"Invoice {invoice} is {invoice.status}; only a void invoice can be reissued.",
            extra={"status": invoice.status},
        )
    live, created = invoice_issue(
        customer=invoice.customer,
        period_start=invoice.period_start,
        now=now,
        actor=actor,
        send_email=send_email,
    )
    if created:
        invoice_event_record(
            invoice=invoice,
            from_status=InvoiceStatus.VOID,
            to_status=InvoiceStatus.VOID,
            now=now,
            actor=actor,
            note=f"reissued as {live.number}",
        )
    return live, created


def _issue_chunk(
    *,
    reseller: Reseller,
    customers: list[Customer],
    period: Period,
    now: dt.datetime,
    actor: str,
    send_email: bool,
    result: BatchResult,
) -> list[Issued]:
    """Issue the chunk's new invoices in one transaction; finalize its drafts after it."""
    try:
        with transaction.atomic():
            lock_customers(Customer.objects.rows_of(customers))
            existing = _live_invoices(customers, period)
            taken = {invoice.customer_id for invoice in existing}
            issued, failed, skipped = _issue_new(
                reseller=reseller,
                customers=[c for c in customers if c.pk not in taken],
                period=period,
                now=now,
                actor=actor,
                send_email=send_email,
            )
    except Exception as exc:
        if len(customers) > 1:
            # Another run created one of these invoices meanwhile, or one customer broke
            # something unexpected: one customer at a time.
            return one_at_a_time(
                customers,
                lambda one: _issue_chunk(
                    reseller=reseller,
                    customers=one,
                    period=period,
                    now=now,
                    actor=actor,
                    send_email=send_email,
                    result=result,
                ),
                exc,
            )
        existing = _live_invoices(customers, period) if isinstance(exc, IntegrityError) else []
        if not existing:  # not a concurrent creation: this customer cannot be billed
            result.failed.append(failure_of(exc, customer_id=customers[0].pk))
            return []
        issued, failed, skipped = [], [], []
    result.issued.extend(item.invoice for item in issued)
    result.failed += failed
    result.skipped += skipped
    result.already += [invoice for invoice in existing if invoice.status != InvoiceStatus.DRAFT]
    drafts = [invoice for invoice in existing if invoice.status == InvoiceStatus.DRAFT]
    if drafts:
        done = BatchResult()
        issued += finalize_chunk(
            drafts, now=now, actor=actor, send_email=send_email, result=done, discard_empty=True
        )
        result.issued += done.issued
        result.failed += done.failed  # each with its customer and its draft
        # finalized by another run meanwhile: issued before this batch (a discarded one is gone)
        result.already += list(
            Invoice.objects.for_reseller(reseller).filter(
                pk__in=[each.invoice_id for each in done.not_draft]
            )
        )
        result.skipped += [
            skip_of(
                skipped_for(draft.customer, period),
                customer_id=draft.customer_id,
                invoice_id=draft.pk,
            )
            for draft in drafts
            if draft.pk in done.discarded
        ]
    return issued


def _live_invoices(customers: list[Customer], period: Period) -> list[Invoice]:
    return list(
        Invoice.objects.filter(
            customer__in=customers, period_start=period.start, kind=InvoiceKind.PERIOD
        )
        .exclude(status=InvoiceStatus.VOID)
        .select_related("customer__reseller", "reseller")
        .order_by("customer_id")
    )


def _issue_new(
    *,
    reseller: Reseller,
    customers: list[Customer],
    period: Period,
    now: dt.datetime,
    actor: str,
    send_email: bool,
) -> tuple[list[Issued], list[Failure], list[Failure]]:
    """Inside the chunk's transaction, customers locked: rate, insert, then `engine.issue`.
    Returns what was issued, the customers that failed and those with nothing billable."""
    failed: list[Failure] = []
    skipped: list[Failure] = []
    context = RatingContext(customers=customers, period=period)
    rated = []
    for customer in customers:
        try:
            computation = invoice_compute(customer=customer, period=period, context=context)
        except ApplicationError as exc:
            failed.append(failure_of(exc, customer_id=customer.pk))
            continue
        if nothing_billable(computation):
            skipped.append(skip_of(skipped_for(customer, period), customer_id=customer.pk))
            continue
        invoice = new_invoice(
            customer=customer, period=period, replaces_id=context.voided_invoice(customer.pk)
        )
        fill_from_computation(invoice, computation, now)
        rated.append((invoice, computation))
    if not rated:
        return [], failed, skipped
    invoices = [invoice for invoice, _ in rated]
    if connection.features.can_return_rows_from_bulk_insert:
        Invoice.objects.bulk_create(invoices)
    else:  # the ids are needed for the lines
        for invoice in invoices:
            invoice.save()
    issued = [Issued(invoice, *computation_rows(invoice.pk, c)) for invoice, c in rated]
    InvoiceLine.objects.bulk_create([line for item in issued for line in item.lines])
    InvoiceUsage.objects.bulk_create([row for item in issued for row in item.usage])
    issue(issued, reseller=reseller, now=now, actor=actor, send_email=send_email, inserted=True)
    return issued, failed, skipped
