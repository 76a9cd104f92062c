"""The monthly cycle: drafts when a period ends, refreshes in grace, then finalization.

Exactly once: `Invoice(customer, period_start)` is unique, so two runs (or two workers)
creating the same draft end with one row: the loser's INSERT fails inside a savepoint and
it takes the winner's row. Finalization is one transaction (lock the draft, re-rate, take
the number from the locked sequence row, freeze snapshot, lines and usage, log the event,
queue the email delivery row); the PDF is rendered after the commit and is re-runnable, so
an invoice finalized whose PDF failed is rendered again by the next cycle run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from accounts.models import Customer, Reseller
from billing.document import LAYOUT_VERSION
from billing.invoicing.compute import InvoiceComputation, invoice_compute
from billing.invoicing.context import CHUNK_SIZE, RatingContext
from billing.invoicing.numbering import invoice_number_next
from billing.invoicing.periods import (
    Period,
    local_date,
    period_due_at,
    period_has_ended,
    period_last_closed,
)
from billing.invoicing.rendering import invoice_snapshot
from billing.invoicing.transitions import invoice_check_transition, invoice_event_record
from billing.models import Invoice, InvoiceEmail, InvoiceLine, InvoiceStatus, InvoiceUsage
from billing.selectors import customers_to_invoice
from config.errors import ApplicationError

if TYPE_CHECKING:
    from billing.invoicing.finalizing import FinalizeResult

logger = logging.getLogger(__name__)


def _require_ended(*, period: Period, reseller: Reseller, now: dt.datetime) -> None:
    if not period_has_ended(period=period, tz=reseller.tzinfo, now=now):
        raise ApplicationError(
            "period_not_ended",
            f"{period.label} has not ended yet in {reseller.timezone}; preview it instead.",
            extra={"period": period.label},
        )


_LINE_FIELDS = (
    "kind",
    "description",
    "amount",
    "group",
    "subscription_id",
    "quantity",
    "unit",
    "unit_price",
    "details",
    "adjusts_invoice_id",
    "sub_account_id",
)
_USAGE_FIELDS = ("subscription_id", "sub_account_id", "sub_account_label", "upstream_name", "bytes")


def row_keys(lines: list[InvoiceLine], usage: list[InvoiceUsage]) -> tuple:
    """What an invoice's lines and usage rows say, comparable with `stored_row_keys`."""
    return (
        [tuple(getattr(ln, f) for f in _LINE_FIELDS) for ln in lines],
        sorted((tuple(getattr(row, f) for f in _USAGE_FIELDS) for row in usage), key=repr),
    )


def stored_row_keys(invoice_ids: list[int]) -> dict[int, tuple]:
    """`row_keys` of the stored rows of these invoices (two queries for any number)."""
    lines: dict[int, list] = {pk: [] for pk in invoice_ids}
    usage: dict[int, list] = {pk: [] for pk in invoice_ids}
    for invoice_id, *values in (
        InvoiceLine.objects.filter(invoice_id__in=invoice_ids)
        .order_by("invoice_id", "position")
        .values_list("invoice_id", *_LINE_FIELDS)
    ):
        lines[invoice_id].append(tuple(values))
    for invoice_id, *values in (
        InvoiceUsage.objects.filter(invoice_id__in=invoice_ids)
        .order_by()
        .values_list("invoice_id", *_USAGE_FIELDS)
    ):
        usage[invoice_id].append(tuple(values))
    return {pk: (lines[pk], sorted(usage[pk], key=repr)) for pk in invoice_ids}


def _rows_unchanged(invoice: Invoice, lines: list[InvoiceLine], usage: list[InvoiceUsage]) -> bool:
    """Whether the stored lines and usage already say exactly this (saves rewriting them)."""
    return stored_row_keys([invoice.pk])[invoice.pk] == row_keys(lines, usage)


def fill_from_computation(
    invoice: Invoice, computation: InvoiceComputation, now: dt.datetime
) -> None:
    """Give an invoice (not yet saved) the computed currency, totals and snapshot."""
    invoice.currency = computation.currency
    invoice.tax_rate = computation.tax_rate
    invoice.subtotal = computation.totals.subtotal
    invoice.tax = computation.totals.tax
    invoice.total = computation.totals.total
    invoice.snapshot = invoice_snapshot(
        customer=invoice.customer,
        subscriptions=computation.subscriptions,
        unit_notes=computation.unit_notes,
    )
    invoice.refreshed_at = now


