"""The one application error type, its HTTP status, and the DRF handler that renders every
error alike.

Every error a service raises is an `ApplicationError` with a stable snake_case `code`
(`invoice_not_draft`), a human `message` and optional `extra` details. The API renders
all errors, DRF's own included, as `{"code", "message", "extra"}`.

A code's HTTP status is a property of the code, never of where it is raised: one table,
`ERROR_CODES` (code -> `ErrorCode(status, description)`), which lists the codes of this
module and of DRF, and which each app extends with its own codes by calling
`error_codes_register` from its `errors` module (imported by its `AppConfig.ready`). The
table is also the `ApiError.code` enum of the OpenAPI schema (`error_code_choices`), so a new
code raised anywhere must be registered (tests/api/test_openapi_completeness.py checks the
services' codes are all listed). 409 means "the request was fine, the object's state does
not allow it"; 502 "the upstream refused or answered nonsense"; 503 "try again later".

A body over `DATA_UPLOAD_MAX_MEMORY_SIZE` is a 413 `request_too_large` in the same shape
(Django's own answer is an HTML 400 page).

A backing service that cannot be reached (the database, the task broker, Redis) is not a
bug in the request: it answers 503 `service_unavailable` with a `Retry-After`, naming the
service but never the error text (which can carry host names and user names). The DRF
handler does it for API views; `core.middleware.ServiceUnavailableMiddleware` for the
rest (admin, health check) and for errors raised in other middleware.
"""

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

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


class ErrorCode(NamedTuple):
    """What a code means for a client: its HTTP status and a description (the schema's)."""

    status: int
    description: str


#: Every `code` an API error can carry: code -> its status and meaning. This module's and
#: DRF's codes below; each app adds its own (`error_codes_register`).
ERROR_CODES: dict[str, ErrorCode] = {}


def error_codes_register(codes: Mapping[str, tuple[int, str]]) -> None:
    """Add an app's codes to `ERROR_CODES`. A code has one status: registering it again
    with another one is a bug, refused at start-up."""
    for code, (http_status, description) in codes.items():
        known = ERROR_CODES.get(code)
        if known is not None and known.status != http_status:
            raise ValueError(f"error code {code!r} registered as {known.status} and {http_status}")
        ERROR_CODES[code] = ErrorCode(http_status, description)


def status_for(code: str) -> int:
    """The HTTP status of an application error with `code` (400 for a code not registered:
    tests/api/test_openapi_completeness.py keeps that from happening)."""
    known = ERROR_CODES.get(code)
    return known.status if known is not None else status.HTTP_400_BAD_REQUEST


def error_code_choices() -> list[tuple[str, str]]:
    """`(code, description)` of every registered code: the `ErrorCodeEnum` of the schema."""
    return [(code, known.description) for code, known in ERROR_CODES.items()]


class ApplicationError(Exception):
    """A business rule refused the operation. `code` is stable (its HTTP status is
    `status_for(code)`); `message` is for humans."""

    def __init__(self, code: str, message: str, *, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}

    @property
    def http_status(self) -> int:
        return status_for(self.code)

    def __str__(self) -> str:
        return self.message


class NotFoundError(ApplicationError):
    """No such object, or not the caller's (a 404 `not_found`)."""

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


error_codes_register(
    {
        # DRF and the error handler (DRF's own exceptions keep DRF's status; listed alike)
        "validation_error": (400, "The input is invalid; `extra.fields` names each field."),
        "parse_error": (
            400,
            "The body is not valid JSON (or not the declared content type).",
        ),
        "not_authenticated": (401, 'No credentials; send "Authorization: Api-Key <key>".'),
        "authentication_failed": (401, "The credentials were not accepted."),
        "permission_denied": (403, "Authenticated, but not allowed to do this."),
        "not_found": (404, "No such object, or it is not yours."),
        "method_not_allowed": (405, "The path does not accept this HTTP method."),
        "not_acceptable": (406, "No representation matches the Accept header."),
        "unsupported_media_type": (415, "The body's Content-Type is not accepted here."),
        "throttled": (429, "Too many requests; retry after `Retry-After` seconds."),
        "request_too_large": (
            413,
            "The body is larger than the API accepts (`extra.max_bytes`).",
        ),
        "service_unavailable": (
            503,
            "A backing service is unreachable; retry after `Retry-After`.",
        ),
        "error": (400, "An error without a more specific code."),
        "invalid_amount": (
            400,
            "An amount is not a plain decimal (no exponent, separators or non-ASCII digits), "
            "is out of range or has more decimals than allowed; `extra.fields` names it.",
        ),
        "naive_datetime": (400, "A datetime without a timezone offset."),
    }
)
