"""The billing app's error codes and their HTTP status (`core.errors.ERROR_CODES`): plans and
subscriptions, periods, invoices, credit notes, payments."""

from core.errors import error_codes_register

error_codes_register(
    {
        "invalid_plan": (400, "The plan's prices or tiers are inconsistent (`extra.fields`)."),
        "plan_price_immutable": (400, "A plan's prices are fixed once created."),
        "subscription_billed": (409, "The subscription was used by an issued invoice."),
        "currency_mismatch": (400, "The plan's currency is not the customer's."),
        "invalid_period": (400, "The billing period is malformed."),
        "period_not_started": (409, "The period has not begun yet."),
        "period_not_ended": (409, "The period (plus the grace days) has not ended yet."),
        "period_before_customer": (
            409,
            "The month ended before the customer was created and has nothing billable (409).",
        ),
        "nothing_billable": (
            409,
            "No subscription, usage or adjustment in the period: no invoice is created or "
            "numbered (409 on finalize; `skipped` in a generate run).",
        ),
        "invoice_not_draft": (409, "Only a draft invoice allows this."),
        "invoice_not_issued": (409, "Only an issued (finalized or paid) invoice allows this."),
        "invoice_not_void": (409, "Only a void invoice allows this."),
        "invoice_immutable": (400, "An issued invoice's amounts and lines cannot change."),
        "invalid_transition": (409, "The invoice's status does not allow this transition."),
        "credit_note_immutable": (400, "A credit note cannot change once issued."),
        "subscription_overlap": (400, "The subscription overlaps another of the customer's."),
        "invalid_subscription": (400, "The subscription's dates or plan are inconsistent."),
        "invoice_not_creditable": (409, "Only a finalized or paid invoice can be credited."),
        "invoice_has_credit_notes": (409, "The invoice has credit notes, so it cannot do this."),
        "credit_amount_and_lines": (
            400,
            "Give either an amount or lines for a credit note, not both.",
        ),
        "credit_exceeds_invoice": (409, "The credit is more than the invoice's balance."),
        "credit_exceeds_line": (409, "A line's credit is more than the line's amount."),
        "invalid_lines": (400, "The lines are missing or not on this invoice."),
        "invalid_reason": (400, "Unknown credit note reason."),
        "invoice_not_payable": (
            409,
            "Only a finalized invoice takes payments (a draft or void invoice does not: 409).",
        ),
        "payment_currency_mismatch": (400, "A payment is in its invoice's currency."),
        "invalid_payment_method": (
            400,
            "Unknown payment method (bank_transfer, card, cash, paypal, crypto, other).",
        ),
        "paid_at_in_future": (400, "A payment or refund cannot be dated in the future."),
        "nothing_due": (409, "The invoice's balance due is 0: nothing to pay (409)."),
        "refund_exceeds_payment": (
            409,
            "The refund is more than what is left of the payment (409, `extra.remaining`).",
        ),
        "invoice_has_payments": (
            409,
            "The invoice holds payments; refund them before voiding (409).",
        ),
        "payment_immutable": (400, "Payments and refunds never change once recorded."),
    }
)