def computation_rows(
    invoice_id: int, computation: InvoiceComputation
) -> tuple[list[InvoiceLine], list[InvoiceUsage]]:
    """The line and usage rows (unsaved) that a computation gives the invoice."""
    lines = [
        line.to_model(invoice_id=invoice_id, position=index)
        for index, line in enumerate(computation.lines, start=1)
    ]
    usage = [
        InvoiceUsage(
            invoice_id=invoice_id,
            subscription_id=row.subscription_id,
            sub_account_id=row.sub_account_id,
            sub_account_label=row.sub_account_label,
            upstream_name=row.upstream_name,
            bytes=row.bytes,
        )
        for row in computation.usage
    ]
    return lines, usage


def _apply_computation(
    invoice: Invoice, computation: InvoiceComputation, now: dt.datetime, *, fresh: bool
) -> tuple[list[InvoiceLine], list[InvoiceUsage]]:
    """Give a draft (locked by the caller, or just created) the computed totals, snapshot,
    lines and usage. Lines and usage are rewritten only when they changed."""
    fill_from_computation(invoice, computation, now)
    if fresh:
        invoice.save()
    lines, usage = computation_rows(invoice.pk, computation)
    if not fresh:
        if _rows_unchanged(invoice, lines, usage):
            return lines, usage
        InvoiceLine.objects.filter(invoice_id=invoice.pk).delete()
        InvoiceUsage.objects.filter(invoice_id=invoice.pk).delete()
    if lines:
        InvoiceLine.objects.bulk_create(lines)
    if usage:
        InvoiceUsage.objects.bulk_create(usage)
    return lines, usage


def _lock_draft(invoice: Invoice) -> Invoice:
    # of=self: lock only the invoice row, not the joined customer and reseller rows (which
    # would serialize every finalization of the reseller).
    locked = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer__reseller", "reseller")
        .get(pk=invoice.pk)
    )
    if locked.status != InvoiceStatus.DRAFT:
        raise ApplicationError(
            "invoice_not_draft",
            f"Invoice {locked} is {locked.status}, not a draft.",
            extra={"status": locked.status},
        )
    return locked


def invoice_create_draft(
    *,
    customer: Customer,
    period_start: dt.date,
    now: dt.datetime,
    context: RatingContext | None = None,
) -> tuple[Invoice, bool]:
    """The customer's draft for the period, created once (`created` says whether by this call).

    An existing invoice (draft or issued) is returned untouched. `context`: rating inputs
    prefetched for a chunk of customers of the period.
    """
    period = Period.starting(period_start)
    reseller = customer.reseller
    _require_ended(period=period, reseller=reseller, now=now)
    existing = Invoice.objects.filter(customer=customer, period_start=period.start).first()
    if existing is not None:
        return existing, False
    # Rated before the write transaction so it holds locks briefly; finalization re-rates.
    computation = invoice_compute(customer=customer, period=period, context=context)
    try:
        with transaction.atomic():
            invoice = Invoice(
                reseller=reseller,
                customer=customer,
                period_start=period.start,
                period_end=period.end,
                layout_version=LAYOUT_VERSION,
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
        # on (customer, period_start) decided; use the winner's row.
        return Invoice.objects.get(customer=customer, period_start=period.start), False
    return invoice, True


def invoice_refresh_draft(*, invoice: Invoice, now: dt.datetime) -> Invoice:
    """Re-rate a draft from current usage: its lines and usage rows are rewritten (when they
    changed). A draft finalized meanwhile raises `invoice_not_draft`."""
    with transaction.atomic():
        locked = _lock_draft(invoice)
        period = Period(start=locked.period_start, end=locked.period_end)
        computation = invoice_compute(
            customer=locked.customer, period=period, exclude_invoice_id=locked.pk
        )
        _apply_computation(locked, computation, now, fresh=False)
        locked.save()
    return locked


def invoice_preview(*, customer: Customer, period_start: dt.date) -> InvoiceComputation:
    """What the customer's invoice for a (possibly unfinished) period says now; never saved."""
    return invoice_compute(customer=customer, period=Period.starting(period_start))


@dataclass
class GenerateResult:
    period: Period
    created: list[int] = field(default_factory=list)
    refreshed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)  # already issued


