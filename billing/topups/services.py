"""Prepaid top-ups: `top_up_create` (API, admin, the automatic rule), `top_up_credit` (its
invoice was paid), `top_up_void` (its invoice was voided), `auto_top_up_check` and
`balance_auto_top_up_set` (the rule).

A top-up is bought with an invoice of kind `top_up`, issued at once through the engine's
`issue` (numbered in the invoice series, PDF, email, `invoice.finalized`), one line
describing it. It is a prepayment, so the invoice carries no tax: tax is charged on the
invoices the balance later pays, where the balance is applied after tax and never changes it
(tax charged once, on what was used). Top-up invoices are outside the month's rules: no
period uniqueness, never refreshed or discarded by the cycle, never get balance applied, and
are not credited (void one while unpaid: 409 `invoice_is_top_up`).

When the invoice is paid (`billing.payments.services`, under the invoice's lock), its
amount goes on the balance (one `top_up` entry) and, for a traffic pack on an IPFoxy
sub-account, its bytes are allocated upstream through the allocation ledger (reason
`order`), once: the top-up row is locked and moves `open -> credited` with the allocation
recorded on it. The traffic is billed as usage on the month's invoice like all traffic, and
the balance the pack bought pays it, so nothing is billed twice. An allocation that cannot
be made (sub-account suspended or closed meanwhile) leaves the money on the balance and the
reason in `allocation_error` for staff.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from accounts.locks import lock_customers
from accounts.models import Customer, Provider, SubAccount
from billing.arguments import field_error, positive_amount
from billing.balance import errors as _errors  # noqa: F401 (registers the codes)
from billing.balance.models import CustomerBalance
from billing.balance.selectors import balance_amount
from billing.balance.services import balance_credit_top_up, balance_lock
from billing.document import LAYOUT_VERSION
from billing.invoicing.engine import IssueBatch, Issued, issue
from billing.invoicing.periods import local_date
from billing.invoicing.rendering import invoice_snapshot
from billing.models import Invoice, InvoiceKind, InvoiceLine
from billing.money import currency_exponent, quantize_money
from billing.rating import unit_note
from billing.topups.models import TopUp
from billing.topups.pricing import top_up_pack_price
from core.errors import ApplicationError
from core.money import InvalidAmount, parse_amount
from usage.models import Allocation
from usage.services.allocations import allocation_create, allocation_flow_mb

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
PREPAYMENT_NOTE = "prepayment: tax is charged on the invoices the balance pays"


def _pack_bytes(nbytes: Any, sub_account: SubAccount | None) -> int:
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes <= 0:
        raise field_error("invalid_amount", "bytes", "Give a positive whole number of bytes.")
    if sub_account is not None:
        if sub_account.upstream_account.provider != Provider.IPFOXY:
            raise ApplicationError(
                "sub_account_not_ipfoxy",
                "Traffic packs are allocated to IPFoxy sub-accounts only.",
                extra={"sub_account": sub_account.pk},
            )
        allocation_flow_mb(sub_account=sub_account, nbytes=nbytes)  # whole MB, else 400
    return nbytes


def top_up_create(
    *,
    customer: Customer,
    now: dt.datetime,
    amount: Decimal | str | None = None,
    bytes: int | None = None,
    sub_account: SubAccount | None = None,
    actor: str = "",
    automatic: bool = False,
    send_email: bool = True,
) -> TopUp:
    """Issue a top-up invoice now: `amount` of money, or a pack of `bytes` at the plan price
    (for `sub_account`: allocated there once paid). Returns the top-up (invoice issued)."""
    if (amount is None) == (bytes is None):
        raise field_error("validation_error", "amount", "Give either amount or bytes.")
    if sub_account is not None and bytes is None:
        raise field_error("validation_error", "sub_account", "A sub-account takes bytes.")
    if sub_account is not None and sub_account.customer_id != customer.pk:
        raise field_error("validation_error", "sub_account", "Not this customer's.")
    currency = customer.currency
    day = local_date(now, customer.reseller.tzinfo)
    if bytes is None:
        value = positive_amount(amount, currency=currency)
        line = InvoiceLine(
            kind=InvoiceLine.Kind.TOP_UP,
            description=f"Prepaid balance top-up ({PREPAYMENT_NOTE})",
            amount=value,
            details={"top_up": "money"},
        )
        notes = [unit_note(1_073_741_824)]
    else:
        nbytes = _pack_bytes(bytes, sub_account)
        price = top_up_pack_price(
            customer=customer, nbytes=nbytes, day=day, sub_account=sub_account
        )
        value = price.amount
        target = f" for {sub_account}" if sub_account else ""
        line = InvoiceLine(
            kind=InvoiceLine.Kind.TOP_UP,
            description=f"Prepaid traffic pack{target}: {nbytes:,} bytes at the "
            f"{price.subscription.plan.name} plan's usage price ({PREPAYMENT_NOTE})"[:300],
            quantity=price.quantity,
            unit="GB",
            amount=value,
            details=price.details,
            sub_account=sub_account,
        )
        notes = [unit_note(price.details["unit_bytes"])]
    with IssueBatch(now=now, expected=1) as batch:
        with transaction.atomic():
            lock_customers(Customer.objects.row_of(customer))
            invoice = Invoice.objects.create(
                reseller=customer.reseller,
                customer=customer,
                kind=InvoiceKind.TOP_UP,
                period_start=day,
                period_end=day + dt.timedelta(days=1),
                currency=currency,
                subtotal=value,
                tax_rate=ZERO,
                tax=ZERO,
                total=value,
                snapshot=invoice_snapshot(customer=customer, subscriptions={}, unit_notes=notes),
                layout_version=LAYOUT_VERSION,
                refreshed_at=now,
            )
            line.invoice, line.position = invoice, 1
            line.save()
            top_up = TopUp.objects.create(
                reseller=customer.reseller,
                customer=customer,
                invoice=invoice,
                currency=currency,
                amount=value,
                bytes=bytes,
                sub_account=sub_account,
                automatic=automatic,
                created_by=(actor or "system")[:150],
                created_at=now,
            )
            items = [Issued(invoice, [line], [])]
            issue(
                items,
                reseller=customer.reseller,
                now=now,
                actor=actor,
                send_email=send_email,
                inserted=True,
            )
        batch.committed(items)
    return top_up


def top_up_credit(*, invoice: Invoice, now: dt.datetime, actor: str = "") -> TopUp | None:
    """Its invoice was paid (call under the invoice's lock): the amount onto the balance and
    a pack's bytes allocated upstream, once. None when the invoice has no open top-up."""
    top_up = (
        TopUp.objects.select_for_update(of=("self",))
        .select_related("customer", "sub_account__upstream_account", "sub_account__customer")
        .filter(reseller_id=invoice.reseller_id, invoice_id=invoice.pk)
        .first()
    )
    if top_up is None or top_up.status != TopUp.Status.OPEN:
        return None
    balance_credit_top_up(top_up=top_up, now=now, actor=actor)
    if top_up.sub_account_id is not None:
        try:
            with transaction.atomic():
                top_up.allocation = allocation_create(
                    sub_account=top_up.sub_account,
                    bytes=top_up.bytes,
                    reason=Allocation.Reason.ORDER,
                    actor=f"top-up {top_up.pk}",
                    now=now,
                )
        except ApplicationError as exc:
            logger.warning("top-up %s: traffic not allocated (%s)", top_up.pk, exc.code)
            top_up.allocation_error = f"{exc.code}: {exc.message}"[:500]
    top_up.status = TopUp.Status.CREDITED
    top_up.credited_at = now
    top_up.save(update_fields=["status", "credited_at", "allocation", "allocation_error"])
    return top_up


def top_up_void(*, invoice: Invoice) -> None:
    """Its invoice was voided unpaid: the top-up is void (nothing was credited)."""
    TopUp.objects.filter(
        reseller_id=invoice.reseller_id, invoice_id=invoice.pk, status=TopUp.Status.OPEN
    ).update(status=TopUp.Status.VOID)


def balance_auto_top_up_set(
    *,
    customer: Customer,
    now: dt.datetime,
    threshold: Decimal | str | None,
    amount: Decimal | str | None,
    currency: str | None = None,
) -> CustomerBalance:
    """Set (both given) or clear (both None) the customer's automatic top-up rule."""
    currency = currency or customer.currency
    if (threshold is None) != (amount is None):
        raise ApplicationError(
            "auto_top_up_rule_invalid", "Give both threshold and amount, or neither."
        )
    with transaction.atomic():
        balance = balance_lock(customer=customer, currency=currency, now=now)
        if threshold is None:
            balance.auto_top_up_threshold = balance.auto_top_up_amount = None
        else:
            try:
                floor = parse_amount(threshold, places=currency_exponent(currency))
            except InvalidAmount as exc:
                raise field_error("invalid_amount", "threshold", exc.message) from None
            balance.auto_top_up_threshold = quantize_money(floor, currency)
            balance.auto_top_up_amount = positive_amount(amount, currency=currency)
        balance.save(update_fields=["auto_top_up_threshold", "auto_top_up_amount"])
    auto_top_up_check(customer=customer, currency=currency, now=now)
    return balance


def auto_top_up_check(*, customer: Customer, currency: str, now: dt.datetime) -> TopUp | None:
    """The automatic top-up rule: when the balance is below the threshold and no automatic
    top-up is open, issue one of the rule's amount (the unique constraint keeps it to one
    open even when two workers decide at once). Returns the new top-up, or None."""
    balance = CustomerBalance.objects.filter(
        reseller_id=customer.reseller_id, customer_id=customer.pk, currency=currency
    ).first()
    if balance is None or balance.auto_top_up_threshold is None:
        return None
    if balance_amount(balance=balance) >= balance.auto_top_up_threshold:
        return None
    open_ones = TopUp.objects.filter(
        reseller_id=customer.reseller_id,
        customer_id=customer.pk,
        currency=currency,
        automatic=True,
        status=TopUp.Status.OPEN,
    )
    if open_ones.exists() or currency != customer.currency:
        return None
    try:
        return top_up_create(
            customer=customer,
            amount=balance.auto_top_up_amount,
            now=now,
            actor="system",
            automatic=True,
        )
    except IntegrityError:  # another worker issued it first
        return None
