"""The accounts app's error codes and their HTTP status (`core.errors.ERROR_CODES`):
scopes and API keys, customers, upstream accounts, the sub-account lifecycle."""

from core.errors import error_codes_register

error_codes_register(
    {
        "invalid_api_key": (401, 'The API key is unknown, revoked or not sent as "Api-Key <key>".'),
        "reseller_key_required": (403, "A reseller key or staff session is needed for this path."),
        "customer_key_required": (403, "A customer key is needed for this path."),
        "staff_session_required": (403, "Only a staff session (not an API key) may do this."),
        "api_key_name_required": (400, "An API key needs a non-empty name."),
        "api_key_customer_of_other_reseller": (400, "The customer is not one of the reseller's."),
        "api_key_prefix_exhausted": (400, "No free key prefix could be drawn; retry."),
        "customer_currency_locked": (
            409,
            "The customer has subscriptions or invoices; its currency is fixed.",
        ),
        "upstream_url_not_allowed": (400, "The upstream base URL is not on the allowlist."),
        "topup_not_whole_mb": (
            400,
            "The customer's `topup_bytes` is not a whole number of the MB of an upstream account "
            "it has sub-accounts on (400, naming `topup_bytes`).",
        ),
        "sub_account_closed": (409, "The sub-account is closed; it stays as it is."),
        "sub_account_busy": (
            409,
            "The sub-account changed holder while the request waited; try again.",
        ),
        "sub_account_day_before_start": (
            409,
            "The day is before the current customer's period of the sub-account starts.",
        ),
        "sub_account_period_invoiced": (
            409,
            "A customer gaining or losing the days has an invoice issued for them.",
        ),
        "sub_account_billed": (
            409,
            "The sub-account is on an invoice; close it instead of deleting it.",
        ),
        "sub_account_has_usage": (
            409,
            "The sub-account has usage not invoiced yet; close it instead.",
        ),
        "sub_account_in_use": (
            409,
            "Other records (e.g. allocations) refer to the sub-account; close it.",
        ),
    }
)
