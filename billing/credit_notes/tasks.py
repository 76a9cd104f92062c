"""Credit note tasks (imported by BillingConfig.ready and found by Celery autodiscovery
through `billing.tasks`' app): ids in, one service call, done."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from billing.credit_notes.delivery import credit_note_email_send
from billing.credit_notes.models import CreditNoteEmail
from core.task_options import EMAIL_SEND_TASK_OPTIONS


@shared_task(**EMAIL_SEND_TASK_OPTIONS)
def credit_note_email_send_task(delivery_id: int) -> str:
    """Send one delivery; the claim inside the service makes retries and duplicates safe."""
    delivery = CreditNoteEmail.objects.get(pk=delivery_id)
    return credit_note_email_send(delivery=delivery, now=timezone.now()).status
