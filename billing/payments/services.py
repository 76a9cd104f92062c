"""Recording payments and refunds: `payment_create`, `payment_refund`, `invoice_pay_balance`
(what `mark-paid` does) and `invoice_settle_if_covered` (after a credit note).

Rules (docs/api.md, "Payments"):
- a payment is money received against a finalized or paid invoice, in the invoice's currency
  (another currency: 400 `payment_currency_mismatch`); drafts and void invoices refuse it
  (409 `invoice_not_payable`); the amount is above 0 with at most the currency's decimals
  (400 `invalid_amount`); `paid_at` is aware and not in the future (5 minutes of clock skew
  allowed: 400 `paid_at_in_future`); `method` is one of `PaymentMethod` (400
  `invalid_payment_method`), free text goes in `method_detail`;
- `balance_due = total - amount_credited - amount_paid`; the payment that brings it to 0
  makes the invoice `paid` (transition, event row, webhook `invoice.paid`), its `paid_at`
  the payment's; a payment above the balance due is refused (400
  `payment_exceeds_balance_due`, `extra.balance_due`) until the customer balance exists;
- a refund gives back at most what is left of one payment (409 `refund_exceeds_payment`);
  a refund that reopens a balance due on a paid invoice makes it `finalized` again (event
  row; `paid_at` cleared);
- everything happens under the invoice's row lock, which credit notes, voiding and every
  payment of that invoice take first: two workers recording payments of one invoice are
  checked one after the other, so the balance is never overpaid;
- webhooks `payment.created` and `payment.refunded` (recorded here, their payloads built by
  `billing.webhook_payloads`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction

from billing.credit_notes.selectors import invoice_amount_credited
from billing.invoicing.transitions import (
    invoice_check_transition,
    invoice_overdue_check,
    invoice_transition,
)
from billing.models import Invoice, InvoiceStatus
from billing.money import currency_exponent, quantize_money
from billing.payments.models import Payment, PaymentMethod, Refund
from billing.payments.rules import PaymentConflict
from billing.payments.selectors import invoice_amount_paid, payment_amount_refunded
from config.errors import ApplicationError
from core.money import InvalidAmount, parse_amount
from webhooks.catalogue import PAYMENT_CREATED, PAYMENT_REFUNDED
from webhooks.events import webhook_event_record

PAYABLE_STATUSES = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)
#: How far ahead of the server's clock a `paid_at` may be (the caller's clock skew).
CLOCK_SKEW = dt.timedelta(minutes=5)
ZERO = Decimal(0)


def _field_error(code: str, field: str, message: str) -> ApplicationError:
    return ApplicationError(code, message, extra={"fields": {field: [message]}})


def _money(value: Any, *, currency: str, field: str) -> Decimal:
    """The one money parser (`core.money`), for callers other than the API and the admin
    too: plain decimal digits, bounded, the currency's decimals, above 0."""
    try:
        amount = parse_amount(value, places=currency_exponent(currency))
    except InvalidAmount as exc:
        raise _field_error("invalid_amount", field, exc.message) from None
    if amount <= 0:
        raise _field_error("invalid_amount", field, "The amount must be above 0.")
    return quantize_money(amount, currency)


def _moment(value: dt.datetime | None, *, now: dt.datetime, field: str) -> dt.datetime:
    if value is None:
        return now
    if value.tzinfo is None or value.utcoffset() is None:
        raise _field_error("naive_datetime", field, "Give a timezone offset (e.g. Z).")
    if value > now + CLOCK_SKEW:
        raise _field_error("paid_at_in_future", field, "The moment is in the future.")
    return value


def _lock(invoice: Invoice) -> Invoice:
    """The invoice row, locked (every payment, refund, credit note and void of it takes
    this lock first)."""
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("reseller", "customer")
        .get(pk=invoice.pk, reseller_id=invoice.reseller_id)
    )


