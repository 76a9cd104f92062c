"""Issuing credit notes: `credit_note_create` (full, an amount, or amounts per invoice line).

Rules (docs/api.md, "Credit notes"):
- only a finalized or paid invoice is credited (`invoice_not_creditable`, a 409);
- a full credit (no amount, no lines) credits whatever is left of the invoice, its uncredited
  subtotal and tax exactly; `amount` is a gross figure (tax included) split at the invoice's
  net/total ratio, cumulatively over its notes; `lines` credit net amounts of invoice lines,
  each at most what is left of that line (`credit_exceeds_line`), with the tax of each line
  rounded cumulatively per line (the arithmetic is `billing.credit_notes.amounts`);
- over an invoice's credit notes the credited total, subtotal and tax never exceed the
  invoice's, nor, for line credits, a line's net and tax (`credit_exceeds_invoice`):
  checked under the invoice's row lock, which every credit of that invoice takes first, so
  two concurrent credits are checked one after the other;
- an optional `idempotency_key` (unique per reseller) makes a retried request return the
  note issued the first time instead of crediting twice.

The note is numbered from its own locked sequence row, its snapshot frozen, its first email
delivery queued, all in one transaction; the PDF is rendered after the commit (and again on
demand if that fails), the email sent by `credit_note_email_send_task` once committed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from billing.balance.services import balance_credit_from_credit_note
from billing.credit_notes.amounts import (
    CreditRefused,
    NetTax,
    credit_split_gross,
    credit_split_lines,
)
from billing.credit_notes.delivery import credit_note_email_queue, credit_note_pdf_store
from billing.credit_notes.models import CreditNote, CreditNoteLine
from billing.credit_notes.numbering import credit_note_number_next
from billing.credit_notes.rendering import credit_note_snapshot
from billing.credit_notes.selectors import invoice_credited
from billing.invoicing.periods import local_date
from billing.models import Invoice, InvoiceKind, InvoiceStatus
from billing.money import currency_exponent, quantize_money
from billing.payments.services import invoice_settle_if_covered
from core.errors import ApplicationError
from core.money import InvalidAmount, parse_amount
from webhooks.catalogue import CREDIT_NOTE_CREATED
from webhooks.events import webhook_event_record

logger = logging.getLogger(__name__)

CREDITABLE_STATUSES = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)


def _field_error(code: str, field: str, message: str) -> ApplicationError:
    return ApplicationError(code, message, extra={"fields": {field: [message]}})


def _money(value: Any, *, currency: str, field: str) -> Decimal:
    """The one money parser (`core.money`), here too for callers other than the API and
    the admin (shell, tasks): plain decimal digits, bounded, the currency's decimals."""
    try:
        amount = parse_amount(value, places=currency_exponent(currency))
    except InvalidAmount as exc:
        raise _field_error("invalid_amount", field, exc.message) from None
    if amount <= 0:
        raise _field_error("invalid_amount", field, "The amount must be above 0.")
    return quantize_money(amount, currency)


def credit_note_create(
    *,
    invoice: Invoice,
    now: dt.datetime,
    amount: Decimal | str | None = None,
    lines: Sequence[dict[str, Any]] | None = None,
    reason: str = "",
    memo: str = "",
    actor: str = "",
    idempotency_key: str = "",
    send_email: bool = True,
) -> CreditNote:
    """Issue a credit note against `invoice` (already scoped to its reseller by the caller).

    `lines`: `[{"line": <invoice line id>, "amount": <net>}]`. Neither `amount` nor `lines`:
    a full credit of what is left. Returns the note (the earlier one for a repeated
    `idempotency_key`)."""
    if amount is not None and lines is not None:
        raise _field_error(
            "credit_amount_and_lines", "non_field_errors", "Give either amount or lines, not both."
        )
    if lines is not None and not lines:
        raise _field_error("invalid_lines", "lines", "Give at least one line.")
    if reason and reason not in CreditNote.Reason.values:
        raise _field_error("invalid_reason", "reason", f"Unknown reason {reason!r}.")
    try:
        with transaction.atomic():
            note, created = _create_locked(
                invoice=invoice,
                now=now,
                amount=amount,
                lines=lines,
                reason=reason,
                memo=memo,
                actor=actor,
                idempotency_key=idempotency_key,
                send_email=send_email,
            )
    except IntegrityError:
        # Only the idempotency key can clash here: the same key on another invoice, sent
        # concurrently (the same invoice queues on its row lock and finds the first note).
        if not idempotency_key:
            raise
        raise _key_reused() from None
    if created:
        try:
            credit_note_pdf_store(credit_note=note, now=now)
        except Exception:  # the PDF is rendered again when it is first asked for
            logger.exception("rendering the PDF of credit note %s failed", note.pk)
    return note


def _key_reused() -> ApplicationError:
    return ApplicationError(
        "idempotency_key_reused",
        "This idempotency key was used for a credit note of another invoice.",
    )


