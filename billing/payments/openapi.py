"""OpenAPI texts of the payment operations and fields (applied when the URLs load)."""

from __future__ import annotations

from billing.payments import serializers as ser
from billing.payments import views
from core.openapi import COMMON_FIELDS, apply_texts
from core.openapi import example as _ex

REFUND = {
    "id": 3,
    "payment": 4,
    "amount": "30.00",
    "refunded_at": "2026-11-12T09:00:00Z",
    "reason": "Goodwill: two days of downtime",
    "reference": "RF-2026-118",
    "created_at": "2026-11-12T09:01:00Z",
}
CUSTOMER_PAYMENT = {
    "id": 4,
    "invoice": 1,
    "invoice_number": "DEMO-2026-00001",
    "currency": "USD",
    "amount": "1000.00",
    "amount_refunded": "30.00",
    "paid_at": "2026-11-10T14:20:00Z",
    "method": "bank_transfer",
    "method_detail": "Wise",
    "reference": "WIRE-88412",
    "refunds": [REFUND],
}
PAYMENT = {
    **CUSTOMER_PAYMENT,
    "customer": 1,
    "note": "First instalment",
    "created_by": "api-key fb_3kq9",
    "created_at": "2026-11-10T15:00:00Z",
}
NEW_PAYMENT = {**PAYMENT, "amount_refunded": "0.00", "refunds": []}
PAYMENT_REQUEST = {
    "amount": "1000.00",
    "paid_at": "2026-11-10T14:20:00Z",
    "method": "bank_transfer",
    "method_detail": "Wise",
    "reference": "WIRE-88412",
}

_OPERATIONS = [
    (
        views.ResellerInvoicePaymentsView,
        "get",
        "List an invoice's payments",
        "The payments recorded against one of your invoices, with their refunds, ordered by id.",
        [_ex("Payments", PAYMENT)],
    ),
    (
        views.ResellerInvoicePaymentsView,
        "post",
        "Record a payment",
        "Records money received against a finalized invoice, in its currency: partial "
        "payments add up, and the payment that brings `balance_due` (`total - "
        "balance_applied - amount_credited - amount_paid`) to 0 makes the invoice `paid` "
        "(webhook `invoice.paid`). What is paid above the balance due goes on the "
        "customer's balance (`to_balance`). Sends `payment.created`. "
        "`method` is one of the list; anything more precise goes in `method_detail`.",
        [
            _ex("Bank transfer", PAYMENT_REQUEST, request=True),
            _ex("Recorded", NEW_PAYMENT, status="201"),
        ],
    ),
    (
        views.ResellerPaymentListView,
        "get",
        "List payments",
        "Every payment of yours, ordered by id; filters `customer`, `invoice`, `method`, "
        "`paid_from`/`paid_to` (days in your timezone, inclusive). Unknown query parameters "
        "are refused (400).",
        [_ex("Payments", PAYMENT)],
    ),
    (
        views.ResellerPaymentDetailView,
        "get",
        "Get a payment",
        "One of your payments with its refunds.",
        [_ex("Payment", PAYMENT)],
    ),
    (
        views.ResellerPaymentRefundsView,
        "post",
        "Refund a payment",
        "Gives back `amount` of the payment (absent: all that is left of it). A refund that "
        "reopens a balance due makes a paid invoice `finalized` again (`paid_at` cleared). "
        "Sends `payment.refunded`.",
        [
            _ex("Partial", {"amount": "30.00", "reason": "Goodwill"}, request=True),
            _ex("Refunded", REFUND, status="201"),
        ],
    ),
    (
        views.InvoicePaymentsView,
        "get",
        "List my invoice's payments",
        "The payments recorded against one of the customer's invoices, with their refunds.",
        [_ex("Payments", CUSTOMER_PAYMENT)],
    ),
    (
        views.PaymentListView,
        "get",
        "List my payments",
        "The customer's payments, ordered by id.",
        [_ex("Payments", CUSTOMER_PAYMENT)],
    ),
]

_FIELDS = {
    **COMMON_FIELDS,
    "invoice": "The invoice's id.",
    "invoice_number": "The paid invoice's number.",
    "customer": "The customer's id.",
    "payment": "The refunded payment's id.",
    "amount": "Decimal string in the currency.",
    "amount_refunded": "Given back of the payment by its refunds.",
    "paid_at": "When the money was received (UTC).",
    "refunded_at": "When the money was given back (UTC).",
    "refunds": "The payment's refunds, oldest first.",
    "reason": "Why, in words.",
    "reference": "The payer's or the bank's reference.",
    "method": "How the money came in (see `PaymentMethodEnum`).",
    "method_detail": "Free text about the method.",
    "note": "Internal note (not shown to the customer).",
    "created_by": "Who recorded it.",
    "created_at": "When it was recorded (UTC).",
    "currency": "ISO 4217 code: always the invoice's.",
    "paid_from": "First day (inclusive).",
    "paid_to": "Last day (inclusive).",
}

apply_texts(
    _OPERATIONS,
    [
        (
            [
                ser.PaymentCreateInputSerializer,
                ser.RefundCreateInputSerializer,
                ser.PaymentListQuerySerializer,
                ser.RefundOutputSerializer,
                ser.CustomerPaymentOutputSerializer,
                ser.PaymentOutputSerializer,
            ],
            _FIELDS,
        )
    ],
)
