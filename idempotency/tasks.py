"""Celery tasks of the idempotency app."""

from celery import shared_task
from django.utils import timezone

from core.task_options import DATABASE_RETRY_TASK_OPTIONS, PURGE_TIME_LIMITS
from idempotency.services import idempotency_records_purge


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **PURGE_TIME_LIMITS)
def idempotency_records_purge_task() -> int:
    """Delete stored responses older than 24 hours (they are ignored already)."""
    return idempotency_records_purge(now=timezone.now())
