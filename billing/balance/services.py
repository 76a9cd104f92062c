"""Writing the customer balance: every movement is one `BalanceEntry` posted under the row
lock of the customer's `CustomerBalance` in that currency, so two workers never spend the
same money twice and the balance never falls below 0.

Where money comes in (+) and goes out (-), each entry naming its document exactly once:
- `balance_credit_overpayment`: the part of a payment above the invoice's balance due
  (`billing.payments.services`, under the invoice's lock);
- `balance_credit_from_credit_note`: a credit note on an invoice that was already settled
  (paid, or covered by payments and balance) gives back what is no longer owed: the amount
  by which `credited + paid + balance applied` now exceeds the total, less what earlier
  notes of the invoice gave back (`billing.credit_notes.services`, under the invoice's lock);
- `balance_credit_top_up`: a paid top-up (`billing.topups.services`);
- `balance_take_back_for_refund`: a refund that gives back in money what a credit note had
  put on the balance takes it off again (refused when it was spent);
- `balance_adjust`: staff, with a reason, + or - (never below 0: 409 `balance_insufficient`);
- `balance_apply_to_invoice`: when an invoice is issued, its balance is applied after tax,
  at most the invoice total (`billing.invoicing.engine.issue`), and
  `balance_reverse_applied` gives it back when that invoice is voided.

Lock order: invoice (or customer, then invoices, then the invoice sequence) before the
balance row, on every path; an adjustment takes the balance row alone. Each change sends
`customer.balance_changed` and, when it lowered the balance, queues the automatic top-up
check (`billing.topups.services.auto_top_up_check`) once committed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts.models import Customer
from billing.balance import errors as _errors  # noqa: F401 (registers the codes)
from billing.balance.models import BalanceEntry, BalanceEntryKind, CustomerBalance
from billing.balance.selectors import balance_amount
from billing.models import Invoice, InvoiceKind
from billing.money import currency_exponent, quantize_money
from core.errors import ApplicationError
from core.money import InvalidAmount, parse_amount
from webhooks.catalogue import CUSTOMER_BALANCE_CHANGED
from webhooks.events import webhook_event_record

ZERO = Decimal(0)
#: The entries that move an invoice's excess (credited + paid + applied beyond its total).
EXCESS_KINDS = (BalanceEntryKind.CREDIT_NOTE, BalanceEntryKind.REFUND)
AUTO_TOP_UP_TASK = "billing.topups.tasks.auto_top_up_check_task"


def balance_lock(*, customer: Customer, currency: str, now: dt.datetime) -> CustomerBalance:
    """The customer's balance row in `currency`, created when missing, locked until the
    caller's transaction ends."""
    row, _ = CustomerBalance.objects.get_or_create(
        reseller_id=customer.reseller_id,
        customer_id=customer.pk,
        currency=currency,
        defaults={"created_at": now},
    )
    return CustomerBalance.objects.select_for_update().get(
        pk=row.pk, reseller_id=customer.reseller_id
    )


def _post(
    balance: CustomerBalance,
    *,
    kind: str,
    amount: Decimal,
    now: dt.datetime,
    actor: str = "",
    reason: str = "",
    **documents: Any,
) -> BalanceEntry:
    """Write one entry (the caller holds the balance's lock); refuses to go below 0."""
    amount = quantize_money(amount, balance.currency)
    before = quantize_money(balance_amount(balance=balance), balance.currency)
    if before + amount < 0:
        raise ApplicationError(
            "balance_insufficient",
            f"The balance is {before} {balance.currency}; it cannot go below 0.",
            extra={"balance": str(before), "requested": str(amount)},
        )
    entry = BalanceEntry.objects.create(
        reseller_id=balance.reseller_id,
        customer_id=balance.customer_id,
        balance=balance,
        currency=balance.currency,
        amount=amount,
        kind=kind,
        reason=reason[:500],
        created_by=(actor or "system")[:150],
        created_at=now,
        **documents,
    )
    webhook_event_record(
        reseller_id=balance.reseller_id,
        event_type=CUSTOMER_BALANCE_CHANGED,
        subject_id=entry.pk,
        now=now,
    )
    if amount < 0:
        _queue_auto_top_up_check(balance)
    return entry


def _queue_auto_top_up_check(balance: CustomerBalance) -> None:
    if balance.auto_top_up_threshold is None:
        return
    from celery import current_app as celery_app

    task = celery_app.tasks[AUTO_TOP_UP_TASK]
    customer_id, currency = balance.customer_id, balance.currency
    transaction.on_commit(lambda: task.delay(customer_id, currency), robust=True)


def _signed_amount(value: Any, *, currency: str) -> Decimal:
    """The adjustment's amount: plain decimal text, the currency's decimals, + or -, not 0."""
    text = str(value).strip() if value is not None else ""
    negative = text.startswith("-")
    try:
        amount = parse_amount(text[1:] if negative else text, places=currency_exponent(currency))
    except InvalidAmount as exc:
        raise ApplicationError(
            "invalid_amount", exc.message, extra={"fields": {"amount": [exc.message]}}
        ) from None
    if amount == 0:
        message = "The amount must not be 0."
        raise ApplicationError("invalid_amount", message, extra={"fields": {"amount": [message]}})
    return -amount if negative else amount


