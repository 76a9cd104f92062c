"""Closing a month at once: create and finalize the invoices of many customers, in chunks.

`invoices_issue_for_period` is what `generate_invoices --finalize`, the demo and the benchmark
run; `invoice_issue` is the same for one customer. Per chunk of customers, one transaction:

1. lock the chunk's customer rows (in id order, so overlapping runs never deadlock): one
   issuing per customer at a time, as `invoice_finalize` does, so the adjustments it bills
   see what the customer's other invoices billed;
2. skip customers whose invoice for the period exists (issued: reported; a draft: finalized
   on its own path after the chunk);
3. read every rating input of the chunk in a few queries (`RatingContext`) and rate;
4. insert the invoices, their lines and usage rows, take the chunk's numbers from the
   locked sequence row in one statement (gapless: they commit with the invoices), stamp each
   invoice finalized and record the events and queued emails.

A customer that cannot be rated (say a plan in another currency) is reported and skipped; the
rest of the chunk is issued. If another run created one of the chunk's invoices meanwhile
(the unique constraint fires), the chunk is rolled back and issued one customer at a time.

After the commit the PDFs are rendered (in a process pool for big batches, while the next
chunk is issued: `billing.invoicing.pdf_pool`), stored, and the emails dispatched.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction

from accounts.models import Customer, Reseller
from billing.document import LAYOUT_VERSION
from billing.invoicing.compute import invoice_compute
from billing.invoicing.context import CHUNK_SIZE, RatingContext
from billing.invoicing.cycle import (
    _require_ended,
    computation_rows,
    fill_from_computation,
    invoice_finalize,
    stamp_issued,
)
from billing.invoicing.delivery import invoices_deliver_rendered
from billing.invoicing.numbering import invoice_numbers_next
from billing.invoicing.pdf_pool import PdfBatch
from billing.invoicing.periods import Period, local_date
from billing.invoicing.rendering import invoice_document
from billing.models import (
    Invoice,
    InvoiceEmail,
    InvoiceEvent,
    InvoiceLine,
    InvoiceStatus,
    InvoiceUsage,
)
from billing.selectors import customers_to_invoice
from config.errors import ApplicationError

logger = logging.getLogger(__name__)

#: Below this many invoices, starting worker processes costs more than rendering inline.
POOL_MIN_INVOICES = 200


@dataclass
class IssueResult:
    period: Period
    issued: list[Invoice] = field(default_factory=list)  # finalized by this call
    already: list[Invoice] = field(default_factory=list)  # issued before
    failed: dict[int, ApplicationError] = field(default_factory=dict)  # customer id -> why


@dataclass
class Issued:
    invoice: Invoice
    lines: list[InvoiceLine]
    usage: list[InvoiceUsage]
    delivery: InvoiceEmail | None


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
) -> IssueResult:
    """Create and finalize the invoices of an ended period for `customers` (default: every
    customer with a subscription or usage in it), rated once each; existing drafts are
    finalized, issued invoices reported in `already`.

    `pdf_processes`: render the PDFs in that many worker processes (only for batches of at
    least `POOL_MIN_INVOICES`; 0 renders inline). `on_progress(n)` after each chunk of n.
    """
    period = Period.starting(period_start)
    _require_ended(period=period, reseller=reseller, now=now)
    if customers is None:
        customers = list(
            customers_to_invoice(reseller=reseller, start_day=period.start, end_day=period.end)
        )
    else:
        customers = list(customers)
        if any(c.reseller_id != reseller.pk for c in customers):
            raise ApplicationError("not_found", "Customer not found.")
    for customer in customers:
        customer.reseller = reseller  # one object: its timezone, prefix and terms
    result = IssueResult(period=period)
    processes = pdf_processes if len(customers) >= POOL_MIN_INVOICES else 0
    with PdfBatch(now=now, processes=processes, store=invoices_deliver_rendered) as pdfs:
        for offset in range(0, len(customers), max(chunk_size, 1)):
            chunk = customers[offset : offset + max(chunk_size, 1)]
            issued = _issue_chunk(
                reseller=reseller,
                customers=chunk,
                period=period,
                now=now,
                actor=actor,
                send_email=send_email,
                result=result,
            )
            pdfs.flush()  # the previous chunk's PDFs, rendered while this one was issued
            for item in issued:
                doc = invoice_document(item.invoice, lines=item.lines, usage=item.usage)
                pdfs.submit(item.invoice, doc, item.delivery)
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
    (`False`). A customer that cannot be rated raises its `ApplicationError`."""
    result = invoices_issue_for_period(
        reseller=customer.reseller,
        period_start=period_start,
        now=now,
        customers=[customer],
        actor=actor,
        send_email=send_email,
    )
    if result.failed:
        raise result.failed[customer.pk]
    if result.issued:
        return result.issued[0], True
    return result.already[0], False


