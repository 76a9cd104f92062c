"""Emitting webhook events: `webhook_event_emit`, called by the code where things happen.

The event and one delivery per subscribed active endpoint are written in the caller's
transaction (so a rolled-back change sends nothing); the sends are queued when it commits
and run in a Celery worker, never in the caller. A broker that cannot be reached is logged,
not raised: the deliveries stay due and the beat entry (`webhooks-send-due`) sends them.
Without a broker (tasks in-process: development and tests), sends are not run in-process,
which would block the caller on a remote server: `manage.py webhooks_send_due` sends them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from webhooks.catalogue import EVENT_TYPES
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)


def webhook_event_emit(
    *, reseller_id: int, event_type: str, data: dict, now: dt.datetime | None = None
) -> WebhookEvent | None:
    """Record `event_type` with `data` (the payload's `data.object`) for every active
    endpoint of the reseller subscribed to it, and queue the sends on commit. Returns the
    event, or None (nothing written) when no endpoint wants this type."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    try:
        with transaction.atomic():  # a savepoint: a failure here leaves the caller's intact
            event = _record(reseller_id=reseller_id, event_type=event_type, data=data, now=now)
    except DatabaseError:
        logger.exception("webhook event %s of reseller %s not recorded", event_type, reseller_id)
        return None
    if event is not None:
        webhook_deliveries_queue([delivery.pk for delivery in event.new_deliveries])
    return event


def _record(
    *, reseller_id: int, event_type: str, data: dict, now: dt.datetime | None
) -> WebhookEvent | None:
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(
            reseller_id=reseller_id, is_active=True
        ).order_by("pk")
        if event_type in endpoint.enabled_events
    ]
    if not endpoints:
        return None
    now = now or timezone.now()
    event = WebhookEvent.objects.create(
        reseller_id=reseller_id, type=event_type, data=data, created_at=now
    )
    # bulk_create sets primary keys on PostgreSQL and SQLite (3.35+), both supported.
    event.new_deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now)
        for endpoint in endpoints
    )
    return event


def webhook_deliveries_queue(delivery_ids: list[int]) -> None:
    """Queue one send task per delivery when the current transaction commits."""
    if settings.CELERY_TASK_ALWAYS_EAGER or not delivery_ids:
        return  # no worker: `webhooks_send_due` (or the beat entry with a broker) sends them
    from webhooks.tasks import webhook_delivery_send_task

    def queue() -> None:
        for delivery_id in delivery_ids:
            webhook_delivery_send_task.delay(delivery_id)

    # robust: a broker hiccup is logged, never raised into the caller; beat retries them.
    transaction.on_commit(queue, robust=True)


def webhook_event_payload(event: WebhookEvent) -> dict[str, Any]:
    """The JSON object POSTed to endpoints (the same bytes on every attempt)."""
    return {
        "id": event.public_id,
        "type": event.type,
        "created": event.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": {"object": event.data},
    }
