"""Answer 503 instead of a stack trace when the database, the broker or Redis is down.

API views get their 503 from the DRF exception handler (`core.errors`). This middleware
covers everything else: admin pages, the health check, plain Django views, and errors raised
inside other middleware (a session read or write), which Django would otherwise turn into a
500 page (a technical one with DEBUG on). Under `/api/` the body is the API's JSON error;
elsewhere a short HTML page. Place it first in `MIDDLEWARE` so it wraps all the others.
"""

from __future__ import annotations

import sys

from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

from core.errors import (
    SERVICE_RETRY_AFTER,
    log_unavailable,
    service_unavailable_body,
    unavailable_service,
)

_ATTR = "_flowbill_unavailable_service"


def service_unavailable_response(request: HttpRequest, service: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(service_unavailable_body(service), status=503)
    else:
        body = service_unavailable_body(service)
        response = HttpResponse(
            "<!doctype html><title>Service unavailable</title>"
            f"<h1>Service temporarily unavailable</h1><p>{escape(body['message'])}</p>",
            status=503,
        )
    response["Retry-After"] = str(SERVICE_RETRY_AFTER)
    return response


def _remember(sender, request=None, **kwargs) -> None:
    """Django sends this while handling an exception no view caught (sys.exc_info is set)."""
    exc = sys.exc_info()[1]
    service = unavailable_service(exc) if exc is not None else None
    if request is not None and service is not None:
        setattr(request, _ATTR, service)


got_request_exception.connect(_remember, dispatch_uid="flowbill-service-unavailable")


class ServiceUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        service = getattr(request, _ATTR, None)
        if service is not None and response.status_code == 500:
            return service_unavailable_response(request, service)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        service = unavailable_service(exception)
        if service is None:
            return None
        log_unavailable(service, exception, request.path)
        return service_unavailable_response(request, service)
