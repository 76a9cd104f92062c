"""The webhook event catalogue: every event type Flowbill sends, and what `data.object` is.

Endpoints subscribe to a subset (`enabled_events`); an unknown type is refused at the API
and by `webhook_event_record`, so a typo never silently subscribes to nothing.
"""

from __future__ import annotations

INVOICE_FINALIZED = "invoice.finalized"
INVOICE_PAID = "invoice.paid"
INVOICE_VOIDED = "invoice.voided"
INVOICE_OVERDUE = "invoice.overdue"
CREDIT_NOTE_CREATED = "credit_note.created"
PAYMENT_CREATED = "payment.created"
PAYMENT_REFUNDED = "payment.refunded"
USAGE_ALERT = "usage.alert"
SYNC_FAILED = "sync.failed"
CUSTOMER_SUSPENDED = "customer.suspended"
CUSTOMER_REINSTATED = "customer.reinstated"
CUSTOMER_CREDIT_LIMIT_REACHED = "customer.credit_limit_reached"
CUSTOMER_BALANCE_CHANGED = "customer.balance_changed"
SUB_ACCOUNT_PROVISIONED = "sub_account.provisioned"
ALLOCATION_CONFIRMED = "allocation.confirmed"
ALLOCATION_FAILED = "allocation.failed"

#: type -> one line for the docs and the API's help text.
EVENT_TYPES: dict[str, str] = {
    INVOICE_FINALIZED: "An invoice was finalized (numbered, its PDF frozen).",
    INVOICE_PAID: "An invoice was paid: its balance due reached 0 (payments, `mark-paid`).",
    INVOICE_VOIDED: "An invoice was voided.",
    INVOICE_OVERDUE: "An invoice became overdue: past its due date with an amount still due "
    "(once per invoice, the day after the due date in the reseller's timezone).",
    CREDIT_NOTE_CREATED: "A credit note was issued against an invoice.",
    PAYMENT_CREATED: "A payment was recorded against an invoice (`data.object` is the payment, "
    "with the invoice's status and balance due after it).",
    PAYMENT_REFUNDED: "A payment was refunded in part or in full (`data.object` is the payment "
    "with its refunds; a refund that reopens a balance due makes the invoice finalized again).",
    USAGE_ALERT: "A customer's usage alert rule fired (once per rule and month).",
    SYNC_FAILED: "A usage sync run ended failed.",
    CUSTOMER_SUSPENDED: "A customer was suspended (its IPFoxy sub-accounts are cut off upstream).",
    CUSTOMER_REINSTATED: "A suspended customer was reinstated (new proxy passwords).",
    CUSTOMER_CREDIT_LIMIT_REACHED: "An automatic top-up was refused by the customer's credit "
    "limit (once until a top-up fits again).",
    CUSTOMER_BALANCE_CHANGED: "A customer's balance changed (`data.object` is the ledger entry "
    "with the balance after it: a credit note, an overpayment, a top-up, an adjustment, or "
    "balance applied to an invoice or given back).",
    SUB_ACCOUNT_PROVISIONED: "A sub-account was created upstream by Flowbill.",
    ALLOCATION_CONFIRMED: "Traffic allocated to a sub-account was confirmed by the upstream.",
    ALLOCATION_FAILED: "An allocation failed, or its outcome needs review.",
}

#: The types as choices (the API's enum, `WebhookEventTypeEnum` in the OpenAPI schema).
EVENT_TYPE_CHOICES: list[str] = list(EVENT_TYPES)
