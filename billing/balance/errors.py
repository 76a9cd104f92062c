"""Error codes of the customer balance and top-ups (`core.errors.ERROR_CODES`)."""

from core.errors import error_codes_register

error_codes_register(
    {
        "balance_insufficient": (
            409,
            "The balance would fall below 0 (`extra.balance`): a negative adjustment takes "
            "at most what is on the balance.",
        ),
        "reason_required": (400, "A manual balance adjustment needs a reason."),
        "balance_entry_immutable": (400, "Balance entries never change once written."),
        "invoice_is_top_up": (
            409,
            "A top-up invoice is not credited: void it while unpaid; money already on the "
            "balance is taken back with a negative balance adjustment.",
        ),
        "no_plan_price": (
            409,
            "The customer has no subscription active today (in the sub-account's scope) to "
            "price a traffic pack.",
        ),
        "top_up_free": (409, "The plan prices this traffic at 0: there is nothing to invoice."),
        "sub_account_not_ipfoxy": (
            409,
            "Traffic packs are allocated to IPFoxy sub-accounts only (or give no sub_account).",
        ),
        "auto_top_up_rule_invalid": (
            400,
            "An automatic top-up rule needs both a threshold (>= 0) and an amount (> 0), or "
            "neither.",
        ),
    }
)
