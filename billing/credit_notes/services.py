"""Issuing credit notes: `credit_note_create` (full, an amount, or amounts per invoice line).

Rules (docs/api.md, "Credit notes"):
- only a finalized or paid invoice is credited (`invoice_not_creditable`, a 409);
- a full credit (no amount, no lines) credits whatever is left of the invoice; `amount` is a
  gross figure (tax included) split at the invoice's tax rate; `lines` credit net amounts of
  invoice lines, each at most what is left of that line (`credit_exceeds_line`), with the tax
  of each line rounded once;
- the sum of an invoice's credit notes never exceeds its total (`credit_exceeds_invoice`):
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

from billing.credit_notes.amounts import (
    CreditAmounts,
    credit_from_gross,
    credit_from_net,
    credit_remainder,
    money_places_ok,
)
from billing.credit_notes.delivery import credit_note_email_queue, credit_note_pdf_store
from billing.credit_notes.models import CreditNote, CreditNoteLine
from billing.credit_notes.numbering import credit_note_number_next
from billing.credit_notes.rendering import credit_note_snapshot
from billing.credit_notes.rules import CreditNoteConflict
from billing.credit_notes.selectors import invoice_credited_split, invoice_lines_credited
from billing.events import credit_note_created_emit
from billing.invoicing.periods import local_date
from billing.models import Invoice, InvoiceStatus
from billing.money import quantize_money
from config.errors import ApplicationError

logger = logging.getLogger(__name__)

CREDITABLE_STATUSES = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)


def _field_error(code: str, field: str, message: str) -> ApplicationError:
    return ApplicationError(code, message, extra={"fields": {field: [message]}})


def _money(value: Any, *, currency: str, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise _field_error("invalid_amount", field, "Give the amount as a decimal string.")
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise _field_error("invalid_amount", field, "Give the amount as a decimal.") from None
    if not amount.is_finite() or amount <= 0:
        raise _field_error("invalid_amount", field, "The amount must be above 0.")
    if not money_places_ok(amount, currency):
        raise _field_error(
            "invalid_amount", field, f"{currency} amounts cannot have more decimals than that."
        )
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
    return CreditNoteConflict(
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
        raise CreditNoteConflict(
            "invoice_not_creditable",
            f"Invoice {locked} is {locked.status}; only finalized or paid invoices are credited.",
            extra={"status": locked.status},
        )
    currency = locked.currency
    credited_subtotal, _credited_tax, credited_total = invoice_credited_split(invoice=locked)
    total_left = quantize_money(locked.total - credited_total, currency)
    subtotal_left = quantize_money(locked.subtotal - credited_subtotal, currency)
    if lines is not None:
        drafts = _line_credits(locked, lines)
    else:
        drafts = [(None, _amount_credit(locked, amount, subtotal_left, total_left))]
    total = sum((credit.total for _, credit in drafts), start=Decimal(0))
    if total > total_left or total_left <= 0:
        raise CreditNoteConflict(
            "credit_exceeds_invoice",
            f"Only {total_left} {currency} of invoice {locked} is left to credit.",
            extra={"remaining": str(total_left), "requested": str(total)},
        )
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
        subtotal=sum((c.amount for _, c in drafts), start=Decimal(0)),
        tax_rate=locked.tax_rate,
        tax=sum((c.tax for _, c in drafts), start=Decimal(0)),
        total=total,
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
            amount=credit.amount,
            tax=credit.tax,
            total=credit.total,
        )
        for position, (invoice_line, credit) in enumerate(drafts, start=1)
    )
    if send_email:
        credit_note_email_queue(
            credit_note=note, now=now, recipients=locked.customer.billing_emails
        )
    credit_note_created_emit(credit_note=note, now=now)
    return note, True


def _amount_credit(
    invoice: Invoice, amount: Any, subtotal_left: Decimal, total_left: Decimal
) -> CreditAmounts:
    currency, rate = invoice.currency, invoice.tax_rate
    if amount is not None:
        gross = _money(amount, currency=currency, field="amount")
        if gross != total_left:
            return credit_from_gross(gross, tax_rate=rate, currency=currency)
    return credit_remainder(
        subtotal_left=subtotal_left, total_left=total_left, tax_rate=rate, currency=currency
    )


def _line_credits(invoice: Invoice, lines: Sequence[dict[str, Any]]) -> list[tuple[Any, Any]]:
    by_id = {line.pk: line for line in invoice.lines.all()}
    already = invoice_lines_credited(invoice=invoice)
    seen: set[int] = set()
    drafts = []
    for item in lines:
        line_id = item.get("line")
        line = by_id.get(line_id) if isinstance(line_id, int) else None
        if line is None:
            raise _field_error("invalid_lines", "lines", f"Line {line_id} is not on this invoice.")
        if line_id in seen:
            raise _field_error("invalid_lines", "lines", f"Line {line_id} is given twice.")
        seen.add(line_id)
        net = _money(item.get("amount"), currency=invoice.currency, field="lines")
        left = line.amount - already.get(line.pk, Decimal(0))
        if net > left:
            raise CreditNoteConflict(
                "credit_exceeds_line",
                f"Only {quantize_money(max(left, Decimal(0)), invoice.currency)} "
                f"{invoice.currency} of line {line_id} is left to credit.",
                extra={"line": line_id, "remaining": str(left), "requested": str(net)},
            )
        drafts.append(
            (line, credit_from_net(net, tax_rate=invoice.tax_rate, currency=invoice.currency))
        )
    return drafts


def _description(invoice: Invoice, invoice_line, *, full: bool) -> str:
    if invoice_line is not None:
        return invoice_line.description[:300]
    if full:
        return f"Credit of the remaining amount of invoice {invoice.number}"
    return f"Credit on invoice {invoice.number}"
