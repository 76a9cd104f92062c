"""Sending one delivery: claim, POST the signed event, record the attempt, plan the retry.

- Claim: under the delivery's row lock, a pending delivery that is due gets its attempt
  number and a lease (`next_attempt_at = now + LEASE`), committed before the request. A
  second worker (a duplicate task, the beat sweep) finds it not due and does nothing, so
  one attempt is made and recorded however many workers race for it. A worker that dies
  mid-send leaves the lease to expire; the beat sweep then retries it.
- Send: httpx, short timeouts, no redirects (a 3xx is a failure), the body signed with
  `Flowbill-Signature` (see `webhooks.signing`).
- Outcome: 2xx succeeds. 410 Gone disables the endpoint (the receiver says it is gone for
  good) and fails the delivery. Anything else retries with exponential backoff and jitter
  (`RETRY_DELAYS`: 1 min ... 12 h, about 27 h in all) until `MAX_ATTEMPTS`, then fails.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable

import httpx
from django.db import transaction

from webhooks.events import webhook_event_payload
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.signing import SIGNATURE_HEADER, webhook_signature_header
from webhooks.urls_check import webhook_url_problem

#: Seconds before retry n+1 after n failed attempts; the first attempt is immediate.
RETRY_DELAYS = (60, 300, 1800, 7200, 14400, 28800, 43200)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.1
#: A claimed delivery is not taken by another worker for this long (> the send timeout).
LEASE = dt.timedelta(seconds=120)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
BODY_EXCERPT = 500
USER_AGENT = "Flowbill-Webhooks/1.0"


def retry_delay(attempts: int, *, rand: Callable[[], float] = random.random) -> dt.timedelta:
    """Delay after `attempts` failed attempts: the table's value +/- 10% jitter."""
    base = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return dt.timedelta(seconds=base * (1 + JITTER * (2 * rand() - 1)))


def http_client() -> httpx.Client:
    """The client deliveries are sent with (tests swap it for a MockTransport one)."""
    return httpx.Client(timeout=TIMEOUT, follow_redirects=False)


def webhook_delivery_body(delivery: WebhookDelivery) -> bytes:
    payload = webhook_event_payload(delivery.event)
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _claim(delivery_id: int, now: dt.datetime) -> WebhookDelivery | None:
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("event", "endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return None  # not due yet, or another worker holds the lease
        delivery.attempts += 1
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["attempts", "next_attempt_at"])
        return delivery


def _excerpt(text: str) -> str:
    return text[:BODY_EXCERPT]


def _post(delivery: WebhookDelivery, now: dt.datetime) -> tuple[int | None, str, str]:
    """(response status, body excerpt, error) of one POST; never raises for the network."""
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        return None, "", "endpoint disabled"
    problem = webhook_url_problem(endpoint.url)
    if problem:
        return None, "", f"URL refused: {problem}"
    body = webhook_delivery_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: webhook_signature_header(
            secret=endpoint.secret, body=body, timestamp=int(now.timestamp())
        ),
        "Flowbill-Event-Id": delivery.event.public_id,
        "Flowbill-Event-Type": delivery.event.type,
    }
    try:
        with http_client() as client:
            response = client.post(endpoint.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        # The receiver's URL and our headers are not in these messages; only the reason.
        return None, "", f"{type(exc).__name__}: {exc}"[:300]
    return response.status_code, _excerpt(response.text), ""


def webhook_delivery_send(
    *, delivery_id: int, now: dt.datetime, rand: Callable[[], float] = random.random
) -> WebhookDelivery | None:
    """Make the due attempt of one delivery and record it; None when it was not due (done,
    not yet time, or another worker's)."""
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    started = time.monotonic()
    status, body, error = _post(delivery, now)
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = status is not None and 200 <= status < 300
    with transaction.atomic():
        stored = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        WebhookAttempt.objects.create(
            delivery=stored,
            number=delivery.attempts,
            attempted_at=now,
            succeeded=succeeded,
            response_status=status,
            response_body=body,
            error=error,
            duration_ms=duration_ms,
        )
        stored.last_attempt_at = now
        stored.last_response_status = status
        stored.last_response_body = body
        stored.last_error = error
        if succeeded:
            stored.status = WebhookDelivery.Status.SUCCEEDED
            stored.delivered_at = now
            stored.next_attempt_at = None
        elif status == 410 or error == "endpoint disabled" or error.startswith("URL refused"):
            stored.status = WebhookDelivery.Status.FAILED
            stored.next_attempt_at = None
            if status == 410:
                WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(
                    is_active=False, disabled_reason=f"410 Gone at {now.isoformat()}"
                )
        elif stored.attempts >= MAX_ATTEMPTS:
            stored.status = WebhookDelivery.Status.FAILED
            stored.next_attempt_at = None
        else:
            stored.next_attempt_at = now + retry_delay(stored.attempts, rand=rand)
        stored.save()
    return stored


def webhook_deliveries_due(*, now: dt.datetime, limit: int = 500) -> list[int]:
    """Ids of pending deliveries due at `now` (retries, expired leases, unqueued sends)."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
