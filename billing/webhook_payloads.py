"""`data.object` of billing's webhook events, built by the webhook layer from the ids the
services record (`webhooks.payloads`; registered in `BillingConfig.ready()`).

This is the presentation side of billing's events: invoices and credit notes are sent as
the reseller API answers them (`GET reseller/invoices/{id}/`, `GET reseller/credit-notes/
{id}/`), through the API's output serializers, so billing's services never import the API.
The shapes are public (docs/api.md, "Webhooks"): resellers script against them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from rest_framework.renderers import JSONRenderer

from accounts.models import Customer, Reseller
from billing.api.serializers import ResellerInvoiceOutputSerializer
from billing.balance.models import BalanceEntry
from billing.credit_notes.models import CreditNote
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.credit_notes.serializers import CreditNoteOutputSerializer
from billing.dunning import invoice_days_overdue
from billing.models import Invoice
from billing.money import quantize_money
from billing.payments.models import Payment
from billing.selectors import invoices_with_lines
from billing.traffic_policy.exposure import Exposure, customer_exposure
from webhooks.catalogue import (
    CREDIT_NOTE_CREATED,
    CUSTOMER_BALANCE_CHANGED,
    CUSTOMER_CREDIT_LIMIT_REACHED,
    INVOICE_FINALIZED,
    INVOICE_OVERDUE,
    INVOICE_PAID,
    INVOICE_VOIDED,
    PAYMENT_CREATED,
    PAYMENT_REFUNDED,
)
from webhooks.payloads import PayloadBuilder, rows_builder


def _plain(data) -> dict[str, Any]:
    """Serializer output as plain JSON types (what is stored and sent)."""
    return json.loads(JSONRenderer().render(data))


def _money(amount: Decimal, currency: str) -> str:
    return format(quantize_money(Decimal(amount), currency), "f")


def _moment(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _invoices(ids: Sequence[int], reseller_id: int):
    return invoices_with_credit_totals(
        Invoice.objects.for_reseller(reseller_id).filter(pk__in=ids).order_by("pk")
    )


def invoices_build(
    ids: Sequence[int], *, reseller_id: int, now: dt.datetime, facts: Mapping[str, Any]
) -> dict[int, dict[str, Any]]:
    """`invoice.finalized`, `invoice.paid`, `invoice.voided`: the invoice as the reseller API
    answers it (one query for the invoices of a batch, one for their lines)."""
    return {
        invoice.pk: _plain(ResellerInvoiceOutputSerializer(invoice).data)
        for invoice in invoices_with_lines(_invoices(ids, reseller_id))
    }


def credit_note_object(credit_note: CreditNote) -> dict[str, Any]:
    """`credit_note.created`: the credit note as the reseller API answers it."""
    return _plain(CreditNoteOutputSerializer(credit_note).data)


def overdue_invoices_build(
    ids: Sequence[int], *, reseller_id: int, now: dt.datetime, facts: Mapping[str, Any]
) -> dict[int, dict[str, Any]]:
    """`invoice.overdue`: the invoice's identity and what is owed, its days overdue counted
    in the reseller's timezone."""
    today = now.astimezone(Reseller.objects.for_reseller(reseller_id).get().tzinfo).date()
    return {
        invoice.pk: {
            "id": invoice.pk,
            "object": "invoice",
            "number": invoice.number,
            "customer": invoice.customer_id,
            "currency": invoice.currency,
            "total": str(invoice.total),
            "balance_due": str(quantize_money(invoice.balance_due, invoice.currency)),
            "due_on": invoice.due_on.isoformat(),
            "days_overdue": invoice_days_overdue(invoice=invoice, today=today),
            "overdue_at": invoice.overdue_at.isoformat() if invoice.overdue_at else None,
        }
        for invoice in _invoices(ids, reseller_id)
    }


