"""The one application error type, and the DRF handler that renders every error alike.

Every error a service raises is an `ApplicationError` with a stable snake_case `code`
(`invoice_not_draft`), a human `message` and optional `extra` details. The API renders
all errors, DRF's own included, as `{"code", "message", "extra"}`.

A body over `DATA_UPLOAD_MAX_MEMORY_SIZE` is a 413 `request_too_large` in the same shape
(Django's own answer is an HTML 400 page).

A backing service that cannot be reached (the database, the task broker, Redis) is not a
bug in the request: it answers 503 `service_unavailable` with a `Retry-After`, naming the
service but never the error text (which can carry host names and user names). The DRF
handler does it for API views; `config.middleware.ServiceUnavailableMiddleware` for the
rest (admin, health check) and for errors raised in other middleware.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError as DbInterfaceError
from django.db import OperationalError as DbOperationalError
from django.http import Http404
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback


class ApplicationError(Exception):
    """A business rule refused the operation. `code` is stable; `message` is for humans."""

    http_status = status.HTTP_400_BAD_REQUEST

    def __init__(self, code: str, message: str, *, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}

    def __str__(self) -> str:
        return self.message


class NotFoundError(ApplicationError):
    http_status = status.HTTP_404_NOT_FOUND

    def __init__(self, message: str = "Not found.", *, extra: dict[str, Any] | None = None):
        super().__init__("not_found", message, extra=extra)


def error_body(code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "extra": extra or {}}


logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait after a 503 (a restart or failover takes about this).
SERVICE_RETRY_AFTER = 30


def unavailable_service(exc: BaseException) -> str | None:
    """The backing service `exc` says is unreachable right now ("database", "task broker",
    "redis"), or None when `exc` is anything else (a bug stays a 500)."""
    if isinstance(exc, DbOperationalError | DbInterfaceError):
        return "database"
    if isinstance(exc, BrokerError):
        return "task broker"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "redis"
    return None


def service_unavailable_body(service: str) -> dict[str, Any]:
    return error_body(
        "service_unavailable",
        f"The service is temporarily unavailable ({service} unreachable); "
        f"try again in {SERVICE_RETRY_AFTER} seconds.",
        {"service": service, "retry_after": SERVICE_RETRY_AFTER},
    )


def log_unavailable(service: str, exc: BaseException, path: str) -> None:
    # The exception text stays in the server log (with the traceback), never in a response.
    logger.error("%s unavailable while serving %s", service, path, exc_info=exc)


#: Field error codes more telling than `validation_error`: when every field error of a
#: request carries the same one (an amount field refusing "1e400": `core.money`), the answer
#: carries it as its `code`; `extra.fields` still names each field.
FIELD_ERROR_CODES = frozenset({"invalid_amount"})


def _field_errors(detail: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, message) of every leaf of a DRF error detail: `lines[0].amount`."""
    if isinstance(detail, dict):
        return [
            leaf
            for key, value in detail.items()
            for leaf in _field_errors(value, _child_path(path, key))
        ]
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [(path, item) for item in detail]
        return [
            leaf
            for index, item in enumerate(detail)
            for leaf in _field_errors(item, _child_path(path, index))
        ]
    return [(path, detail)]


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, int):  # an item of a list (DRF keys list errors by index)
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def validation_code(detail: Any) -> tuple[str, str]:
    """The `code` and `message` of a validation error: `validation_error`, unless every
    field error carries one code of `FIELD_ERROR_CODES` (then that code, naming the first)."""
    leaves = _field_errors(detail)
    codes = {getattr(message, "code", None) for _path, message in leaves}
    if len(codes) == 1 and (code := codes.pop()) in FIELD_ERROR_CODES:
        path, message = leaves[0]
        more = f" (and {len(leaves) - 1} more)" if len(leaves) > 1 else ""
        return code, f"{path}: {message}{more}"
    return "validation_error", "Invalid input."


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.extra), status=exc.http_status)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            error_body(
                "request_too_large",
                f"The request body is larger than the {limit} bytes this API accepts.",
                {"max_bytes": limit},
            ),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    service = unavailable_service(exc)
    if service is not None:
        request = context.get("request")
        log_unavailable(service, exc, getattr(request, "path", ""))
        set_rollback()
        return Response(
            service_unavailable_body(service),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(SERVICE_RETRY_AFTER)},
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        code, message = validation_code(exc.detail)
        body = error_body(code, message, {"fields": response.data})
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        body = error_body(str(code), str(detail) or str(exc))
    response.data = body
    return response


