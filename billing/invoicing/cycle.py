"""Drafts and the hourly cycle: drafts when a period ends, refreshes in grace, finalization.

Exactly once: a customer has at most one live (not void) invoice per period (a partial unique
constraint), so two runs (or two workers) creating the same draft end with one row: the
loser's INSERT fails inside a savepoint and it takes the winner's row. Finalization is the
engine's (`billing.invoicing.finalizing`, `billing.invoicing.engine`); the PDF is rendered
after the commit and is re-runnable, so an invoice finalized whose PDF failed is rendered
again minutes later by the recovery sweep (`billing.recovery`), or by the next cycle run.

A run delivered again after its worker was killed (same `now`) resumes where it stopped:
drafts it already rated, whose usage has not changed since, are left as they are (reported in
`resumed`; `billing.invoicing.resume`).

Failures are isolated: a customer whose draft cannot be created, refreshed or finalized is
logged with its id and error code, reported in the result's `failed`, and skipped; the
others are billed.

A voided invoice frees its period, but the cycle does not bill a voided period again by itself
(a void is often deliberate): staff reissue it (`invoice_reissue`, or a draft created for the
named customer: `invoices_generate_for_period(customer=...)`, the admin's "create draft",
`generate_invoices --customer`).

A draft can be discarded (`invoice_draft_discard`); the cycle creates it again only while the
customer is still billable for the period (`customers_to_invoice`). No draft is created for a
customer with nothing billable in the period (`engine.nothing_billable`: reported in
`skipped`, even when named), and a draft whose customer has nothing billable left (its only
subscription deleted, no usage) is discarded when it is refreshed, never finalized.

A draft says what finalizing it would issue: it is re-rated when the customer's usage
changes (`billing.invoicing.refresh`), when its subscriptions change and when one of its
invoices is voided (`invoice_drafts_rerate`); `invoice_draft_stale` tells whether it still
does (say the re-rating of a draft failed).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from accounts.models import Customer, Reseller
from billing.invoicing.compute import InvoiceComputation, invoice_compute
from billing.invoicing.context import CHUNK_SIZE, RatingContext
from billing.invoicing.engine import (
    SKIP_CODES,
    Failure,
    Issued,
    computation_rows,
    drafts_delete,
    failure_of,
    fill_from_computation,
    lock_drafts,
    new_invoice,
    not_draft,
    nothing_billable,
    require_ended,
    rewrite_changed_rows,
    row_keys,
    skip_of,
    skipped_for,
    stored_row_keys,
)
from billing.invoicing.finalizing import invoices_finalize_due
from billing.invoicing.periods import Period, period_last_closed
from billing.invoicing.results import BatchResult
from billing.invoicing.resume import drafts_rated_since
from billing.invoicing.transitions import invoice_event_record
from billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, InvoiceUsage
from billing.selectors import customers_to_invoice, customers_with_voided_period
from core.errors import ApplicationError, NotFoundError

logger = logging.getLogger(__name__)


def _apply_computation(
    invoice: Invoice, computation: InvoiceComputation, now: dt.datetime, *, fresh: bool
) -> None:
    """Give a draft (locked by the caller, or just created) the computed totals, snapshot,
    lines and usage. Lines and usage are rewritten only when they changed."""
    fill_from_computation(invoice, computation, now)
    if fresh:
        invoice.save()
        lines, usage = computation_rows(invoice.pk, computation)
        InvoiceLine.objects.bulk_create(lines)
        InvoiceUsage.objects.bulk_create(usage)
    else:
        rewrite_changed_rows([Issued(invoice, *computation_rows(invoice.pk, computation))])


def _lock_draft(invoice: Invoice) -> Invoice:
    locked = lock_drafts([invoice]).get(invoice.pk)
    if locked is None or locked.status != InvoiceStatus.DRAFT:
        raise not_draft(invoice.pk, locked)
    return locked


def invoice_create_draft(
    *,
    customer: Customer,
    period_start: dt.date,
    now: dt.datetime,
    context: RatingContext | None = None,
) -> tuple[Invoice, bool]:
    """The customer's draft for the period, created once (`created` says whether by this call).

    An existing live invoice (draft or issued) is returned untouched; a void one does not
    count (the period is billed again, and the new draft `replaces` it). A customer with
    nothing billable in the period gets no draft: `nothing_billable` or
    `period_before_customer` is raised (`engine.skipped_for`). `context`: rating inputs
    prefetched for a chunk of customers of the period.
    """
    period = Period.starting(period_start)
    reseller = customer.reseller
    require_ended(period=period, reseller=reseller, now=now)
    existing = _live_invoice(customer, period)
    if existing is not None:
        return existing, False
    if context is None or context.period != period:
        context = RatingContext(customers=[customer], period=period)
    # Rated before the write transaction so it holds locks briefly; finalization re-rates.
    computation = invoice_compute(customer=customer, period=period, context=context)
    if nothing_billable(computation):
        raise skipped_for(customer, period)
    try:
        with transaction.atomic():
            invoice = new_invoice(
                customer=customer,
                period=period,
                replaces_id=context.voided_invoice(customer.pk),
            )
            _apply_computation(invoice, computation, now, fresh=True)
            invoice_event_record(
                invoice=invoice,
                from_status="",
                to_status=InvoiceStatus.DRAFT,
                now=now,
                actor="system",
                note="created",
            )
    except IntegrityError:
        # Another run created it between our check and our INSERT: the unique constraint
        # on the live (customer, period_start) decided; use the winner's row.
        return Invoice.objects.exclude(status=InvoiceStatus.VOID).get(
            customer=customer, period_start=period.start, kind=InvoiceKind.PERIOD
        ), False
    return invoice, True


def _live_invoice(customer: Customer, period: Period) -> Invoice | None:
    return (
        Invoice.objects.filter(
            customer=customer, period_start=period.start, kind=InvoiceKind.PERIOD
        )
        .exclude(status=InvoiceStatus.VOID)
        .first()
    )


def invoice_refresh_draft(*, invoice: Invoice, now: dt.datetime) -> Invoice:
    """Re-rate a draft from current usage: its lines and usage rows are rewritten (when they
    changed). A draft finalized meanwhile raises `invoice_not_draft`."""
    refreshed = _rerate(invoice, now, discard_empty=False)
    if refreshed is None:  # not reached: only `discard_empty` discards
        raise not_draft(invoice.pk, None)
    return refreshed


def invoice_refresh_or_discard(*, invoice: Invoice, now: dt.datetime) -> Invoice | None:
    """Re-rate a draft like `invoice_refresh_draft`, or discard it (None) when its customer
    has nothing billable left in the period (`engine.nothing_billable`), under the same lock.
    A draft finalized meanwhile raises `invoice_not_draft`."""
    return _rerate(invoice, now, discard_empty=True)


def _rerate(invoice: Invoice, now: dt.datetime, *, discard_empty: bool) -> Invoice | None:
    with transaction.atomic():
        locked = _lock_draft(invoice)
        period = Period(start=locked.period_start, end=locked.period_end)
        computation = invoice_compute(
            customer=locked.customer, period=period, exclude_invoice_id=locked.pk
        )
        if discard_empty and nothing_billable(computation):
            drafts_delete([locked])
            logger.info(
                "draft %s of customer %s for %s discarded: nothing billable",
                locked.pk,
                locked.customer_id,
                period.label,
            )
            return None
        _apply_computation(locked, computation, now, fresh=False)
        locked.save()
    return locked


def invoice_draft_stale(*, invoice: Invoice) -> bool:
    """Whether finalizing the draft now would issue other figures than it shows (its totals,
    lines or usage rows differ from a rating now, or it cannot be rated now). Reads only;
    `invoice_refresh_draft` brings it up to date. An issued invoice is never stale."""
    if invoice.status != InvoiceStatus.DRAFT:
        return False
    period = Period(start=invoice.period_start, end=invoice.period_end)
    try:
        computation = invoice_compute(
            customer=invoice.customer, period=period, exclude_invoice_id=invoice.pk
        )
    except ApplicationError:
        return True
    totals = computation.totals
    if (invoice.currency, invoice.subtotal, invoice.tax, invoice.total) != (
        computation.currency,
        totals.subtotal,
        totals.tax,
        totals.total,
    ):
        return True
    rows = row_keys(*computation_rows(invoice.pk, computation))
    return stored_row_keys([invoice])[invoice.pk] != rows


def invoice_draft_discard(*, invoice: Invoice, actor: str, now: dt.datetime) -> None:
    """Delete a draft with its lines and usage rows (staff's mistake, or nothing left to bill).

    Nothing numbered is lost: drafts have no number. A non-draft raises `invoice_not_draft`
    (issued invoices are voided instead); one already gone raises `not_found`. The discard is
    recorded in the log (who, when, which customer and period): no row is left behind. The
    cycle creates the draft again only while the customer is still billable for the period.
    """
    with transaction.atomic():
        locked = lock_drafts([invoice]).get(invoice.pk)
        if locked is None:
            raise NotFoundError("Invoice not found.")
        if locked.status != InvoiceStatus.DRAFT:
            raise ApplicationError(
                "invoice_not_draft",
                f"Invoice {locked} is {locked.status}; only drafts can be discarded (void it).",
                extra={"status": locked.status},
            )
        drafts_delete([locked])
    logger.info(
        "draft %s of customer %s for %s discarded by %s at %s (total %s %s)",
        locked.pk,
        locked.customer_id,
        f"{locked.period_start:%Y-%m}",
        actor or "system",
        now.isoformat(),
        locked.total,
        locked.currency,
    )


def invoices_generate_for_period(
    *,
    reseller: Reseller,
    period_start: dt.date,
    now: dt.datetime,
    customer: Customer | None = None,
    customers: Sequence[Customer] | None = None,
    on_progress: Callable[[Invoice], None] | None = None,
) -> BatchResult:
    """A draft per customer with a subscription or usage in the ended period (or just
    `customer`, or `customers`); existing drafts are refreshed, issued invoices left alone.

    Without named customers, a customer whose invoice of the period was voided is left alone
    (`voided`); a named one gets a new draft. A customer with nothing billable gets none
    (`skipped`, its existing draft `discarded`); one that fails is reported in `failed`.
    New drafts are rated from inputs read once per chunk of customers."""
    period = Period.starting(period_start)
    require_ended(period=period, reseller=reseller, now=now)
    result = BatchResult(period=period)
    if customer is not None:
        customers = [customer]
    if customers is None:
        customers = list(
            customers_to_invoice(reseller=reseller, start_day=period.start, end_day=period.end)
        )
        voided = customers_with_voided_period(reseller=reseller, period_start=period.start)
        result.voided = [c.pk for c in customers if c.pk in voided]
        customers = [c for c in customers if c.pk not in voided]
    elif any(c.reseller_id != reseller.pk for c in customers):
        raise ApplicationError("not_found", "Customer not found.")
    for offset in range(0, len(customers), CHUNK_SIZE):
        chunk = customers[offset : offset + CHUNK_SIZE]
        context = RatingContext(customers=chunk, period=period)
        current = _drafts_rated_by_this_run(reseller, chunk, period, now)
        for each in chunk:
            if each.pk in current:  # a run delivered again: the killed one rated it
                result.resumed.append(current[each.pk].pk)
                if on_progress is not None:
                    on_progress(current[each.pk])
                continue
            try:
                invoice, created = invoice_create_draft(
                    customer=each, period_start=period.start, now=now, context=context
                )
                outcome = CREATED if created else _refreshed(invoice, now)
                if outcome == DISCARDED:  # its draft had nothing billable left
                    result.discarded.append(invoice.pk)
                    raise skipped_for(each, period)
            except Exception as exc:  # one bad customer must not stop the others
                if isinstance(exc, ApplicationError) and exc.code in SKIP_CODES:
                    result.skipped.append(skip_of(exc, customer_id=each.pk))
                else:
                    result.failed.append(failure_of(exc, customer_id=each.pk))
                continue
            if outcome == CREATED:
                result.created.append(invoice.pk)
            elif outcome == REFRESHED:
                result.refreshed.append(invoice.pk)
            else:  # issued before, or finalized (or discarded) meanwhile by another run
                result.already.append(invoice)
            if on_progress is not None:
                on_progress(invoice)
    return result


def _drafts_rated_by_this_run(
    reseller: Reseller, customers: Sequence[Customer], period: Period, now: dt.datetime
) -> dict[int, Invoice]:
    """The customers' drafts of the period already rated by this run (or later) and not
    changed since, by customer id (`billing.invoicing.resume`)."""
    drafts = list(
        Invoice.objects.for_reseller(reseller).filter(
            customer_id__in=[c.pk for c in customers],
            period_start=period.start,
            status=InvoiceStatus.DRAFT,
            refreshed_at__gte=now,
        )
    )
    current = drafts_rated_since(reseller=reseller, drafts=drafts, now=now)
    return {draft.customer_id: draft for draft in drafts if draft.pk in current}


#: What `_refreshed` did to an invoice (and `CREATED`, a draft just created).
CREATED, REFRESHED, DISCARDED, UNCHANGED = "created", "refreshed", "discarded", "unchanged"


def _refreshed(invoice: Invoice, now: dt.datetime) -> str:
    """Refresh a draft, or discard it when nothing billable is left. An issued invoice, or a
    draft finalized or discarded meanwhile (by a finalize task, another cycle worker, staff),
    is left alone: `UNCHANGED`, and no error."""
    if invoice.status != InvoiceStatus.DRAFT:
        return UNCHANGED
    try:
        fresh = invoice_refresh_or_discard(invoice=invoice, now=now)
    except ApplicationError as exc:
        if exc.code != "invoice_not_draft":
            raise
        return UNCHANGED
    return REFRESHED if fresh is not None else DISCARDED


@dataclass
class CycleResult:
    generated: BatchResult  # the month that just closed, drafted
    refreshed: list[int]
    finalized: BatchResult  # the drafts due, finalized
    pdfs_rendered: list[int]
    emails_dispatched: list[int]
    discarded: list[int] = field(default_factory=list)  # drafts with nothing billable left
    refresh_failed: list[Failure] = field(default_factory=list)

    @property
    def failed(self) -> list[Failure]:
        """Every customer this pass could not bill (each logged with its id and code)."""
        return self.generated.failed + self.finalized.failed + self.refresh_failed


def invoice_cycle_run(*, reseller: Reseller, now: dt.datetime) -> CycleResult:
    """One hourly pass for a reseller: drafts for the month that just closed, finalization of
    due drafts, refresh of drafts still in grace (a draft with nothing billable left is
    discarded), catch-up of missing PDFs and of deliveries that were queued but never
    dispatched (`billing.recovery`, which a sweep also runs every 3 minutes). One customer
    failing is reported in `failed`; the others go on."""
    period = period_last_closed(tz=reseller.tzinfo, now=now)
    generated = invoices_generate_for_period(reseller=reseller, period_start=period.start, now=now)
    finalized = invoices_finalize_due(reseller=reseller, now=now)
    result = CycleResult(
        generated=generated,
        refreshed=[],
        finalized=finalized,
        pdfs_rendered=[],
        emails_dispatched=[],
    )
    done = {*generated.created, *generated.refreshed, *generated.resumed}
    result.discarded += generated.discarded
    drafts = [
        draft
        for draft in Invoice.objects.for_reseller(reseller).filter(status=InvoiceStatus.DRAFT)
        if draft.pk not in done
    ]
    # A run delivered again resumes: the drafts the killed one rated are left as they are.
    done |= drafts_rated_since(reseller=reseller, drafts=drafts, now=now)
    for draft in drafts:
        if draft.pk in done:
            continue
        try:
            outcome = _refreshed(draft, now)
            if outcome == DISCARDED:
                result.discarded.append(draft.pk)
            elif outcome == REFRESHED:
                result.refreshed.append(draft.pk)
        except Exception as exc:
            result.refresh_failed.append(
                failure_of(exc, customer_id=draft.customer_id, invoice_id=draft.pk)
            )
    from billing.recovery import documents_recover  # (imports credit notes: they import us)

    recovered = documents_recover(reseller=reseller, now=now, hourly=True)
    result.pdfs_rendered = recovered.pdfs
    result.emails_dispatched = recovered.invoice_emails
    return result
