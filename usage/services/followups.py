"""Work that follows a sync which changed a customer's usage, queued by task name.

Usage sits below billing (accounts <- usage <- billing), so it cannot import the tasks that
react to new usage (refreshing draft invoices in their grace period, usage alerts). The
settings list them by Celery task name instead (`FLOWBILL_AFTER_SYNC_TASKS`); each is
queued once the sync's transaction commits, with the customer's id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from celery import current_app as celery_app
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

# Inside `usage_followups_batched()`: the customers whose usage changed, queued on exit.
_batch: ContextVar[set[int] | None] = ContextVar("usage_followups_batch", default=None)


def after_sync_task_names() -> list[str]:
    return list(getattr(settings, "FLOWBILL_AFTER_SYNC_TASKS", []))


def after_traffic_refresh_task_names() -> list[str]:
    return list(getattr(settings, "FLOWBILL_AFTER_TRAFFIC_REFRESH_TASKS", []))


def traffic_followups_enqueue(*, upstream_account_id: int) -> None:
    """Queue every after-traffic-refresh task (`FLOWBILL_AFTER_TRAFFIC_REFRESH_TASKS`: the
    credit-limit top-ups) with `upstream_account_id` once the current transaction commits:
    fresh remaining traffic is what they act on."""
    for name in after_traffic_refresh_task_names():
        try:
            task = celery_app.tasks[name]
        except KeyError:
            raise ImproperlyConfigured(
                f"FLOWBILL_AFTER_TRAFFIC_REFRESH_TASKS names {name!r}, which is not a "
                "registered task"
            ) from None
        transaction.on_commit(
            lambda task=task: task.delay(upstream_account_id=upstream_account_id), robust=True
        )


def usage_followups_enqueue(*, customer_id: int) -> None:
    """Queue every after-sync task for `customer_id` when the current transaction commits.

    An unknown task name is a configuration error and fails loudly, not silently skipped.
    Inside `usage_followups_batched()` the customer is only noted, and queued once at its end.
    """
    batch = _batch.get()
    if batch is not None:
        batch.add(customer_id)
        return
    for name in after_sync_task_names():
        try:
            task = celery_app.tasks[name]
        except KeyError:
            raise ImproperlyConfigured(
                f"FLOWBILL_AFTER_SYNC_TASKS names {name!r}, which is not a registered task"
            ) from None
        # robust: the sync's rows are committed; a broker hiccup queueing a follow-up is
        # logged, not raised into the sync (the hourly cycle refreshes drafts anyway).
        transaction.on_commit(lambda task=task: task.delay(customer_id=customer_id), robust=True)


@contextmanager
def usage_followups_batched() -> Iterator[None]:
    """Queue the follow-ups of a batch of syncs once per customer, when the batch ends.

    A backfill or "sync everything" run touches many sub-accounts of each customer; one
    draft refresh and one alert check per customer at the end see all of its new usage,
    instead of one per sub-account while the batch is still running. Threads started with
    a copy of the context (`contextvars.copy_context().run`) note into the same batch.
    """
    customers: set[int] = set()
    token = _batch.set(customers)
    try:
        yield
    finally:
        _batch.reset(token)
        for customer_id in sorted(customers):
            usage_followups_enqueue(customer_id=customer_id)
