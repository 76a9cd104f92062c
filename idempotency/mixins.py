"""`Idempotency-Key` on every POST of the API: a mixin of the API's base view.

After authentication, permissions and throttling (`initial`), a POST carrying the header
claims the key for the caller, or replays the stored response (with
`Idempotent-Replayed: true`) without running the view, or answers 409 (see
`idempotency.services`). Its final response is stored when it is a 2xx or 4xx; a 5xx or
an exception releases the key. Requests without the header are untouched.
"""

from __future__ import annotations

import json
import re

from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from idempotency.services import (
    idempotency_begin,
    idempotency_complete,
    idempotency_release,
    idempotency_request_hash,
    idempotency_response_body,
)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
#: Response headers a replay repeats (the renderer sets the content headers again).
REPLAYED_HEADERS = ("Location", "Retry-After")


def idempotency_scope(request) -> str:
    """Whose keys these are: an API key's, or a staff user's (session)."""
    auth = getattr(request, "auth", None)
    if auth is not None and getattr(auth, "pk", None) is not None:
        return f"api_key:{auth.pk}"
    return f"user:{request.user.pk}"


class IdempotentPostMixin:
    _idempotency_claim = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None:
            return
        if not KEY_PATTERN.fullmatch(key):
            raise ValidationError(
                {HEADER: ["Use 1 to 255 visible ASCII characters (a UUID is a good key)."]}
            )
        try:
            body = request._request.body
        except RawPostDataException:  # already streamed (not JSON): compare what was parsed
            body = json.dumps(request.data, cls=JSONEncoder, sort_keys=True).encode()
        begun = idempotency_begin(
            scope=idempotency_scope(request),
            key=key,
            method=request.method,
            path=request.path,
            request_hash=idempotency_request_hash(
                method=request.method, path=request.get_full_path(), body=body
            ),
            now=timezone.now(),
        )
        if begun.claimed:
            self._idempotency_claim = begun.record
            return
        record = begun.record
        body = idempotency_response_body(record)
        data = json.loads(body) if body else None
        replay = Response(data, status=record.status_code, headers=record.response_headers)
        replay[REPLAYED_HEADER] = "true"
        self.post = lambda *args, **kwargs: replay  # dispatch calls this instead of the view

    def handle_exception(self, exc):
        try:
            return super().handle_exception(exc)
        except BaseException:
            self._idempotency_release()
            raise

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record, self._idempotency_claim = self._idempotency_claim, None
        if record is None:
            return response
        if response.status_code >= 500:
            idempotency_release(record=record)
            return response
        data = getattr(response, "data", None)
        idempotency_complete(
            record=record,
            status_code=response.status_code,
            body="" if data is None else json.dumps(data, cls=JSONEncoder),
            headers={
                name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)
            },
            now=timezone.now(),
        )
        return response

    def _idempotency_release(self) -> None:
        record, self._idempotency_claim = self._idempotency_claim, None
        if record is not None:
            idempotency_release(record=record)