def payment_object(payment: Payment) -> dict[str, Any]:
    """`payment.created`, `payment.refunded`: the payment as `GET reseller/payments/{id}/`
    answers it, with its invoice's status and balance due after it."""
    invoice = payment.invoice
    currency = payment.currency
    refunds = list(payment.refunds.order_by("refunded_at", "pk"))
    refunded = sum((r.amount for r in refunds), start=Decimal(0))
    figures = invoices_with_credit_totals(
        Invoice.objects.for_reseller(payment.reseller_id).filter(pk=invoice.pk)
    ).values("status", "balance_due", "amount_paid")[0]
    return {
        "id": payment.pk,
        "invoice": invoice.pk,
        "invoice_number": invoice.number,
        "customer": payment.customer_id,
        "currency": currency,
        "amount": _money(payment.amount, currency),
        "amount_refunded": _money(refunded, currency),
        "paid_at": _moment(payment.paid_at),
        "method": payment.method,
        "method_detail": payment.method_detail,
        "reference": payment.reference,
        "note": payment.note,
        "created_by": payment.created_by,
        "created_at": _moment(payment.created_at),
        "refunds": [
            {
                "id": r.pk,
                "amount": _money(r.amount, currency),
                "refunded_at": _moment(r.refunded_at),
                "reason": r.reason,
                "reference": r.reference,
                "created_by": r.created_by,
                "created_at": _moment(r.created_at),
            }
            for r in refunds
        ],
        "invoice_status": figures["status"],
        "invoice_amount_paid": _money(figures["amount_paid"], currency),
        "invoice_balance_due": _money(figures["balance_due"], currency),
    }


def exposure_figures(exposure: Exposure) -> dict[str, object]:
    """The parts and total of an exposure as decimal strings."""
    return {
        "balance_due": str(exposure.balance_due),
        "unissued": str(exposure.unissued),
        "usage_so_far": str(exposure.usage_so_far),
        "unused_traffic": str(exposure.unused_traffic),
        "unused_bytes": exposure.unused_bytes,
        "customer_balance": str(exposure.customer_balance),
        "total": str(exposure.total),
    }


def credit_limit_build(
    ids: Sequence[int], *, reseller_id: int, now: dt.datetime, facts: Mapping[str, Any]
) -> dict[int, dict[str, Any]]:
    """`customer.credit_limit_reached`: the limit, the exposure by part at `now`, and what
    the refused top-up would have made it (`facts`: `exposure_with_topup`, `topup_bytes`,
    decided by the traffic policy)."""
    built = {}
    for customer in Customer.objects.for_reseller(reseller_id).filter(pk__in=ids):
        exposure = customer_exposure(customer=customer, now=now)
        built[customer.pk] = {
            "id": customer.pk,
            "object": "customer",
            "customer": customer.pk,
            "name": customer.name,
            "currency": exposure.currency,
            "credit_limit": str(customer.credit_limit),
            "exposure": exposure_figures(exposure),
            "exposure_with_topup": str(
                quantize_money(facts["exposure_with_topup"], exposure.currency)
            ),
            "topup_bytes": facts["topup_bytes"],
            "credit_limit_reached_at": customer.credit_limit_reached_at.isoformat()
            if customer.credit_limit_reached_at
            else None,
        }
    return built


def balance_entry_object(entry: BalanceEntry) -> dict[str, Any]:
    """`customer.balance_changed`: the ledger entry and the balance after it (its entries up
    to this one)."""
    after = BalanceEntry.objects.filter(
        reseller_id=entry.reseller_id, balance_id=entry.balance_id, pk__lte=entry.pk
    ).aggregate(s=Sum("amount"))["s"]
    return {
        "object": "balance_entry",
        "id": entry.pk,
        "customer": entry.customer_id,
        "currency": entry.currency,
        "kind": entry.kind,
        "amount": _money(entry.amount, entry.currency),
        "balance": _money(after or 0, entry.currency),
        "invoice": entry.invoice_id,
        "credit_note": entry.credit_note_id,
        "payment": entry.payment_id,
        "top_up": entry.top_up_id,
        "reason": entry.reason,
        "created_at": _moment(entry.created_at),
    }


_payments = rows_builder(Payment, payment_object, related=["invoice"])

#: Registered in `BillingConfig.ready()`.
BUILDERS: dict[str, PayloadBuilder] = {
    INVOICE_FINALIZED: invoices_build,
    INVOICE_PAID: invoices_build,
    INVOICE_VOIDED: invoices_build,
    INVOICE_OVERDUE: overdue_invoices_build,
    CREDIT_NOTE_CREATED: rows_builder(CreditNote, credit_note_object, related=["invoice"]),
    PAYMENT_CREATED: _payments,
    PAYMENT_REFUNDED: _payments,
    CUSTOMER_CREDIT_LIMIT_REACHED: credit_limit_build,
    CUSTOMER_BALANCE_CHANGED: rows_builder(BalanceEntry, balance_entry_object),
}