def invoice_open_amount(*, invoice: Invoice) -> Decimal:
    """`total - amount_credited - amount_paid`, whatever the status (negative: more came
    in than is owed). Read under the invoice's lock to act on it."""
    credited = invoice_amount_credited(invoice=invoice)
    paid = invoice_amount_paid(invoice_id=invoice.pk)
    return quantize_money(invoice.total - credited - paid, invoice.currency)


def _balance_due(invoice: Invoice) -> Decimal:
    """What may still be paid: the open amount of a finalized invoice, never below 0."""
    if invoice.status != InvoiceStatus.FINALIZED:
        return quantize_money(ZERO, invoice.currency)
    return max(invoice_open_amount(invoice=invoice), quantize_money(ZERO, invoice.currency))


def _check_payable(invoice: Invoice) -> None:
    if invoice.status not in PAYABLE_STATUSES:
        raise PaymentConflict(
            "invoice_not_payable",
            f"Invoice {invoice} is {invoice.status}; only finalized invoices take payments.",
            extra={"status": invoice.status},
        )


def payment_create(
    *,
    invoice: Invoice,
    amount: Decimal | str,
    now: dt.datetime,
    paid_at: dt.datetime | None = None,
    method: str = PaymentMethod.OTHER,
    method_detail: str = "",
    reference: str = "",
    note: str = "",
    currency: str | None = None,
    actor: str = "",
) -> Payment:
    """Record money received against `invoice` (already scoped to its reseller by the
    caller). See the module docstring for the rules."""
    if method not in PaymentMethod.values:
        raise _field_error("invalid_payment_method", "method", f"Unknown method {method!r}.")
    paid_at = _moment(paid_at, now=now, field="paid_at")
    with transaction.atomic():
        locked = _lock(invoice)
        _check_payable(locked)
        if currency is not None and currency != locked.currency:
            raise _field_error(
                "payment_currency_mismatch",
                "currency",
                f"Invoice {locked} is in {locked.currency}; pay it in {locked.currency}.",
            )
        value = _money(amount, currency=locked.currency, field="amount")
        due = _balance_due(locked)
        if value > due:
            raise ApplicationError(
                "payment_exceeds_balance_due",
                f"Only {due} {locked.currency} is due on invoice {locked}.",
                extra={
                    "balance_due": str(due),
                    "requested": str(value),
                    "fields": {"amount": [f"At most {due} {locked.currency} is due."]},
                },
            )
        payment = _record(
            locked,
            amount=value,
            paid_at=paid_at,
            method=method,
            method_detail=method_detail,
            reference=reference,
            note=note,
            actor=actor,
            now=now,
        )
        settled = _settle(locked, payment=payment, now=now, actor=actor, note=note)
    if settled is not None:
        invoice_overdue_check(settled, now)
    return payment


def _record(locked: Invoice, *, amount: Decimal, now: dt.datetime, **fields: Any) -> Payment:
    payment = Payment.objects.create(
        reseller_id=locked.reseller_id,
        invoice=locked,
        customer_id=locked.customer_id,
        currency=locked.currency,
        amount=amount,
        paid_at=fields["paid_at"],
        method=fields["method"],
        method_detail=fields["method_detail"][:100],
        reference=fields["reference"][:200],
        note=fields["note"][:500],
        created_by=fields["actor"][:150],
        created_at=now,
    )
    return payment


def _settle(
    locked: Invoice, *, payment: Payment, now: dt.datetime, actor: str, note: str
) -> Invoice | None:
    """Make the invoice paid when the payment brought its balance due to 0 (the invoice, or
    None), then send `payment.created` (with the invoice's status after it)."""
    settled = None
    if locked.status == InvoiceStatus.FINALIZED and invoice_open_amount(invoice=locked) <= 0:
        settled = invoice_transition(
            invoice=locked,
            to_status=InvoiceStatus.PAID,
            now=now,
            actor=actor,
            note=note or f"Paid in full by payment #{payment.pk}",
            stamp="paid_at",
            stamp_value=payment.paid_at,
        )
    _emit(PAYMENT_CREATED, payment, now)
    return settled


