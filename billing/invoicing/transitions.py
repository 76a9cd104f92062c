"""Status changes of issued invoices, each checked against `INVOICE_TRANSITIONS` and logged.

draft -> finalized (only `invoice_finalize`), finalized -> paid, finalized -> void.
Paid and void are terminal; a void invoice keeps its number (the sequence stays gapless).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from billing.models import INVOICE_TRANSITIONS, Invoice, InvoiceEvent, InvoiceStatus
from config.errors import ApplicationError


def invoice_check_transition(*, invoice: Invoice, to_status: str) -> None:
    if to_status not in INVOICE_TRANSITIONS[invoice.status]:
        raise ApplicationError(
            "invalid_transition",
            f"Invoice {invoice} is {invoice.status}; it cannot become {to_status}.",
            extra={"from": invoice.status, "to": to_status},
        )


def invoice_event_record(
    *, invoice: Invoice, from_status: str, to_status: str, now: dt.datetime, actor: str, note: str
) -> InvoiceEvent:
    return InvoiceEvent.objects.create(
        invoice=invoice,
        from_status=from_status,
        to_status=to_status,
        actor=actor or "system",
        note=note[:500],
        at=now,
    )


def _transition(
    *, invoice: Invoice, to_status: str, now: dt.datetime, actor: str, note: str, stamp: str
) -> Invoice:
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        invoice_check_transition(invoice=locked, to_status=to_status)
        from_status = locked.status
        locked.status = to_status
        setattr(locked, stamp, now)
        locked.save(update_fields=["status", stamp, "updated_at"])
        invoice_event_record(
            invoice=locked,
            from_status=from_status,
            to_status=to_status,
            now=now,
            actor=actor,
            note=note,
        )
    return locked


def invoice_mark_paid(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", note: str = ""
) -> Invoice:
    """finalized -> paid."""
    return _transition(
        invoice=invoice,
        to_status=InvoiceStatus.PAID,
        now=now,
        actor=actor,
        note=note,
        stamp="paid_at",
    )


def invoice_void(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", reason: str = ""
) -> Invoice:
    """finalized -> void. The number stays taken; usage of the period can be billed again only
    through a new invoice issued by staff (the cycle never re-creates a voided period)."""
    return _transition(
        invoice=invoice,
        to_status=InvoiceStatus.VOID,
        now=now,
        actor=actor,
        note=reason,
        stamp="voided_at",
    )
