"""Celery beat entries of the idempotency app (plain data; merged in settings)."""

from celery.schedules import crontab

BEAT_SCHEDULE: dict = {
    "idempotency-purge": {
        "task": "idempotency.tasks.idempotency_records_purge_task",
        "schedule": crontab(minute=17, hour=3),
    },
}
