"""The webhook endpoints' error codes and their HTTP status (`core.errors.ERROR_CODES`)."""

from core.errors import error_codes_register

error_codes_register(
    {
        "webhook_endpoint_limit": (409, "The reseller has the most webhook endpoints allowed."),
        "webhook_endpoint_disabled": (409, "The webhook endpoint is switched off."),
        "webhook_delivery_in_progress": (409, "The delivery is being sent right now."),
    }
)