#: Every `code` an API error can carry, with what it means: the `ApiError.code` enum of the
#: OpenAPI schema (`ErrorCodeEnum`, SPECTACULAR_SETTINGS). A new code raised anywhere must be added
#: here (tests/api/test_openapi_completeness.py checks the services' codes are all listed).
ERROR_CODES: dict[str, str] = {
    # DRF and the error handler
    "validation_error": "The input is invalid; `extra.fields` names each field.",
    "parse_error": "The body is not valid JSON (or not the declared content type).",
    "not_authenticated": 'No credentials; send "Authorization: Api-Key <key>".',
    "authentication_failed": "The credentials were not accepted.",
    "invalid_api_key": 'The API key is unknown, revoked or not sent as "Api-Key <key>".',
    "permission_denied": "Authenticated, but not allowed to do this.",
    "not_found": "No such object, or it is not yours.",
    "method_not_allowed": "The path does not accept this HTTP method.",
    "not_acceptable": "No representation matches the Accept header.",
    "unsupported_media_type": "The body's Content-Type is not accepted here.",
    "throttled": "Too many requests; retry after `Retry-After` seconds.",
    "request_too_large": "The body is larger than the API accepts (`extra.max_bytes`).",
    "service_unavailable": "A backing service is unreachable; retry after `Retry-After`.",
    "error": "An error without a more specific code.",
    # scopes and keys
    "reseller_key_required": "A reseller key or staff session is needed for this path.",
    "customer_key_required": "A customer key is needed for this path.",
    "staff_session_required": "Only a staff session (not an API key) may do this.",
    "api_key_name_required": "An API key needs a non-empty name.",
    "api_key_customer_of_other_reseller": "The customer is not one of the reseller's.",
    "api_key_prefix_exhausted": "No free key prefix could be drawn; retry.",
    # idempotency
    "idempotency_key_reused": "The Idempotency-Key was used for a different request.",
    "idempotency_request_in_progress": "The first request with this key is still running.",
    # accounts
    "customer_currency_locked": "The customer has subscriptions or invoices; its currency is "
    "fixed.",
    "upstream_url_not_allowed": "The upstream base URL is not on the allowlist.",
    "topup_not_whole_mb": "The customer's `topup_bytes` is not a whole number of the MB of an "
    "upstream account it has sub-accounts on (400, naming `topup_bytes`).",
    # sub-account lifecycle (409)
    "sub_account_closed": "The sub-account is closed; it stays as it is.",
    "sub_account_busy": "The sub-account changed holder while the request waited; try again.",
    "sub_account_day_before_start": "The day is before the current customer's period of the "
    "sub-account starts.",
    "sub_account_period_invoiced": "A customer gaining or losing the days has an invoice issued "
    "for them.",
    "sub_account_billed": "The sub-account is on an invoice; close it instead of deleting it.",
    "sub_account_has_usage": "The sub-account has usage not invoiced yet; close it instead.",
    "sub_account_in_use": "Other records (e.g. allocations) refer to the sub-account; close it.",
    # billing
    "invalid_plan": "The plan's prices or tiers are inconsistent (`extra.fields`).",
    "plan_price_immutable": "A plan's prices are fixed once created.",
    "subscription_billed": "The subscription was used by an issued invoice.",
    "currency_mismatch": "The plan's currency is not the customer's.",
    "invalid_period": "The billing period is malformed.",
    "period_not_started": "The period has not begun yet.",
    "period_not_ended": "The period (plus the grace days) has not ended yet.",
    "period_before_customer": "The month ended before the customer was created and has "
    "nothing billable (409).",
    "nothing_billable": "No subscription, usage or adjustment in the period: no invoice is "
    "created or numbered (409 on finalize; `skipped` in a generate run).",
    "invoice_not_draft": "Only a draft invoice allows this.",
    "invoice_not_issued": "Only an issued (finalized or paid) invoice allows this.",
    "invoice_not_void": "Only a void invoice allows this.",
    "invoice_immutable": "An issued invoice's amounts and lines cannot change.",
    "invalid_transition": "The invoice's status does not allow this transition.",
    "credit_note_immutable": "A credit note cannot change once issued.",
    "subscription_overlap": "The subscription overlaps another of the customer's.",
    "invalid_subscription": "The subscription's dates or plan are inconsistent.",
    "invoice_not_creditable": "Only a finalized or paid invoice can be credited.",
    "invoice_has_credit_notes": "The invoice has credit notes, so it cannot do this.",
    "credit_amount_and_lines": "Give either an amount or lines for a credit note, not both.",
    "credit_exceeds_invoice": "The credit is more than the invoice's balance.",
    "credit_exceeds_line": "A line's credit is more than the line's amount.",
    "invalid_amount": "An amount is not a plain decimal (no exponent, separators or non-ASCII "
    "digits), is out of range or has more decimals than allowed; `extra.fields` names it.",
    "invalid_lines": "The lines are missing or not on this invoice.",
    "invalid_reason": "Unknown credit note reason.",
    # payments
    "invoice_not_payable": "Only a finalized invoice takes payments (a draft or void invoice "
    "does not: 409).",
    "payment_exceeds_balance_due": "The payment is more than the invoice's balance due "
    "(`extra.balance_due`).",
    "payment_currency_mismatch": "A payment is in its invoice's currency.",
    "invalid_payment_method": "Unknown payment method (bank_transfer, card, cash, paypal, "
    "crypto, other).",
    "paid_at_in_future": "A payment or refund cannot be dated in the future.",
    "nothing_due": "The invoice's balance due is 0: nothing to pay (409).",
    "refund_exceeds_payment": "The refund is more than what is left of the payment (409, "
    "`extra.remaining`).",
    "invoice_has_payments": "The invoice holds payments; refund them before voiding (409).",
    "payment_immutable": "Payments and refunds never change once recorded.",
    # usage and upstreams
    "naive_datetime": "A datetime without a timezone offset.",
    "empty_sync_window": "The sync window holds no time.",
    "provider_has_no_history": "The provider cannot backfill past usage.",
    "snapshot_out_of_order": "An upstream counter reading is older than the last one.",
    "upstream_account_inactive": "The upstream account is switched off.",
    "request_budget_exhausted": "The upstream's request budget is used up; retry later.",
    "upstream_auth_failed": "The upstream refused the stored credentials.",
    "upstream_bad_parameter": "The upstream refused a parameter.",
    "upstream_bad_response": "The upstream answered something unreadable.",
    "upstream_error": "The upstream reported an error.",
    "upstream_insufficient_balance": "The upstream account has no balance left.",
    "upstream_rate_limited": "The upstream rate-limited the request.",
    "upstream_unavailable": "The upstream could not be reached.",
    "upstream_unknown_code": "The upstream answered with an unknown error code.",
    "worker_lost": "The worker running a sync run died; the run was closed.",
    # allocations and upstream reseller reads (409 unless said otherwise)
    "provider_has_no_reseller_api": "The sub-account's provider publishes no reseller API "
    "(BytesFlows: monitor-only): no allocations, no traffic read.",
    "upstream_id_invalid": "The sub-account's upstream id is not an account name the "
    "upstream accepts.",
    "sub_account_not_active": "The sub-account is suspended or closed.",
    "customer_suspended": "The customer is suspended: no traffic is allocated.",
    # suspension (409)
    "customer_already_suspended": "The customer is suspended already; reinstate it first.",
    "customer_not_suspended": "The customer is not suspended; there is nothing to reinstate.",
    "customer_suspended_by_staff": "Staff suspended the customer: only staff reinstate it "
    "(automatic reinstatement after payment leaves it alone).",
    "upstream_outcome_unknown": "The upstream may or may not have applied a write; it is "
    "resent with the same idempotency key.",
    # provisioning and the manual add of IPFoxy sub-accounts
    "upstream_credentials_missing": "The upstream account has no api-id and api-token stored "
    "(409).",
    "upstream_sub_account_unknown": "The upstream does not list a sub-account with this "
    "`upstream_id` (400, naming it in `extra.fields`).",
    "provisioning_name_exhausted": "No free upstream name could be drawn; try again.",
    # webhooks
    "webhook_endpoint_limit": "The reseller has the most webhook endpoints allowed.",
    "webhook_endpoint_disabled": "The webhook endpoint is switched off.",
    "webhook_delivery_in_progress": "The delivery is being sent right now.",
}

ERROR_CODE_CHOICES: list[tuple[str, str]] = list(ERROR_CODES.items())
