"""The Celery application. With no broker configured, tasks run in-process (eagerly).

The options every task is declared with (retry policies, time limits, the visibility
timeout they size) are `core.task_options`; queues, routes and the transport options are
settings (`CELERY_TASK_QUEUES`, `CELERY_TASK_ROUTES`, `CELERY_BROKER_TRANSPORT_OPTIONS` in
config/settings/base.py).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("flowbill")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
