"""Recording payments and refunds: `payment_create`, `payment_refund`, `invoice_pay_balance`
and `invoice_mark_paid` (what `mark-paid` does) and `invoice_settle_if_covered` (after a
credit note).

Rules (docs/api.md, "Payments"):
- a payment is money received against a finalized or paid invoice, in the invoice's currency
  (another currency: 400 `payment_currency_mismatch`); drafts and void invoices refuse it
  (409 `invoice_not_payable`); the amount is above 0 with at most the currency's decimals
  (400 `invalid_amount`); `paid_at` is aware and not in the future (5 minutes of clock skew
  allowed: 400 `paid_at_in_future`); `method` is one of `PaymentMethod` (400
  `invalid_payment_method`), free text goes in `method_detail`;
- `balance_due = total - amount_credited - amount_paid`; the payment that brings it to 0
  makes the invoice `paid` (transition, event row, webhook `invoice.paid`), its `paid_at`
  the payment's; the part of a payment above the balance due (all of it on a paid invoice)
  goes on the customer's balance (`Payment.to_balance`, one `overpayment` entry,
  `billing.balance`); the invoice received `amount - to_balance`;
- a paid top-up invoice credits its top-up (`billing.topups.services.top_up_credit`);
- a refund gives back at most what is left of one payment's part on the invoice (409
  `refund_exceeds_payment`, `extra.remaining`); when it gives back money a credit note had
  put on the customer's balance, that leaves the balance (`refund` entry; 409
  `balance_insufficient` when it was spent); a credited top-up's payments are not refunded
  (409 `invoice_is_top_up`: take the money off the balance with a negative adjustment);
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

from billing.arguments import field_error, positive_amount
from billing.balance.selectors import invoice_amount_on_balance
from billing.balance.services import balance_credit_overpayment, balance_take_back_for_refund
from billing.credit_notes.selectors import invoice_amount_credited
from billing.invoicing.transitions import (
    invoice_check_transition,
    invoice_overdue_check,
    invoice_transition,
)
from billing.models import Invoice, InvoiceKind, InvoiceStatus
from billing.money import quantize_money
from billing.payments.models import Payment, PaymentMethod, Refund
from billing.payments.selectors import invoice_amount_paid, payment_amount_refunded
from billing.topups.services import top_up_credit
from core.errors import ApplicationError
from webhooks.catalogue import PAYMENT_CREATED, PAYMENT_REFUNDED
from webhooks.events import webhook_event_record

PAYABLE_STATUSES = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)
#: How far ahead of the server's clock a `paid_at` may be (the caller's clock skew).
CLOCK_SKEW = dt.timedelta(minutes=5)
ZERO = Decimal(0)


def _moment(value: dt.datetime | None, *, now: dt.datetime, field: str) -> dt.datetime:
    if value is None:
        return now
    if value.tzinfo is None or value.utcoffset() is None:
        raise field_error("naive_datetime", field, "Give a timezone offset (e.g. Z).")
    if value > now + CLOCK_SKEW:
        raise field_error("paid_at_in_future", field, "The moment is in the future.")
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
    """`total - balance_applied - amount_credited - amount_paid`, whatever the status
    (negative: more came in than is owed). Read under the invoice's lock to act on it."""
    credited = invoice_amount_credited(invoice=invoice)
    paid = invoice_amount_paid(invoice=invoice)
    owed = invoice.total - invoice.balance_applied - credited - paid
    return quantize_money(owed, invoice.currency)


def _balance_due(invoice: Invoice) -> Decimal:
    """What may still be paid: the open amount of a finalized invoice, never below 0."""
    if invoice.status != InvoiceStatus.FINALIZED:
        return quantize_money(ZERO, invoice.currency)
    return max(invoice_open_amount(invoice=invoice), quantize_money(ZERO, invoice.currency))


def _check_payable(invoice: Invoice) -> None:
    if invoice.status not in PAYABLE_STATUSES:
        raise ApplicationError(
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
        raise field_error("invalid_payment_method", "method", f"Unknown method {method!r}.")
    paid_at = _moment(paid_at, now=now, field="paid_at")
    with transaction.atomic():
        locked = _lock(invoice)
        _check_payable(locked)
        if currency is not None and currency != locked.currency:
            raise field_error(
                "payment_currency_mismatch",
                "currency",
                f"Invoice {locked} is in {locked.currency}; pay it in {locked.currency}.",
            )
        value = positive_amount(amount, currency=locked.currency)
        due = _balance_due(locked)
        payment = _record(
            locked,
            amount=value,
            to_balance=max(value - due, ZERO),
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


def _record(
    locked: Invoice,
    *,
    amount: Decimal,
    now: dt.datetime,
    to_balance: Decimal = ZERO,
    **fields: Any,
) -> Payment:
    payment = Payment.objects.create(
        reseller_id=locked.reseller_id,
        invoice=locked,
        customer=locked.customer,
        currency=locked.currency,
        amount=amount,
        to_balance=to_balance,
        paid_at=fields["paid_at"],
        method=fields["method"],
        method_detail=fields["method_detail"][:100],
        reference=fields["reference"][:200],
        note=fields["note"][:500],
        created_by=fields["actor"][:150],
        created_at=now,
    )
    if to_balance > 0:
        balance_credit_overpayment(payment=payment, now=now, actor=fields["actor"])
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
        if settled.kind == InvoiceKind.TOP_UP:
            top_up_credit(invoice=settled, now=now, actor=actor)
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
            raise ApplicationError(
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


def invoice_mark_paid(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", note: str = ""
) -> Invoice:
    """Pay the balance due in full now: one payment of the balance due (method `other`),
    which makes the invoice paid (`invoice_pay_balance`). Refused for a draft or void invoice
    (`invalid_transition`) and when nothing is due (`nothing_due`). Then, committed, the
    customer's overdue check: a customer that the overdue rule suspended is reinstated once
    nothing overdue is left (`billing.overdue_suspension`; a failure there is logged, the
    beat catches up)."""
    return invoice_pay_balance(invoice=invoice, now=now, actor=actor, note=note)


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
        payment = Payment.objects.row_of(payment).get(invoice=locked)
        currency = locked.currency
        left = _refundable(locked, payment)
        value = left if amount is None else positive_amount(amount, currency=currency)
        if value > left or left <= 0:
            raise ApplicationError(
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
        balance_take_back_for_refund(invoice=locked, refund=refund, now=now, actor=actor)
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


def _refundable(locked: Invoice, payment: Payment) -> Decimal:
    """What may be refunded of `payment`: its part on the invoice (its overpayment is on the
    balance) not refunded yet. A credited top-up's payments: none (409)."""
    if locked.kind == InvoiceKind.TOP_UP and invoice_amount_on_balance(invoice=locked):
        raise ApplicationError(
            "invoice_is_top_up",
            f"Invoice {locked}'s top-up is on the customer's balance: take it back with a "
            "negative balance adjustment instead of a refund.",
        )
    own = payment.amount - payment.to_balance - payment_amount_refunded(payment=payment)
    return quantize_money(max(own, ZERO), locked.currency)


def invoice_settle_if_covered(
    *, invoice: Invoice, now: dt.datetime, actor: str = "", note: str = ""
) -> Invoice | None:
    """After a credit note (call it under the invoice's lock): a finalized invoice holding
    payments whose balance due is now 0 becomes paid. Returns it, or None when nothing
    changed (no payment: an invoice credited in full stays finalized, as before)."""
    if invoice.status != InvoiceStatus.FINALIZED:
        return None
    if invoice_amount_paid(invoice=invoice) <= 0 or invoice_open_amount(invoice=invoice) > 0:
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
