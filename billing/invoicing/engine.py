"""The finalization engine: turn rated invoices into issued ones, the same way on every path.

Issuing one draft (`invoice_finalize`), drafts past their grace period in chunks
(`invoices_finalize`, the hourly cycle), and closing a month at once (`invoices_issue_for_period`,
`invoice_issue`, `invoice_reissue`) all end here, inside the caller's transaction with the
invoice and customer rows locked (or just inserted):

1. `accounts.locks.lock_customers` / `lock_drafts`: one issuing per customer at a time (id order, so
   overlapping runs never deadlock), so the adjustments an invoice bills see what the
   customer's other invoices billed;
2. `fill_from_computation` + `computation_rows`: the rated figures, the frozen snapshot, and
   the line and usage rows (`rewrite_changed_rows` for drafts whose figures changed);
3. `issue`: the numbers from the locked sequence row in one statement (gapless: they commit
   or roll back with the invoices), the finalized stamp, the event rows and the queued
   email deliveries;
4. after the commit, `IssueBatch` renders the PDFs (in worker processes for big batches),
   stores them and dispatches the emails; a PDF that fails is logged and rendered again by
   the cycle's catch-up (`invoice_pdfs_render_missing`): the invoice stays issued.

A failure of one customer is a `Failure` (customer id, stable code, message), logged and
reported by the caller, which goes on with the others.

Nothing billable, nothing issued: a customer with no subscription active in the period, no
usage in it and no adjustment (`nothing_billable`) gets no invoice on any path. Batches
report it in `skipped` (`skipped_for`: `nothing_billable`, or `period_before_customer` for a
month that ended before the customer was created), never numbering a zero invoice.

Reissue: an invoice created for a period whose invoice was voided names the voided one in
`replaces` (`RatingContext.voided_invoice`), printed "Replaces <number>" on its PDF.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from celery.exceptions import SoftTimeLimitExceeded

from accounts.models import Customer, Reseller
from billing.balance.services import balance_apply_to_invoice
from billing.document import LAYOUT_VERSION
from billing.invoicing.compute import InvoiceComputation
from billing.invoicing.delivery import invoices_deliver_rendered
from billing.invoicing.numbering import invoice_numbers_next
from billing.invoicing.pdf_pool import PdfBatch
from billing.invoicing.periods import Period, local_date, period_has_ended
from billing.invoicing.rendering import invoice_document, invoice_snapshot
from billing.invoicing.transitions import (
    invoice_check_transition,
    invoice_event,
    invoice_paid_from_balance,
)
from billing.models import (
    Invoice,
    InvoiceEmail,
    InvoiceEvent,
    InvoiceLine,
    InvoiceStatus,
    InvoiceUsage,
)
from core.errors import ApplicationError
from webhooks.catalogue import INVOICE_FINALIZED
from webhooks.events import webhook_events_record

logger = logging.getLogger(__name__)

#: Below this many invoices, starting PDF worker processes costs more than rendering inline.
POOL_MIN_INVOICES = 200


@dataclass(frozen=True)
class Failure:
    """One customer (or draft) a batch could not bill, or left out; the batch went on with
    the others. Both keys are explicit: `customer_id` always, `invoice_id` the draft
    concerned when there is one (finalizing drafts), else None."""

    customer_id: int
    code: str
    message: str
    invoice_id: int | None = None
    #: The error to raise when the batch was for this one customer or draft
    #: (`BatchResult.error_for`); not part of the comparison.
    error: ApplicationError | None = field(default=None, compare=False, repr=False)


def refusal_of(
    error: ApplicationError, *, customer_id: int, invoice_id: int | None = None
) -> Failure:
    """A batch's record of `error` for this customer (and draft), keeping the error."""
    return Failure(customer_id, error.code, error.message, invoice_id, error)


def out_of_time_reraise(exc: BaseException) -> None:
    """A task's soft time limit is not one customer's failure: stop the whole batch (the
    task is acknowledged; the next cycle resumes where this one stopped)."""
    if isinstance(exc, SoftTimeLimitExceeded):
        raise exc


def failure_of(exc: Exception, *, customer_id: int, invoice_id: int | None = None) -> Failure:
    """Log a customer's failure with its id and code, and describe it for the batch result.

    An `ApplicationError` keeps its code; anything else is `internal_error` (with a traceback
    in the log). A soft time limit is raised again (`out_of_time_reraise`)."""
    out_of_time_reraise(exc)
    if isinstance(exc, ApplicationError):
        logger.warning("customer %s not billed (invoice %s): %s", customer_id, invoice_id, exc.code)
        return refusal_of(exc, customer_id=customer_id, invoice_id=invoice_id)
    logger.error(
        "customer %s not billed (invoice %s): internal_error",
        customer_id,
        invoice_id,
        exc_info=exc,
    )
    failure = Failure(customer_id, "internal_error", f"{type(exc).__name__}: {exc}", invoice_id)
    return replace(failure, error=ApplicationError(failure.code, failure.message))