def _create_locked(
    *,
    invoice: Invoice,
    now: dt.datetime,
    amount: Any,
    lines: Sequence[dict[str, Any]] | None,
    reason: str,
    memo: str,
    actor: str,
    idempotency_key: str,
    send_email: bool,
) -> tuple[CreditNote, bool]:
    locked = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("reseller", "customer")
        .get(pk=invoice.pk, reseller_id=invoice.reseller_id)
    )
    if idempotency_key:
        earlier = CreditNote.objects.filter(
            reseller_id=locked.reseller_id, idempotency_key=idempotency_key
        ).first()
        if earlier is not None:
            if earlier.invoice_id != locked.pk:
                raise _key_reused()
            return earlier, False
    if locked.status not in CREDITABLE_STATUSES:
        raise ApplicationError(
            "invoice_not_creditable",
            f"Invoice {locked} is {locked.status}; only finalized or paid invoices are credited.",
            extra={"status": locked.status},
        )
    if locked.kind == InvoiceKind.TOP_UP:
        raise ApplicationError(
            "invoice_is_top_up",
            f"Invoice {locked} buys a top-up: void it while unpaid; take money already on "
            "the balance back with a negative balance adjustment.",
        )
    currency = locked.currency
    try:
        drafts = _drafts(locked, amount=amount, lines=lines)
    except CreditRefused as refused:
        raise ApplicationError(refused.code, refused.message, extra=refused.extra) from None
    issued_on = local_date(now, locked.reseller.tzinfo)
    number, sequence_number = credit_note_number_next(reseller=locked.reseller, year=issued_on.year)
    note = CreditNote.objects.create(
        reseller=locked.reseller,
        invoice=locked,
        customer=locked.customer,
        currency=currency,
        number=number,
        sequence_year=issued_on.year,
        sequence_number=sequence_number,
        reason=reason,
        memo=memo[:500],
        subtotal=sum((c.net for _, c in drafts), start=Decimal(0)),
        tax_rate=locked.tax_rate,
        tax=sum((c.tax for _, c in drafts), start=Decimal(0)),
        total=sum((c.total for _, c in drafts), start=Decimal(0)),
        issued_on=issued_on,
        snapshot=credit_note_snapshot(invoice=locked),
        created_by=actor[:150],
        idempotency_key=idempotency_key,
        created_at=now,
    )
    CreditNoteLine.objects.bulk_create(
        CreditNoteLine(
            credit_note=note,
            position=position,
            invoice_line=invoice_line,
            description=_description(locked, invoice_line, full=amount is None and lines is None),
            amount=credit.net,
            tax=credit.tax,
            total=credit.total,
        )
        for position, (invoice_line, credit) in enumerate(drafts, start=1)
    )
    if send_email:
        credit_note_email_queue(
            credit_note=note, now=now, recipients=locked.customer.billing_emails
        )
    webhook_event_record(
        reseller_id=note.reseller_id, event_type=CREDIT_NOTE_CREATED, subject_id=note.pk, now=now
    )
    # A finalized invoice whose payments and credits now cover it becomes paid.
    invoice_settle_if_covered(
        invoice=locked, now=now, actor=actor, note=f"Settled by credit note {note.number}"
    )
    # What is no longer owed on a settled invoice goes on the customer's balance.
    balance_credit_from_credit_note(invoice=locked, credit_note=note, now=now, actor=actor)
    return note, True


def _drafts(
    invoice: Invoice, *, amount: Any, lines: Sequence[dict[str, Any]] | None
) -> list[tuple[Any, NetTax]]:
    """(invoice line or None, net and tax) per line of the note, within what is left."""
    currency = invoice.currency
    figures = NetTax(
        quantize_money(invoice.subtotal, currency), quantize_money(invoice.tax, currency)
    )
    credited = invoice_credited(invoice=invoice)
    if lines is None:
        gross = None if amount is None else _money(amount, currency=currency, field="amount")
        split = credit_split_gross(
            gross, invoice=figures, credited=credited.overall, currency=currency
        )
        return [(None, split)]
    by_id = {line.pk: line for line in invoice.lines.all()}
    requests = _line_requests(invoice, lines, by_id)
    splits = credit_split_lines(
        requests,
        lines={pk: quantize_money(line.amount, currency) for pk, line in by_id.items()},
        invoice=figures,
        credited=credited,
        tax_rate=invoice.tax_rate,
        currency=currency,
    )
    return [(by_id[line_id], split) for (line_id, _), split in zip(requests, splits, strict=True)]


def _line_requests(
    invoice: Invoice, lines: Sequence[dict[str, Any]], by_id: dict[int, Any]
) -> list[tuple[int, Decimal]]:
    """`[{"line": id, "amount": net}]` as (line id, net): ids of this invoice, each once."""
    requests: list[tuple[int, Decimal]] = []
    for item in lines:
        line_id = item.get("line")
        if isinstance(line_id, bool) or not isinstance(line_id, int) or line_id not in by_id:
            raise _field_error("invalid_lines", "lines", f"Line {line_id} is not on this invoice.")
        if any(line_id == seen for seen, _ in requests):
            raise _field_error("invalid_lines", "lines", f"Line {line_id} is given twice.")
        requests.append(
            (line_id, _money(item.get("amount"), currency=invoice.currency, field="lines"))
        )
    return requests


def _description(invoice: Invoice, invoice_line, *, full: bool) -> str:
    if invoice_line is not None:
        return invoice_line.description[:300]
    if full:
        return f"Credit of the remaining amount of invoice {invoice.number}"
    return f"Credit on invoice {invoice.number}"