def invoices_generate_for_period(
    *,
    reseller: Reseller,
    period_start: dt.date,
    now: dt.datetime,
    customer: Customer | None = None,
    customers: Sequence[Customer] | None = None,
    on_progress: Callable[[Invoice], None] | None = None,
) -> GenerateResult:
    """A draft per customer with a subscription or usage in the ended period (or just
    `customer`, or `customers`); existing drafts are refreshed, issued invoices left alone.
    New drafts are rated from inputs read once per chunk of customers."""
    period = Period.starting(period_start)
    _require_ended(period=period, reseller=reseller, now=now)
    if customer is not None:
        customers = [customer]
    if customers is None:
        customers = list(
            customers_to_invoice(reseller=reseller, start_day=period.start, end_day=period.end)
        )
    elif any(c.reseller_id != reseller.pk for c in customers):
        raise ApplicationError("not_found", "Customer not found.")
    result = GenerateResult(period=period)
    for offset in range(0, len(customers), CHUNK_SIZE):
        chunk = customers[offset : offset + CHUNK_SIZE]
        context = RatingContext(customers=chunk, period=period)
        for each in chunk:
            invoice, created = invoice_create_draft(
                customer=each, period_start=period.start, now=now, context=context
            )
            if created:
                result.created.append(invoice.pk)
            elif invoice.status == InvoiceStatus.DRAFT and _refreshed(invoice, now):
                result.refreshed.append(invoice.pk)
            else:
                result.unchanged.append(invoice.pk)
            if on_progress is not None:
                on_progress(invoice)
    return result


def _refreshed(draft: Invoice, now: dt.datetime) -> bool:
    """Refresh a draft unless it was finalized meanwhile (by a finalize task, another cycle
    worker): then there is nothing left to refresh, and it is no error."""
    try:
        invoice_refresh_draft(invoice=draft, now=now)
    except ApplicationError as exc:
        if exc.code != "invoice_not_draft":
            raise
        return False
    return True


def _lock_customer(customer_id: int) -> None:
    """One finalization per customer at a time: the adjustments it bills must see what the
    customer's other finalizations billed (nothing billed twice)."""
    list(
        Customer.objects.select_for_update(no_key=True)  # see issuing._lock_customers
        .filter(pk=customer_id)
        .order_by()
        .values_list("pk", flat=True)
    )


def stamp_issued(
    invoice: Invoice,
    *,
    number: str,
    sequence_number: int,
    issued_on: dt.date,
    now: dt.datetime,
    saved_otherwise: bool = False,
) -> None:
    """Number a draft whose lines are current and save it finalized (in the caller's
    transaction, with the invoice and customer rows locked or just created).
    `saved_otherwise`: the rest of the row is already stored as is (write only the stamp)."""
    invoice_check_transition(invoice=invoice, to_status=InvoiceStatus.FINALIZED)
    invoice.number = number
    invoice.sequence_year = issued_on.year
    invoice.sequence_number = sequence_number
    invoice.issued_on = issued_on
    invoice.due_on = issued_on + dt.timedelta(days=invoice.reseller.payment_terms_days)
    invoice.layout_version = LAYOUT_VERSION
    invoice.finalized_at = now
    invoice.status = InvoiceStatus.FINALIZED
    invoice.save(update_fields=_ISSUE_FIELDS if saved_otherwise else None)


_ISSUE_FIELDS = [
    "number",
    "sequence_year",
    "sequence_number",
    "issued_on",
    "due_on",
    "layout_version",
    "finalized_at",
    "status",
    "updated_at",
]


def _issue(
    invoice: Invoice, *, now: dt.datetime, actor: str, send_email: bool
) -> InvoiceEmail | None:
    """Number and freeze a draft whose lines are current (inside the caller's transaction,
    with the invoice and customer rows locked)."""
    reseller = invoice.reseller
    invoice_check_transition(invoice=invoice, to_status=InvoiceStatus.FINALIZED)
    issued_on = local_date(now, reseller.tzinfo)
    number, sequence_number = invoice_number_next(reseller=reseller, year=issued_on.year)
    stamp_issued(
        invoice, number=number, sequence_number=sequence_number, issued_on=issued_on, now=now
    )
    invoice_event_record(
        invoice=invoice,
        from_status=InvoiceStatus.DRAFT,
        to_status=InvoiceStatus.FINALIZED,
        now=now,
        actor=actor,
        note=number,
    )
    if not send_email:
        return None
    return InvoiceEmail.objects.create(
        invoice=invoice, sequence=1, recipients=invoice.snapshot["buyer"]["emails"], queued_at=now
    )


