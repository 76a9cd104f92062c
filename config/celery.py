"""The Celery application. With no broker configured, tasks run in-process (eagerly)."""

import os
from smtplib import SMTPException

from celery import Celery
from django.db import InterfaceError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("flowbill")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A database that is briefly away (restart, failover, network): every task that touches it
# retries with backoff until it is back, instead of failing for good. Tasks are
# idempotent, so a retry after a partial attempt is safe.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": DATABASE_ERRORS,
    "retry_backoff": 10,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 12,
}

# Tasks that send an email: retried on SMTP and network errors with backoff and jitter, for
# up to about three hours. The send itself is claimed under a row lock by the service, so
# a retry (or a duplicate delivery) never sends twice.
EMAIL_SEND_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (SMTPException, OSError, *DATABASE_ERRORS),
    "retry_backoff": 30,
    "retry_backoff_max": 1800,
    "retry_jitter": True,
    "max_retries": 8,
}
