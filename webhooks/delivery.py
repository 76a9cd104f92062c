"""Sending one delivery: claim, POST the signed event, record the attempt, plan the retry.

- Claim: under the delivery's row lock and then its endpoint's, a pending delivery that is
  due gets its attempt number and a lease (`next_attempt_at = now + LEASE`), and the
  endpoint is marked busy until the same time (`sending_until`), committed before the
  request. A second worker (a duplicate task, the beat sweep) finds the delivery not due,
  or the endpoint busy, and does nothing: one attempt at a time per delivery and per
  endpoint, however many workers race. When an attempt ends, the endpoint's next due
  delivery is queued, so one endpoint's backlog drains in order without hogging workers.
  A worker that dies mid-send leaves both leases to expire; the beat sweep then retries.
- Send: `core.http.guarded_post`, the one path for URLs a tenant chose: every resolved
  address must be public and the connection goes to the checked one, a total deadline of
  `ATTEMPT_DEADLINE` seconds (connect to the last byte), at most `MAX_RESPONSE_BYTES` of
  the answer read, no redirects (a 3xx is a failure). The lease (`LEASE`) outlives the
  deadline and the task's hard time limit, so the sweep never sends a delivery that is
  still being sent.
- Log: the HTTP status and at most 1 KiB of the answer; without an answer only
  `endpoint address not allowed`, `connection failed`, `TLS error` or `timed out` (the
  library's text is added in DEBUG only): the log must not map the receiver's network.
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
from django.conf import settings
from django.db import transaction

from core import http as outbound
from webhooks.events import webhook_deliveries_queue, webhook_event_payload
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.signing import SIGNATURE_HEADER, webhook_signature_header
from webhooks.urls_check import webhook_private_hosts_allowed, webhook_url_problem

#: Seconds before retry n+1 after n failed attempts; the first attempt is immediate.
RETRY_DELAYS = (60, 300, 1800, 7200, 14400, 28800, 43200)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.1
#: Seconds for one attempt: connect, TLS, sending and the whole answer.
ATTEMPT_DEADLINE = 10.0
#: Bytes of an answer read and kept in the log.
MAX_RESPONSE_BYTES = 1024
#: A claimed delivery (and its endpoint) is not taken by another worker for this long: well
#: past the deadline and the send task's hard time limit.
LEASE = dt.timedelta(seconds=120)
USER_AGENT = "Flowbill-Webhooks/1.0"


def retry_delay(attempts: int, *, rand: Callable[[], float] = random.random) -> dt.timedelta:
    """Delay after `attempts` failed attempts: the table's value +/- 10% jitter."""
    base = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return dt.timedelta(seconds=base * (1 + JITTER * (2 * rand() - 1)))


def http_transport() -> httpx.BaseTransport | None:
    """None: the guarded network path. Tests swap in an httpx MockTransport."""
    return None


def webhook_delivery_body(delivery: WebhookDelivery) -> bytes:
    payload = webhook_event_payload(delivery.event)
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _claim(delivery_id: int, now: dt.datetime) -> WebhookDelivery | None:
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("event")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return None  # not due yet, or another worker holds the lease
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        if endpoint.sending_until is not None and endpoint.sending_until > now:
            return None  # the endpoint is busy; its sender queues this one when done
        delivery.attempts += 1
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["attempts", "next_attempt_at"])
        endpoint.sending_until = now + LEASE
        endpoint.save(update_fields=["sending_until"])
        delivery.endpoint = endpoint
        return delivery


def _failure_text(error: outbound.OutboundError) -> str:
    if settings.DEBUG and error.detail:
        return f"{error.reason} ({error.detail})"[:300]
    return error.reason


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
        response = outbound.guarded_post(
            endpoint.url,
            content=body,
            headers=headers,
            deadline=ATTEMPT_DEADLINE,
            max_body=MAX_RESPONSE_BYTES,
            allow_private=webhook_private_hosts_allowed(),
            transport=http_transport(),
        )
    except outbound.OutboundError as exc:
        return None, "", _failure_text(exc)
    return response.status, response.body.decode("utf-8", errors="replace"), ""


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
        stored = WebhookDelivery.objects.select_for_update().row_of(delivery).get()
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
        # Free the endpoint (only if the lease is still ours) and send its next due one.
        WebhookEndpoint.objects.filter(
            pk=delivery.endpoint_id, sending_until=delivery.endpoint.sending_until
        ).update(sending_until=None)
        webhook_deliveries_queue(_next_due_for_endpoint(delivery.endpoint_id, now))
    return stored


def _next_due_for_endpoint(endpoint_id: int, now: dt.datetime) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id,
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:1]
    )


def webhook_deliveries_due(*, now: dt.datetime, limit: int = 500) -> list[int]:
    """Ids of pending deliveries due at `now` (retries, expired leases, unqueued sends)."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
