"""Dunning: reminders of unpaid invoices and the day an invoice becomes overdue.

Terms: an invoice is due `payment_terms_days` after it is issued (the customer's own terms,
else the reseller's; printed on the invoice). It is **overdue** from the day after its due
date (reseller's timezone) while finalized with an amount still due after its credit notes
and payments: `billing.overdue_suspension.invoices_overdue`, the one definition the API, the
admin, the dashboard and automatic suspension read.

`invoices_dunning_run` (beat, every 15 minutes, per reseller):
- marks each invoice overdue once (`Invoice.overdue_at`, set under its row lock) and emits
  `invoice.overdue` in that transaction;
- queues a reminder for each unpaid finalized invoice whose reminder day has come: the
  reseller's `reminder_offsets` are days relative to the due date (e.g. [-3, 0, 7, 14]). A
  reminder is an `InvoiceEmail` of kind `reminder` for that offset, unique per invoice and
  offset, so it goes out at most once (`billing.outbox`); when several offsets have passed at
  once (reminders just switched on, a stopped scheduler) only the latest is sent, and no
  offset is sent once a later one was. Offsets that fall before the invoice was issued are
  skipped. A reminder whose invoice was paid, credited in full or voided before it went out
  is not sent (marked failed with that reason).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction

from accounts.models import Reseller
from billing import outbox
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.invoicing.delivery import invoice_email_dispatch
from billing.models import Invoice, InvoiceEmail, InvoiceStatus
from billing.overdue_suspension import invoices_overdue
from webhooks.catalogue import INVOICE_OVERDUE
from webhooks.events import webhook_event_record

logger = logging.getLogger(__name__)

REMINDER = InvoiceEmail.Kind.REMINDER


@dataclass
class DunningResult:
    overdue: list[int] = field(default_factory=list)
    reminders: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[int]]:
        return {"overdue": self.overdue, "reminders": self.reminders}


def _today(reseller: Reseller, now: dt.datetime) -> dt.date:
    return now.astimezone(reseller.tzinfo).date()


def invoice_days_overdue(*, invoice: Invoice, today: dt.date) -> int:
    """Days past the due date (0 on or before it)."""
    if invoice.due_on is None:
        return 0
    return max((today - invoice.due_on).days, 0)


def reminder_offset_due(
    *, offsets: list[int], due_on: dt.date, issued_on: dt.date | None, today: dt.date
) -> int | None:
    """The latest reminder offset whose day has come (and is not before the issue day), or
    None."""
    passed = [
        k
        for k in offsets
        if due_on + dt.timedelta(days=k) <= today
        and (issued_on is None or due_on + dt.timedelta(days=k) >= issued_on)
    ]
    return max(passed) if passed else None


def _mark_overdue(reseller: Reseller, now: dt.datetime, result: DunningResult) -> None:
    ids = list(
        invoices_overdue(reseller=reseller, now=now, days=None)
        .filter(overdue_at__isnull=True)
        .values_list("pk", flat=True)
    )
    for invoice_id in ids:
        with transaction.atomic():
            locked = Invoice.objects.select_for_update().filter(pk=invoice_id).first()
            if locked is None or locked.overdue_at is not None:
                continue
            locked.overdue_at = now
            locked.save(update_fields=["overdue_at"])
            webhook_event_record(
                reseller_id=reseller.pk, event_type=INVOICE_OVERDUE, subject_id=invoice_id, now=now
            )
            result.overdue.append(invoice_id)


def _queue_reminders(reseller: Reseller, now: dt.datetime, result: DunningResult) -> None:
    offsets = sorted(set(reseller.reminder_offsets or []))
    if not offsets:
        return
    today = _today(reseller, now)
    earliest_due = today - dt.timedelta(days=offsets[0])
    candidates = invoices_with_credit_totals(
        Invoice.objects.for_reseller(reseller).filter(
            status=InvoiceStatus.FINALIZED, due_on__isnull=False, due_on__lte=earliest_due
        )
    ).filter(balance_due__gt=0)
    for invoice in candidates.order_by("due_on", "pk"):
        offset = reminder_offset_due(
            offsets=offsets, due_on=invoice.due_on, issued_on=invoice.issued_on, today=today
        )
        if offset is None:
            continue
        with transaction.atomic():
            locked = Invoice.objects.select_for_update().row_of(invoice).get()
            if locked.status != InvoiceStatus.FINALIZED:
                continue
            reminders = locked.emails.filter(kind=REMINDER)
            if reminders.filter(reminder_days__gte=offset).exists():
                continue  # this one, or a later one, went out already
            recipients = locked.snapshot.get("buyer", {}).get("emails", [])
            if not recipients:
                continue
            delivery = InvoiceEmail.objects.create(
                invoice=locked,
                kind=REMINDER,
                reminder_days=offset,
                sequence=outbox.email_delivery_next_sequence(deliveries=locked.emails.all()),
                requested_by="system (reminder)",
                recipients=recipients,
                queued_at=now,
            )
            reminder_dispatch(delivery_id=delivery.pk)
            result.reminders.append(delivery.pk)


def invoices_dunning_run(*, reseller: Reseller, now: dt.datetime) -> DunningResult:
    """Mark newly overdue invoices and queue the reminders whose day has come (see the
    module docstring)."""
    result = DunningResult()
    _mark_overdue(reseller, now, result)
    _queue_reminders(reseller, now, result)
    if result.overdue or result.reminders:
        logger.info("dunning of reseller %s: %s", reseller.pk, result.as_dict())
    return result


def reminder_dispatch(*, delivery_id: int) -> None:
    """Queue the send once the caller's transaction commits (the invoice email task sends
    every kind)."""
    invoice_email_dispatch(delivery=InvoiceEmail(pk=delivery_id))
