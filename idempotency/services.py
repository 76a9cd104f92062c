"""`Idempotency-Key` bookkeeping: claim a key, store the final response, replay it.

- `idempotency_begin` inserts the caller's (scope, key) row, committed at once. When the
  row exists: a different method, path or body is `idempotency_key_reused` (409); a request
  still running (no response yet) is `idempotency_request_in_progress` (409); a finished
  one is replayed. A row older than `TTL` is ignored (deleted and claimed anew), and a
  running row older than `IN_PROGRESS_TIMEOUT` counts as abandoned (its worker died).
- `idempotency_complete` stores a 2xx/4xx response; `idempotency_release` drops the claim
  of a request that ended in a 5xx or an exception, so the client may retry it.
- `idempotency_records_purge` deletes expired rows (beat, daily).

Stored bodies are encrypted with the project's MultiFernet keys (`core.crypto`): some
answers carry a secret shown once (a new API key, a webhook signing secret), which a
replay shows again to the same caller but which must not sit in the database in clear.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from core.crypto import fernet
from core.errors import ApplicationError
from idempotency.models import IdempotencyRecord

TTL = dt.timedelta(hours=24)
IN_PROGRESS_TIMEOUT = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Begun:
    """The outcome of `idempotency_begin`: run the request (`claimed`) or replay `record`."""

    record: IdempotencyRecord
    claimed: bool


def idempotency_request_hash(*, method: str, path: str, body: bytes) -> str:
    """A fingerprint of the request: JSON bodies compare by value (key order and spacing
    do not matter), anything else byte for byte."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def idempotency_begin(
    *, scope: str, key: str, method: str, path: str, request_hash: str, now: dt.datetime
) -> Begun:
    for _ in range(3):
        IdempotencyRecord.objects.filter(scope=scope, key=key, created_at__lt=now - TTL).delete()
        IdempotencyRecord.objects.filter(
            scope=scope,
            key=key,
            status_code__isnull=True,
            created_at__lt=now - IN_PROGRESS_TIMEOUT,
        ).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    scope=scope,
                    key=key,
                    method=method,
                    path=path[:2000],
                    request_hash=request_hash,
                    created_at=now,
                )
            return Begun(record=record, claimed=True)
        except IntegrityError:
            record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
            if record is None:
                continue  # deleted meanwhile (completed with a 5xx, or expired): try again
        if record.request_hash != request_hash:
            raise ApplicationError(
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request (method, path or "
                "body) in the last 24 hours; use a new key for a new request.",
                extra={"header": "Idempotency-Key"},
            )
        if record.status_code is None:
            raise ApplicationError(
                "idempotency_request_in_progress",
                "A request with this Idempotency-Key is still being processed; retry it "
                "in a moment to get its response.",
                extra={"header": "Idempotency-Key"},
            )
        return Begun(record=record, claimed=False)
    raise ApplicationError(
        "idempotency_request_in_progress",
        "A request with this Idempotency-Key is still being processed; retry it shortly.",
        extra={"header": "Idempotency-Key"},
    )


def idempotency_complete(
    *,
    record: IdempotencyRecord,
    status_code: int,
    body: str,
    headers: dict[str, str],
    now: dt.datetime,
) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=status_code,
        response_body=fernet().encrypt(body.encode()).decode() if body else "",
        response_headers=headers,
        completed_at=now,
    )


def idempotency_response_body(record: IdempotencyRecord) -> str:
    """The stored response body, decrypted ("" for none)."""
    if not record.response_body:
        return ""
    return fernet().decrypt(record.response_body.encode()).decode()


def idempotency_release(*, record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).delete()


def idempotency_records_purge(*, now: dt.datetime) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - TTL).delete()
    return deleted
