"""The Celery application. With no broker configured, tasks run in-process (eagerly)."""

import os
from smtplib import SMTPException

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("flowbill")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Tasks that send an email: retried on SMTP and network errors with backoff and jitter, for
# up to about three hours. The send itself is claimed under a row lock by the service, so
# a retry (or a duplicate delivery) never sends twice.
EMAIL_SEND_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (SMTPException, OSError),
    "retry_backoff": 30,
    "retry_backoff_max": 1800,
    "retry_jitter": True,
    "max_retries": 8,
}