def _after_issue(
    invoice: Invoice,
    delivery: InvoiceEmail | None,
    *,
    now: dt.datetime,
    lines: list[InvoiceLine],
    usage: list[InvoiceUsage],
) -> None:
    """After the commit: store the PDF (re-runnable), then dispatch the email."""
    from billing.invoicing.delivery import invoice_email_dispatch, invoice_pdf_store

    try:
        invoice_pdf_store(invoice=invoice, now=now, lines=lines, usage=usage)
    except Exception:
        # The invoice is issued either way; the next cycle run renders missing PDFs.
        logger.exception("PDF rendering failed for invoice %s; will retry", invoice.pk)
    if delivery is not None:
        invoice_email_dispatch(delivery=delivery)


def invoice_finalize(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", send_email: bool = True
) -> Invoice:
    """Issue a draft: re-rate, number, freeze, then render the PDF and queue the email.

    Issue date is `now` in the reseller's timezone; due date adds its payment terms.
    """
    with transaction.atomic():
        locked = _lock_draft(invoice)
        period = Period(start=locked.period_start, end=locked.period_end)
        _require_ended(period=period, reseller=locked.reseller, now=now)
        invoice_check_transition(invoice=locked, to_status=InvoiceStatus.FINALIZED)
        _lock_customer(locked.customer_id)
        computation = invoice_compute(
            customer=locked.customer, period=period, exclude_invoice_id=locked.pk
        )
        lines, usage = _apply_computation(locked, computation, now, fresh=False)
        delivery = _issue(locked, now=now, actor=actor, send_email=send_email)
    _after_issue(locked, delivery, now=now, lines=lines, usage=usage)
    return locked


def invoices_finalize_due(
    *,
    now: dt.datetime,
    reseller: Reseller | None = None,
    send_email: bool = True,
    pdf_processes: int = 0,
) -> FinalizeResult:
    """Finalize drafts whose grace period (the reseller's `grace_period_days`) is over, in
    chunks (`billing.invoicing.finalizing`)."""
    from billing.invoicing.finalizing import FinalizeResult, invoices_finalize

    result = FinalizeResult()
    resellers = [reseller] if reseller is not None else list(Reseller.objects.all())
    for each in resellers:
        done = invoices_finalize(
            invoices=invoices_due(reseller=each, now=now),
            now=now,
            send_email=send_email,
            pdf_processes=pdf_processes,
        )
        result.finalized.extend(done.finalized)
        result.failed.update(done.failed)
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


@dataclass
class CycleResult:
    generated: GenerateResult
    refreshed: list[int]
    finalized: FinalizeResult
    pdfs_rendered: list[int]
    emails_dispatched: list[int]


def invoice_cycle_run(*, reseller: Reseller, now: dt.datetime) -> CycleResult:
    """One hourly pass for a reseller: drafts for the month that just closed, refresh of
    drafts still in grace, finalization of due drafts, catch-up of missing PDFs and of
    deliveries that were queued but never dispatched."""
    from billing.invoicing.delivery import invoice_emails_redispatch, invoice_pdfs_render_missing

    period = period_last_closed(tz=reseller.tzinfo, now=now)
    generated = invoices_generate_for_period(reseller=reseller, period_start=period.start, now=now)
    finalized = invoices_finalize_due(reseller=reseller, now=now)
    refreshed = []
    for draft in Invoice.objects.for_reseller(reseller).filter(status=InvoiceStatus.DRAFT):
        if draft.pk in generated.created or draft.pk in generated.refreshed:
            continue
        if _refreshed(draft, now):
            refreshed.append(draft.pk)
    return CycleResult(
        generated=generated,
        refreshed=refreshed,
        finalized=finalized,
        pdfs_rendered=invoice_pdfs_render_missing(reseller=reseller, now=now),
        emails_dispatched=invoice_emails_redispatch(reseller=reseller, now=now),
    )
