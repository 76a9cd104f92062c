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
        body = error_body("validation_error", "Invalid input.", {"fields": response.data})
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        body = error_body(str(code), str(detail) or str(exc))
    response.data = body
    return response