def lock_customers(ids: list[int]) -> None:
    # NO KEY UPDATE: excludes other issuings and finalizations of these customers, but not
    # rows being inserted that merely reference them (a draft created meanwhile by the
    # cycle checks its foreign key with KEY SHARE; FOR UPDATE would deadlock with it on the
    # invoice's unique index).
    list(
        Customer.objects.select_for_update(no_key=True)
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _issue_chunk(
    *,
    reseller: Reseller,
    customers: list[Customer],
    period: Period,
    now: dt.datetime,
    actor: str,
    send_email: bool,
    result: IssueResult,
) -> list[Issued]:
    """Issue the chunk's new invoices in one transaction; finalize its drafts after it."""
    ids = [c.pk for c in customers]
    try:
        with transaction.atomic():
            lock_customers(ids)
            existing = list(
                Invoice.objects.filter(customer_id__in=ids, period_start=period.start)
                .select_related("customer__reseller", "reseller")
                .order_by("customer_id")
            )
            taken = {invoice.customer_id for invoice in existing}
            issued, failed = _issue_new(
                reseller=reseller,
                customers=[c for c in customers if c.pk not in taken],
                period=period,
                now=now,
                actor=actor,
                send_email=send_email,
            )
    except IntegrityError:
        if len(customers) > 1:
            # Another run created one of these invoices meanwhile: one customer at a time.
            issued = []
            for customer in customers:
                issued += _issue_chunk(
                    reseller=reseller,
                    customers=[customer],
                    period=period,
                    now=now,
                    actor=actor,
                    send_email=send_email,
                    result=result,
                )
            return issued
        existing = list(
            Invoice.objects.filter(customer_id__in=ids, period_start=period.start).select_related(
                "customer__reseller", "reseller"
            )
        )
        issued, failed = [], {}
    result.issued.extend(item.invoice for item in issued)
    result.failed.update(failed)
    for invoice in existing:
        if invoice.status != InvoiceStatus.DRAFT:
            result.already.append(invoice)
            continue
        try:
            result.issued.append(
                invoice_finalize(invoice=invoice, now=now, actor=actor, send_email=send_email)
            )
        except ApplicationError as exc:
            if exc.code == "invoice_not_draft":  # finalized meanwhile by another run
                result.already.append(Invoice.objects.get(pk=invoice.pk))
            else:
                result.failed[invoice.customer_id] = exc
    return issued


def _issue_new(
    *,
    reseller: Reseller,
    customers: list[Customer],
    period: Period,
    now: dt.datetime,
    actor: str,
    send_email: bool,
) -> tuple[list[Issued], dict[int, ApplicationError]]:
    """Inside the chunk's transaction, customers locked: rate, insert, number, stamp."""
    failed: dict[int, ApplicationError] = {}
    context = RatingContext(customers=customers, period=period)
    rated = []
    for customer in customers:
        try:
            computation = invoice_compute(customer=customer, period=period, context=context)
        except ApplicationError as exc:
            logger.warning("customer %s not invoiced: %s", customer.pk, exc.code)
            failed[customer.pk] = exc
            continue
        invoice = Invoice(
            reseller=reseller,
            customer=customer,
            period_start=period.start,
            period_end=period.end,
            layout_version=LAYOUT_VERSION,
        )
        fill_from_computation(invoice, computation, now)
        rated.append((invoice, computation))
    if not rated:
        return [], failed
    invoices = [invoice for invoice, _ in rated]
    if connection.features.can_return_rows_from_bulk_insert:
        Invoice.objects.bulk_create(invoices)
    else:  # the ids are needed for the lines
        for invoice in invoices:
            invoice.save()
    issued = []
    for invoice, computation in rated:
        lines, usage = computation_rows(invoice.pk, computation)
        issued.append(Issued(invoice, lines, usage, None))
    InvoiceLine.objects.bulk_create([line for item in issued for line in item.lines])
    InvoiceUsage.objects.bulk_create([row for item in issued for row in item.usage])
    issued_on = local_date(now, reseller.tzinfo)
    numbers = invoice_numbers_next(reseller=reseller, year=issued_on.year, count=len(issued))
    events = []
    for item, (number, sequence_number) in zip(issued, numbers, strict=True):
        invoice = item.invoice
        events.append(issue_event(invoice, "", InvoiceStatus.DRAFT, now, actor, "created"))
        stamp_issued(
            invoice,
            number=number,
            sequence_number=sequence_number,
            issued_on=issued_on,
            now=now,
            saved_otherwise=True,
        )
        events.append(
            issue_event(invoice, InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED, now, actor, number)
        )
        if send_email:
            item.delivery = InvoiceEmail(
                invoice=invoice,
                sequence=1,
                recipients=invoice.snapshot["buyer"]["emails"],
                queued_at=now,
            )
    InvoiceEvent.objects.bulk_create(events)
    if send_email:
        InvoiceEmail.objects.bulk_create([item.delivery for item in issued])
    return issued, failed


def issue_event(
    invoice: Invoice, from_status: str, to_status: str, now: dt.datetime, actor: str, note: str
) -> InvoiceEvent:
    return InvoiceEvent(
        invoice=invoice,
        from_status=from_status,
        to_status=to_status,
        actor=actor or "system",
        note=note[:500],
        at=now,
    )
