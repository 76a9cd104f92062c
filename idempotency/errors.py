"""The Idempotency-Key layer's error codes and their HTTP status (`core.errors.ERROR_CODES`)."""

from core.errors import error_codes_register

error_codes_register(
    {
        "idempotency_key_reused": (409, "The Idempotency-Key was used for a different request."),
        "idempotency_request_in_progress": (
            409,
            "The first request with this key is still running.",
        ),
    }
)
