"""Finalizing many drafts at once (the cycle's drafts past their grace period), in chunks.

`invoice_finalize` issues one draft; `invoices_finalize` does the same for a list, a chunk of
drafts of one period per transaction, which is what `invoices_finalize_due` (the hourly
cycle, `manage.py finalize_due_invoices`) runs. Per chunk:

1. lock the drafts' rows (id order) and their customers' rows (NO KEY UPDATE, id order), as
   `invoice_finalize` does for one; a draft finalized meanwhile is reported
   (`invoice_not_draft`), not finalized twice;
2. re-rate every draft from the rows read once for the chunk (`RatingContext`): a draft
   that cannot be rated is reported and stays a draft, the others go on;
3. rewrite the lines and usage of the drafts whose figures changed since they were last
   rated (compared in two queries for the chunk);
4. take the chunk's numbers from the locked sequence row in one statement, stamp each draft
   finalized, record the events and queue the emails.

PDFs are rendered after the commit (in worker processes if asked), stored, and the emails
dispatched, as for `invoices_issue_for_period`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from django.db import transaction

from billing.invoicing.compute import invoice_compute
from billing.invoicing.context import CHUNK_SIZE, RatingContext
from billing.invoicing.cycle import (
    _require_ended,
    computation_rows,
    fill_from_computation,
    row_keys,
    stamp_issued,
    stored_row_keys,
)
from billing.invoicing.delivery import invoices_deliver_rendered
from billing.invoicing.issuing import (
    POOL_MIN_INVOICES,
    Issued,
    issue_event,
    lock_customers,
)
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
from config.errors import ApplicationError

logger = logging.getLogger(__name__)


@dataclass
class FinalizeResult:
    finalized: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # invoice id -> error code


def invoices_finalize(
    *,
    invoices: Sequence[Invoice],
    now: dt.datetime,
    actor: str = "",
    send_email: bool = True,
    pdf_processes: int = 0,
    chunk_size: int = CHUNK_SIZE,
) -> FinalizeResult:
    """Finalize these drafts, numbered in the order given (each reseller its own sequence).
    Drafts that cannot be finalized are reported in `failed` with the reason's code."""
    result = FinalizeResult()
    processes = pdf_processes if len(invoices) >= POOL_MIN_INVOICES else 0
    with PdfBatch(now=now, processes=processes, store=invoices_deliver_rendered) as pdfs:
        for chunk in _chunks(invoices, max(chunk_size, 1)):
            issued = _finalize_chunk(
                chunk, now=now, actor=actor, send_email=send_email, result=result
            )
            pdfs.flush()  # the previous chunk's PDFs
            for item in issued:
                doc = invoice_document(item.invoice, lines=item.lines, usage=item.usage)
                pdfs.submit(item.invoice, doc, item.delivery)
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


def _finalize_chunk(
    chunk: list[Invoice], *, now: dt.datetime, actor: str, send_email: bool, result: FinalizeResult
) -> list[Issued]:
    period = Period(start=chunk[0].period_start, end=chunk[0].period_end)
    failed: dict[int, str] = {}
    with transaction.atomic():
        locked = {
            invoice.pk: invoice
            for invoice in Invoice.objects.select_for_update(of=("self",))
            .select_related("customer__reseller", "reseller")
            .filter(pk__in=[i.pk for i in chunk])
            .order_by("pk")
        }
        lock_customers(sorted({i.customer_id for i in locked.values()}))
        todo = []
        for wanted in chunk:
            invoice = locked.get(wanted.pk)
            if invoice is None or invoice.status != InvoiceStatus.DRAFT:
                failed[wanted.pk] = "invoice_not_draft"
                continue
            try:
                _require_ended(period=period, reseller=invoice.reseller, now=now)
            except ApplicationError as exc:
                failed[wanted.pk] = exc.code
                continue
            todo.append(invoice)
        context = RatingContext(customers=[i.customer for i in todo], period=period)
        rated: list[Issued] = []
        for invoice in todo:
            try:
                computation = invoice_compute(
                    customer=invoice.customer,
                    period=period,
                    exclude_invoice_id=invoice.pk,
                    context=context,
                )
            except ApplicationError as exc:
                failed[invoice.pk] = exc.code
                continue
            fill_from_computation(invoice, computation, now)
            lines, usage = computation_rows(invoice.pk, computation)
            rated.append(Issued(invoice, lines, usage, None))
        _rewrite_changed_rows(rated)
        _stamp(rated, now=now, actor=actor, send_email=send_email)
    for pk, code in failed.items():
        logger.warning("invoice %s not finalized: %s", pk, code)
    result.failed.update(failed)
    result.finalized.extend(item.invoice.pk for item in rated)
    return rated


def _rewrite_changed_rows(rated: list[Issued]) -> None:
    stored = stored_row_keys([item.invoice.pk for item in rated])
    changed = [
        item for item in rated if stored[item.invoice.pk] != row_keys(item.lines, item.usage)
    ]
    if not changed:
        return
    pks = [item.invoice.pk for item in changed]
    InvoiceLine.objects.filter(invoice_id__in=pks).delete()
    InvoiceUsage.objects.filter(invoice_id__in=pks).delete()
    InvoiceLine.objects.bulk_create([line for item in changed for line in item.lines])
    InvoiceUsage.objects.bulk_create([row for item in changed for row in item.usage])


def _stamp(rated: list[Issued], *, now: dt.datetime, actor: str, send_email: bool) -> None:
    if not rated:
        return
    reseller = rated[0].invoice.reseller
    issued_on = local_date(now, reseller.tzinfo)
    numbers = invoice_numbers_next(reseller=reseller, year=issued_on.year, count=len(rated))
    events = []
    for item, (number, sequence_number) in zip(rated, numbers, strict=True):
        stamp_issued(
            item.invoice,
            number=number,
            sequence_number=sequence_number,
            issued_on=issued_on,
            now=now,
        )
        events.append(
            issue_event(
                item.invoice, InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED, now, actor, number
            )
        )
        if send_email:
            item.delivery = InvoiceEmail(
                invoice=item.invoice,
                sequence=1,
                recipients=item.invoice.snapshot["buyer"]["emails"],
                queued_at=now,
            )
    InvoiceEvent.objects.bulk_create(events)
    if send_email:
        InvoiceEmail.objects.bulk_create([item.delivery for item in rated])
