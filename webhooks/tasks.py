"""Celery tasks of the webhooks app: load by id, call one service, end.

`webhook_delivery_send_task` makes one attempt (claimed under a row lock, so a duplicate
delivery of the task does nothing); retries are planned by the service in
`next_attempt_at` (exponential backoff with jitter) and sent by the beat sweep
`webhook_deliveries_send_due_task`, not by Celery countdowns (which a Redis broker
re-delivers after its visibility timeout, and which an in-process run would sleep through).

Both run on the `webhooks` queue (`CELERY_TASK_ROUTES`), consumed by its own worker, so
receivers that hang can never hold the workers of syncs, invoicing and email. A send cut at
its soft time limit (`WEBHOOK_SEND_TIME_LIMITS`, well past the attempt's deadline) leaves
its attempt unrecorded and the delivery and its endpoint leased until `LEASE` runs out; the
sweep then sends it again.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from core.task_options import (
    DATABASE_RETRY_TASK_OPTIONS,
    FANOUT_TIME_LIMITS,
    WEBHOOK_SEND_TIME_LIMITS,
)
from webhooks.delivery import webhook_deliveries_due, webhook_delivery_send


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **WEBHOOK_SEND_TIME_LIMITS)
def webhook_delivery_send_task(delivery_id: int) -> str | None:
    delivery = webhook_delivery_send(delivery_id=delivery_id, now=timezone.now())
    return None if delivery is None else delivery.status


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def webhook_deliveries_send_due_task() -> int:
    """Fan out: one send task per due delivery."""
    due = webhook_deliveries_due(now=timezone.now())
    for delivery_id in due:
        webhook_delivery_send_task.delay(delivery_id)
    return len(due)
