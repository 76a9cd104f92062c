"""Recording webhook events: `webhook_event_record`, called by the services where things
happen, with the event's type and the id of what it concerns (`webhook_events_record` for a
batch). The payload is built by the webhook layer from those ids (`webhooks.payloads`).

The event, its `data.object` (the object as it is at that moment) and one delivery per
subscribed active endpoint are written in the caller's transaction (so a rolled-back change
sends nothing, and a failure to record the event rolls the change back: never one without
the other); the sends are queued when it commits and run in a Celery worker, never in
the caller. A reseller without a subscribed endpoint costs one query per call (or batch),
and nothing is built. A broker that cannot be reached is logged, not raised: the deliveries
stay due and the beat entry (`webhooks-send-due`) sends them. Without a broker (tasks
in-process: development and tests), sends are not run in-process, which would block the
caller on a remote server: `manage.py webhooks_send_due` sends them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.enqueue import task_named
from webhooks.catalogue import EVENT_TYPES
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.payloads import webhook_payload_builder, webhook_payloads_build

logger = logging.getLogger(__name__)


def webhook_event_record(
    *,
    reseller_id: int,
    event_type: str,
    subject_id: int,
    now: dt.datetime | None = None,
    facts: Mapping[str, Any] | None = None,
) -> WebhookEvent | None:
    """Record `event_type` about object `subject_id` of the reseller (an invoice, a payment,
    a sync run...: the kind the type's builder reads) for every active endpoint subscribed
    to it, and queue the sends on commit. `facts`: what the service decided that no row
    holds, for the builder. Returns the event, or None (nothing written) when no endpoint
    wants this type."""
    events = webhook_events_record(
        reseller_id=reseller_id,
        event_type=event_type,
        subject_ids=[subject_id],
        now=now,
        facts=facts,
    )
    return events[0] if events else None


def webhook_events_record(
    *,
    reseller_id: int,
    event_type: str,
    subject_ids: Sequence[int],
    now: dt.datetime | None = None,
    facts: Mapping[str, Any] | None = None,
) -> list[WebhookEvent]:
    """`webhook_event_record` for each of `subject_ids` (one event each, in that order), with
    one endpoint query for the batch and one builder call."""
    webhook_payload_builder(event_type)  # an unregistered type fails every call, subscribed or not
    if not subject_ids:
        return []
    ids = list(subject_ids)

    def build(at: dt.datetime) -> list[dict[str, Any]]:
        return webhook_payloads_build(
            event_type=event_type, ids=ids, reseller_id=reseller_id, now=at, facts=facts
        )

    return _write(reseller_id=reseller_id, event_type=event_type, build=build, now=now)


def webhook_event_emit(
    *, reseller_id: int, event_type: str, data: dict, now: dt.datetime | None = None
) -> WebhookEvent | None:
    """The write under the record functions, with `data.object` given as is: for the
    webhook layer and its tests. Services call `webhook_event_record` (the payload is the
    webhook layer's, built from ids)."""
    events = _write(
        reseller_id=reseller_id, event_type=event_type, build=lambda at: [data], now=now
    )
    return events[0] if events else None


def _write(
    *,
    reseller_id: int,
    event_type: str,
    build: Callable[[dt.datetime], list[dict[str, Any]]],
    now: dt.datetime | None,
) -> list[WebhookEvent]:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    # No savepoint and nothing swallowed: the event belongs to the caller's change. A failure
    # to record it (a database error, a builder that cannot read its object) raises into the
    # caller, whose transaction rolls back with it: the change and its event commit together
    # or not at all (a task retries, an API request answers 5xx and its retry is idempotent),
    # so an event is never silently lost.
    events = _record(reseller_id=reseller_id, event_type=event_type, build=build, now=now)
    webhook_deliveries_queue([delivery.pk for event in events for delivery in event.new_deliveries])
    return events


def _record(
    *,
    reseller_id: int,
    event_type: str,
    build: Callable[[dt.datetime], list[dict[str, Any]]],
    now: dt.datetime | None,
) -> list[WebhookEvent]:
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(
            reseller_id=reseller_id, is_active=True
        ).order_by("pk")
        if event_type in endpoint.enabled_events
    ]
    if not endpoints:
        return []
    now = now or timezone.now()
    # bulk_create sets primary keys on PostgreSQL and SQLite (3.35+), both supported.
    events = WebhookEvent.objects.bulk_create(
        WebhookEvent(reseller_id=reseller_id, type=event_type, data=data, created_at=now)
        for data in build(now)
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now)
        for event in events
        for endpoint in endpoints
    )
    for event in events:
        event.new_deliveries = [d for d in deliveries if d.event is event]
    return events


def webhook_deliveries_queue(delivery_ids: list[int]) -> None:
    """Queue one send task per delivery when the current transaction commits."""
    if settings.CELERY_TASK_ALWAYS_EAGER or not delivery_ids:
        return  # no worker: `webhooks_send_due` (or the beat entry with a broker) sends them
    send = task_named("webhooks.tasks.webhook_delivery_send_task")

    def queue() -> None:
        for delivery_id in delivery_ids:
            send.delay(delivery_id)

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
