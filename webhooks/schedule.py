"""Celery beat entries of the webhooks app (plain data; merged in settings).

- every minute: send the deliveries that are due (retries after backoff, sends whose
  queueing failed, leases of workers that died).
"""

from celery.schedules import crontab

BEAT_SCHEDULE: dict = {
    "webhooks-send-due": {
        "task": "webhooks.tasks.webhook_deliveries_send_due_task",
        "schedule": crontab(),
    },
}