def balance_adjust(
    *,
    customer: Customer,
    amount: Decimal | str,
    reason: str,
    now: dt.datetime,
    currency: str | None = None,
    actor: str = "",
) -> BalanceEntry:
    """A manual adjustment (+ adds, - takes away, never below 0) with its reason; the
    currency defaults to the customer's."""
    currency = currency or customer.currency
    if not reason.strip():
        raise ApplicationError(
            "reason_required",
            "Say why the balance is adjusted.",
            extra={"fields": {"reason": ["This field is required."]}},
        )
    value = _signed_amount(amount, currency=currency)
    with transaction.atomic():
        balance = balance_lock(customer=customer, currency=currency, now=now)
        return _post(
            balance,
            kind=BalanceEntryKind.ADJUSTMENT,
            amount=value,
            now=now,
            actor=actor,
            reason=reason.strip(),
        )


def balance_credit_overpayment(*, payment, now: dt.datetime, actor: str = "") -> BalanceEntry:
    """The payment's `to_balance` onto the balance (the caller holds the invoice's lock)."""
    balance = balance_lock(customer=payment.customer, currency=payment.currency, now=now)
    return _post(
        balance,
        kind=BalanceEntryKind.OVERPAYMENT,
        amount=payment.to_balance,
        now=now,
        actor=actor,
        payment=payment,
        invoice_id=payment.invoice_id,
    )


def invoice_excess(*, invoice: Invoice, credited: Decimal, paid: Decimal) -> Decimal:
    """What the customer gave or was granted on the invoice beyond its total (>= 0)."""
    return max(credited + paid + invoice.balance_applied - invoice.total, ZERO)


def _excess_change(invoice: Invoice) -> Decimal:
    """The invoice's excess now less what its credit notes and refunds already moved (+:
    more to put on the balance, -: to take back)."""
    from billing.credit_notes.selectors import invoice_amount_credited
    from billing.payments.selectors import invoice_amount_paid

    excess = invoice_excess(
        invoice=invoice,
        credited=invoice_amount_credited(invoice=invoice),
        paid=invoice_amount_paid(invoice=invoice),
    )
    moved = sum(
        BalanceEntry.objects.filter(
            reseller_id=invoice.reseller_id, invoice_id=invoice.pk, kind__in=EXCESS_KINDS
        ).values_list("amount", flat=True),
        start=ZERO,
    )
    return quantize_money(excess - moved, invoice.currency)


def balance_credit_from_credit_note(
    *, invoice: Invoice, credit_note, now: dt.datetime, actor: str = ""
) -> BalanceEntry | None:
    """After a credit note (under the invoice's lock): what is no longer owed on a settled
    invoice goes on the balance (None when the note only lowered what is due)."""
    amount = _excess_change(invoice)
    if amount <= 0:
        return None
    balance = balance_lock(customer=invoice.customer, currency=invoice.currency, now=now)
    return _post(
        balance,
        kind=BalanceEntryKind.CREDIT_NOTE,
        amount=amount,
        now=now,
        actor=actor,
        credit_note=credit_note,
        invoice=invoice,
    )


def balance_take_back_for_refund(
    *, invoice: Invoice, refund, now: dt.datetime, actor: str = ""
) -> BalanceEntry | None:
    """After a refund was recorded (under the invoice's lock): when it gave back money that a
    credit note had put on the balance, that much leaves the balance (409
    `balance_insufficient` when it was spent: the refund is refused). None otherwise."""
    amount = _excess_change(invoice)
    if amount >= 0:
        return None
    balance = balance_lock(customer=invoice.customer, currency=invoice.currency, now=now)
    return _post(
        balance,
        kind=BalanceEntryKind.REFUND,
        amount=amount,
        now=now,
        actor=actor,
        refund=refund,
        invoice=invoice,
        reason=f"Refund #{refund.pk} of payment #{refund.payment_id}",
    )


def balance_credit_top_up(*, top_up, now: dt.datetime, actor: str = "") -> BalanceEntry:
    """A paid top-up's amount onto the balance (the caller holds the top-up's lock)."""
    balance = balance_lock(customer=top_up.customer, currency=top_up.currency, now=now)
    return _post(
        balance,
        kind=BalanceEntryKind.TOP_UP,
        amount=top_up.amount,
        now=now,
        actor=actor,
        top_up=top_up,
        invoice_id=top_up.invoice_id,
    )


def balance_apply_to_invoice(*, invoice: Invoice, now: dt.datetime, actor: str = "") -> Decimal:
    """While issuing (the invoice row saved, not yet finalized, in the issuing
    transaction): apply the customer's balance in the invoice currency, after tax, at most
    the total; sets `invoice.balance_applied` (the caller saves it) and returns it. Top-up
    invoices and invoices of 0 or less take nothing."""
    invoice.balance_applied = ZERO
    if invoice.kind != InvoiceKind.PERIOD or invoice.total <= 0:
        return ZERO
    balance = balance_lock(customer=invoice.customer, currency=invoice.currency, now=now)
    available = balance_amount(balance=balance)
    applied = quantize_money(min(available, invoice.total), invoice.currency)
    if applied <= 0:
        return ZERO
    _post(
        balance,
        kind=BalanceEntryKind.APPLIED,
        amount=-applied,
        now=now,
        actor=actor,
        invoice=invoice,
    )
    invoice.balance_applied = applied
    return applied


def balance_reverse_applied(*, invoice: Invoice, now: dt.datetime, actor: str = "") -> None:
    """A voided invoice gives back the balance applied to it (once: unique per invoice)."""
    if invoice.balance_applied <= 0:
        return
    balance = balance_lock(customer=invoice.customer, currency=invoice.currency, now=now)
    _post(
        balance,
        kind=BalanceEntryKind.APPLIED_REVERSED,
        amount=invoice.balance_applied,
        now=now,
        actor=actor,
        invoice=invoice,
        reason=f"Invoice {invoice.number} voided",
    )