def one_at_a_time(
    items: list, issue_one: Callable[[list], list[Issued]], exc: Exception
) -> list[Issued]:
    """A chunk failed as a whole (rolled back, no number used): issue it again one item per
    transaction, so only the bad one fails. A soft time limit is raised again."""
    out_of_time_reraise(exc)
    logger.warning("a chunk of %d failed (%r); one at a time", len(items), exc)
    issued: list[Issued] = []
    for item in items:
        issued += issue_one([item])
    return issued


@dataclass
class Issued:
    """An invoice being issued with the rows it was given, and its queued email (if any)."""

    invoice: Invoice
    lines: list[InvoiceLine]
    usage: list[InvoiceUsage]
    delivery: InvoiceEmail | None = None


def require_ended(*, period: Period, reseller: Reseller, now: dt.datetime) -> None:
    if not period_has_ended(period=period, tz=reseller.tzinfo, now=now):
        raise ApplicationError(
            "period_not_ended",
            f"{period.label} has not ended yet in {reseller.timezone}; preview it instead.",
            extra={"period": period.label},
        )


# -- rated figures and rows ---------------------------------------------------------------

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


def stored_row_keys(invoices: list[Invoice]) -> dict[int, tuple]:
    """`row_keys` of the stored rows of these invoices (two queries for any number)."""
    invoice_ids = [invoice.pk for invoice in invoices]
    lines: dict[int, list] = {pk: [] for pk in invoice_ids}
    usage: dict[int, list] = {pk: [] for pk in invoice_ids}
    for invoice_id, *values in (
        InvoiceLine.objects.filter(invoice__in=invoices)
        .order_by("invoice_id", "position")
        .values_list("invoice_id", *_LINE_FIELDS)
    ):
        lines[invoice_id].append(tuple(values))
    for invoice_id, *values in (
        InvoiceUsage.objects.filter(invoice__in=invoices)
        .order_by()
        .values_list("invoice_id", *_USAGE_FIELDS)
    ):
        usage[invoice_id].append(tuple(values))
    return {pk: (lines[pk], sorted(usage[pk], key=repr)) for pk in invoice_ids}


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


def nothing_billable(computation: InvoiceComputation) -> bool:
    """No subscription active in the period, no usage in it and no adjustment: exactly the
    customers `customers_to_invoice` leaves out (so a draft discarded for it never returns)."""
    return not (computation.subscriptions or computation.usage or computation.lines)


#: The codes of `skipped_for`: a customer with nothing to bill in the period is skipped.
SKIP_CODES = frozenset({"nothing_billable", "period_before_customer"})


def customer_first_period(customer: Customer) -> Period:
    """The month (reseller's timezone) in which the customer was created."""
    return Period.containing(local_date(customer.created_at, customer.reseller.tzinfo))


def skipped_for(customer: Customer, period: Period) -> ApplicationError:
    """Why a customer with nothing billable in `period` gets no invoice (see SKIP_CODES):
    `period_before_customer` when the month ended before the customer was created (a typo,
    `1970-01`), else `nothing_billable`. Not a failure: nothing is wrong, nothing is owed."""
    first = customer_first_period(customer)
    if period < first:
        return ApplicationError(
            "period_before_customer",
            f"Customer {customer.pk} was created in {first.label}; {period.label} is before "
            "it and has nothing to bill.",
            extra={"period": period.label, "customer_since": first.label},
        )
    return ApplicationError(
        "nothing_billable",
        f"Customer {customer.pk} has no subscription, usage or adjustment in {period.label}: "
        "no invoice.",
        extra={"period": period.label},
    )


def skip_of(exc: ApplicationError, *, customer_id: int, invoice_id: int | None = None) -> Failure:
    """A batch's record of a skipped customer (logged at info level: not an error)."""
    logger.info("customer %s skipped (invoice %s): %s", customer_id, invoice_id, exc.code)
    return refusal_of(exc, customer_id=customer_id, invoice_id=invoice_id)


def rewrite_changed_rows(items: list[Issued]) -> None:
    """Store the rows of drafts whose lines or usage differ from what is stored (the rest are
    left as they are: re-rating an unchanged draft writes nothing)."""
    if not items:
        return
    stored = stored_row_keys([item.invoice for item in items])
    changed = [
        item for item in items if stored[item.invoice.pk] != row_keys(item.lines, item.usage)
    ]
    if not changed:
        return
    invoices = [item.invoice for item in changed]
    InvoiceLine.objects.filter(invoice__in=invoices).delete()
    InvoiceUsage.objects.filter(invoice__in=invoices).delete()
    InvoiceLine.objects.bulk_create([line for item in changed for line in item.lines])
    InvoiceUsage.objects.bulk_create([row for item in changed for row in item.usage])


def new_invoice(*, customer: Customer, period: Period, replaces_id: int | None = None) -> Invoice:
    """An unsaved draft of the customer's period (its reseller object shared); `replaces_id`:
    the period's voided invoice it bills again (`RatingContext.voided_invoice`)."""
    return Invoice(
        reseller=customer.reseller,
        customer=customer,
        period_start=period.start,
        period_end=period.end,
        layout_version=LAYOUT_VERSION,
        replaces_id=replaces_id,
    )


