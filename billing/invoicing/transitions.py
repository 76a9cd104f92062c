"""Status changes of issued invoices, each checked against `INVOICE_TRANSITIONS` and logged.

draft -> finalized (only the finalization engine), finalized -> paid (its balance due reached
0 by payments: `billing.payments.services`), finalized -> void, and paid -> finalized (a refund
reopened a balance due). Void is terminal; a void invoice keeps its number (the sequence stays
gapless).

Void then reissue: a void invoice frees its period (one *live* invoice per customer and
period), so the period can be billed again with a new number: `invoice_reissue`, or
`generate_invoices --period YYYY-MM --customer ID [--finalize]`. The new invoice re-rates the
usage; what the void invoice billed (its usage and its adjustments of earlier months) counts
for nothing. The hourly cycle never bills a voided period again by itself.

A paid invoice cannot be voided, nor a finalized one holding payments that were not
refunded: money was received against it, so a mistake on it is corrected with a credit note
(or the payments refunded first), not by cancelling the invoice. A draft is not voided either:
it is discarded (`invoice_draft_discard`).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

from billing.credit_notes.rules import invoice_void_check_credit_notes
from billing.models import INVOICE_TRANSITIONS, Invoice, InvoiceEvent, InvoiceStatus
from billing.overdue_suspension import customer_overdue_check
from billing.payments.rules import invoice_void_check_payments
from core.errors import ApplicationError
from webhooks.catalogue import INVOICE_PAID, INVOICE_VOIDED
from webhooks.events import webhook_event_record

logger = logging.getLogger(__name__)

#: The webhook event each transition of `_transition` sends (a reopening by a refund sends
#: `payment.refunded` from the payments service instead).
_EVENT_TYPES = {InvoiceStatus.PAID: INVOICE_PAID, InvoiceStatus.VOID: INVOICE_VOIDED}


def invoice_check_transition(*, invoice: Invoice, to_status: str) -> None:
    if to_status not in INVOICE_TRANSITIONS[invoice.status]:
        raise ApplicationError(
            "invalid_transition",
            f"Invoice {invoice} is {invoice.status}; it cannot become {to_status}.",
            extra={"from": invoice.status, "to": to_status},
        )


def invoice_event(
    invoice: Invoice, from_status: str, to_status: str, now: dt.datetime, actor: str, note: str
) -> InvoiceEvent:
    """An (unsaved) event row: for batches that write their events in one statement."""
    return InvoiceEvent(
        invoice=invoice,
        from_status=from_status,
        to_status=to_status,
        actor=actor or "system",
        note=note[:500],
        at=now,
    )


def invoice_event_record(
    *, invoice: Invoice, from_status: str, to_status: str, now: dt.datetime, actor: str, note: str
) -> InvoiceEvent:
    event = invoice_event(invoice, from_status, to_status, now, actor, note)
    event.save()
    return event


def invoice_transition(
    *,
    invoice: Invoice,
    to_status: str,
    now: dt.datetime,
    actor: str,
    note: str,
    stamp: str,
    stamp_value: dt.datetime | None = None,
    clear_stamp: bool = False,
) -> Invoice:
    """Change the status by the table, set `stamp` (to `stamp_value`, else `now`; cleared
    with `clear_stamp`), write the event row and emit the webhook, in one transaction under
    the invoice's row lock."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().row_of(invoice).get()
        invoice_check_transition(invoice=locked, to_status=to_status)
        if to_status == InvoiceStatus.VOID:  # credit notes and payments refuse it (409)
            invoice_void_check_credit_notes(invoice=locked)
            invoice_void_check_payments(invoice=locked)
        from_status = locked.status
        locked.status = to_status
        setattr(locked, stamp, None if clear_stamp else stamp_value or now)
        locked.save(update_fields=["status", stamp, "updated_at"])
        invoice_event_record(
            invoice=locked,
            from_status=from_status,
            to_status=to_status,
            now=now,
            actor=actor,
            note=note,
        )
        if to_status in _EVENT_TYPES:
            webhook_event_record(
                reseller_id=locked.reseller_id,
                event_type=_EVENT_TYPES[to_status],
                subject_id=locked.pk,
                now=now,
            )
    return locked


_transition = invoice_transition


def invoice_paid_from_balance(*, invoice: Invoice, now: dt.datetime, actor: str = "") -> Invoice:
    """finalized -> paid at issue when the customer's balance covered the whole total
    (`billing.balance`): nothing is due, so no payment is recorded."""
    paid = invoice_transition(
        invoice=invoice,
        to_status=InvoiceStatus.PAID,
        now=now,
        actor=actor,
        note="Paid from the customer's balance",
        stamp="paid_at",
    )
    invoice.status, invoice.paid_at = paid.status, paid.paid_at
    return paid


def invoice_overdue_check(invoice: Invoice, now: dt.datetime) -> None:
    """The customer's overdue check after the invoice was paid (see
    `billing.payments.services.invoice_mark_paid`)."""
    _overdue_check(invoice, now)


def _overdue_check(invoice: Invoice, now: dt.datetime) -> None:
    try:
        customer_overdue_check(customer=invoice.customer, now=now)
    except Exception:  # the payment stands; the 15-minute pass retries the check
        logger.exception("overdue check after paying invoice %s failed", invoice.pk)


def invoice_status_void(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", reason: str = ""
) -> Invoice:
    """finalized -> void, the status change only (`billing.invoicing.voiding.invoice_void`
    also tells the customer and re-rates its drafts). The number stays taken and the period
    is freed: staff bill it again with `invoice_reissue` (a new number, the usage re-rated,
    the new invoice `replaces` this one); the cycle never re-bills a voided period by itself.
    Paid invoices cannot be voided (credit them instead)."""
    return _transition(
        invoice=invoice,
        to_status=InvoiceStatus.VOID,
        now=now,
        actor=actor,
        note=reason,
        stamp="voided_at",
    )
