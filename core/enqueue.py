"""Enqueueing a task by its name, so that domain code never imports a tasks module (tasks
import services, never the reverse: the import-linter contract "services-without-tasks").

A task's name is its module and function (`billing.tasks.invoice_email_send_task`); every
app registers its tasks when Django starts (its `AppConfig.ready` imports its tasks module),
so the name resolves in web processes and workers alike.
"""

from __future__ import annotations

from celery import Task, current_app


def task_named(name: str) -> Task:
    """The registered Celery task `name` (KeyError when no app registered it)."""
    return current_app.tasks[name]


def enqueue_on_commit(name: str, *args) -> None:
    """Send task `name` with `args` once the current transaction commits (`delay_on_commit`)."""
    task_named(name).delay_on_commit(*args)