def drafts_delete(drafts: list[Invoice]) -> int:
    """Delete drafts with their lines, usage rows and events (issued invoices are refused by
    the model). Returns how many drafts went."""
    if not drafts:
        return 0
    deleted = Invoice.objects.rows_of(drafts).filter(status=InvoiceStatus.DRAFT).delete()[1]
    return deleted.get(Invoice._meta.label, 0)


# -- locks ----------------------------------------------------------------------------------


def lock_drafts(invoices: Iterable[Invoice]) -> dict[int, Invoice]:
    """Lock these invoice rows (id order) and return them by id; a row deleted meanwhile (a
    discarded draft) is missing. `of=self`: not the joined customer and reseller rows, which
    would serialize every finalization of the reseller."""
    return {
        invoice.pk: invoice
        for invoice in Invoice.objects.select_for_update(of=("self",))
        .select_related("customer__reseller", "reseller")
        .rows_of(invoices)
        .order_by("pk")
    }


def not_draft(invoice_id: int, invoice: Invoice | None) -> ApplicationError:
    if invoice is None:
        return ApplicationError(
            "invoice_not_draft",
            f"Invoice {invoice_id} is no longer there (its draft was discarded).",
            extra={"status": None},
        )
    return ApplicationError(
        "invoice_not_draft",
        f"Invoice {invoice} is {invoice.status}, not a draft.",
        extra={"status": invoice.status},
    )


# -- issuing --------------------------------------------------------------------------------

_ISSUE_FIELDS = [
    "number",
    "sequence_year",
    "sequence_number",
    "issued_on",
    "due_on",
    "layout_version",
    "finalized_at",
    "status",
    "balance_applied",
    "updated_at",
]


def issue(
    items: list[Issued],
    *,
    reseller: Reseller,
    now: dt.datetime,
    actor: str,
    send_email: bool,
    inserted: bool = False,
) -> None:
    """Number, stamp and log these drafts of `reseller` (rows current, locked or inserted by
    the caller's transaction), and queue their emails.

    `inserted`: the invoices were inserted by this transaction (record their creation too,
    and write only the stamp: the rest of the row is stored as is)."""
    if not items:
        return
    issued_on = local_date(now, reseller.tzinfo)
    numbers = invoice_numbers_next(reseller=reseller, year=issued_on.year, count=len(items))
    own_terms = dict(
        Customer.objects.for_reseller(reseller)
        .filter(pk__in={item.invoice.customer_id for item in items})
        .exclude(payment_terms_days=None)
        .values_list("pk", "payment_terms_days")
    )  # customers with their own terms; the rest take the reseller's
    events = []
    for item, (number, sequence_number) in zip(items, numbers, strict=True):
        invoice = item.invoice
        invoice_check_transition(invoice=invoice, to_status=InvoiceStatus.FINALIZED)
        if inserted:
            events.append(invoice_event(invoice, "", InvoiceStatus.DRAFT, now, actor, "created"))
        invoice.number = number
        invoice.sequence_year = issued_on.year
        invoice.sequence_number = sequence_number
        invoice.issued_on = issued_on
        terms = own_terms.get(invoice.customer_id, reseller.payment_terms_days)
        invoice.due_on = issued_on + dt.timedelta(days=terms)
        invoice.layout_version = LAYOUT_VERSION
        invoice.finalized_at = now
        balance_apply_to_invoice(invoice=invoice, now=now, actor=actor)
        invoice.status = InvoiceStatus.FINALIZED
        invoice.save(update_fields=_ISSUE_FIELDS if inserted else None)
        events.append(
            invoice_event(invoice, InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED, now, actor, number)
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
        InvoiceEmail.objects.bulk_create([item.delivery for item in items])
    webhook_events_record(
        reseller_id=reseller.pk,
        event_type=INVOICE_FINALIZED,
        subject_ids=[item.invoice.pk for item in items],
        now=now,
    )
    for item in items:  # the balance covered all of it: nothing is due, the invoice is paid
        if 0 < item.invoice.balance_applied == item.invoice.total:
            invoice_paid_from_balance(invoice=item.invoice, now=now, actor=actor)


class IssueBatch:
    """After each committed chunk: render the issued invoices' PDFs (in `pdf_processes`
    worker processes for batches of at least `POOL_MIN_INVOICES`), store them and dispatch
    the emails. Rendering of one chunk overlaps the issuing of the next."""

    def __init__(self, *, now: dt.datetime, expected: int, pdf_processes: int = 0) -> None:
        processes = pdf_processes if expected >= POOL_MIN_INVOICES else 0
        self._pdfs = PdfBatch(now=now, processes=processes, store=invoices_deliver_rendered)

    def __enter__(self) -> IssueBatch:
        self._pdfs.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._pdfs.__exit__(exc_type, exc, tb)

    def committed(self, items: list[Issued]) -> None:
        """Deliver the previous chunk's PDFs and start rendering these."""
        self._pdfs.flush()
        for item in items:
            doc = invoice_document(item.invoice, lines=item.lines, usage=item.usage)
            self._pdfs.submit(item.invoice, doc, item.delivery)
