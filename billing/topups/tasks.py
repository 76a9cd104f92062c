"""Top-up tasks (imported by BillingConfig.ready): ids in, one service call, done."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from accounts.models import Customer
from billing.topups.services import auto_top_up_check
from core.task_options import DATABASE_RETRY_TASK_OPTIONS, RECORD_TIME_LIMITS


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **RECORD_TIME_LIMITS)
def auto_top_up_check_task(customer_id: int, currency: str) -> int | None:
    """After the balance went down: the automatic top-up rule (at most one open top-up)."""
    customer = Customer.objects.select_related("reseller").get(pk=customer_id)
    top_up = auto_top_up_check(customer=customer, currency=currency, now=timezone.now())
    return None if top_up is None else top_up.pk