def invoice_pay_balance(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", note: str = ""
) -> Invoice:
    """`mark-paid`: one payment of the whole balance due, now (method `other`), which makes
    the invoice paid. A draft or void invoice: `invalid_transition`; nothing due (paid
    already, or credited in full): 409 `nothing_due`."""
    with transaction.atomic():
        locked = _lock(invoice)
        if locked.status != InvoiceStatus.PAID:
            invoice_check_transition(invoice=locked, to_status=InvoiceStatus.PAID)
        due = _balance_due(locked)
        if due <= 0:
            why = "it is paid" if locked.status == InvoiceStatus.PAID else "it is credited in full"
            raise PaymentConflict(
                "nothing_due",
                f"Nothing is due on invoice {locked} ({why}); it cannot become paid again.",
                extra={"status": locked.status, "balance_due": str(due)},
            )
        payment = _record(
            locked,
            amount=due,
            paid_at=now,
            method=PaymentMethod.OTHER,
            method_detail="Marked paid",
            reference="",
            note=note,
            actor=actor,
            now=now,
        )
        settled = _settle(locked, payment=payment, now=now, actor=actor, note=note)
    invoice_overdue_check(settled, now)
    return settled


def payment_refund(
    *,
    payment: Payment,
    now: dt.datetime,
    amount: Decimal | str | None = None,
    refunded_at: dt.datetime | None = None,
    reason: str = "",
    reference: str = "",
    actor: str = "",
) -> Refund:
    """Give back `amount` of the payment (None: all that is left of it). A refund that
    reopens a balance due on a paid invoice makes it finalized again."""
    refunded_at = _moment(refunded_at, now=now, field="refunded_at")
    with transaction.atomic():
        locked = _lock(payment.invoice)
        payment = Payment.objects.get(pk=payment.pk, invoice_id=locked.pk)
        currency = locked.currency
        left = quantize_money(payment.amount - payment_amount_refunded(payment=payment), currency)
        value = left if amount is None else _money(amount, currency=currency, field="amount")
        if value > left or left <= 0:
            raise PaymentConflict(
                "refund_exceeds_payment",
                f"Only {left} {currency} of payment #{payment.pk} is left to refund.",
                extra={"remaining": str(left), "requested": str(value)},
            )
        refund = Refund.objects.create(
            payment=payment,
            amount=value,
            refunded_at=refunded_at,
            reason=reason[:500],
            reference=reference[:200],
            created_by=actor[:150],
            created_at=now,
        )
        if locked.status == InvoiceStatus.PAID and invoice_open_amount(invoice=locked) > 0:
            invoice_transition(
                invoice=locked,
                to_status=InvoiceStatus.FINALIZED,
                now=now,
                actor=actor,
                note=f"Reopened by refund #{refund.pk} of payment #{payment.pk}",
                stamp="paid_at",
                clear_stamp=True,
            )
        _emit(PAYMENT_REFUNDED, payment, now)
    return refund


def invoice_settle_if_covered(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", note: str = ""
) -> Invoice | None:
    """After a credit note (call it under the invoice's lock): a finalized invoice holding
    payments whose balance due is now 0 becomes paid. Returns it, or None when nothing
    changed (no payment: an invoice credited in full stays finalized, as before)."""
    if invoice.status != InvoiceStatus.FINALIZED:
        return None
    if invoice_amount_paid(invoice_id=invoice.pk) <= 0 or invoice_open_amount(invoice=invoice) > 0:
        return None
    return invoice_transition(
        invoice=invoice,
        to_status=InvoiceStatus.PAID,
        now=now,
        actor=actor,
        note=note,
        stamp="paid_at",
    )


# --- webhooks --------------------------------------------------------------------------------


def _emit(event_type: str, payment: Payment, now: dt.datetime) -> None:
    webhook_event_record(
        reseller_id=payment.reseller_id, event_type=event_type, subject_id=payment.pk, now=now
    )
