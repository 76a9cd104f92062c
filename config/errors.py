"""The one application error type, and the DRF handler that renders every error alike.

Every error a service raises is an `ApplicationError` with a stable snake_case `code`
(`invoice_not_draft`), a human `message` and optional `extra` details. The API renders
all errors, DRF's own included, as `{"code", "message", "extra"}`.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


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


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.extra), status=exc.http_status)
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
