"""Celery beat entries of the billing app (plain data; merged in settings)."""

from celery.schedules import crontab

BEAT_SCHEDULE: dict = {
    # Hourly, for every reseller: drafts for the month just closed in its timezone, refresh
    # of drafts in grace, finalization of due drafts, catch-up of PDFs and emails.
    "billing-invoice-cycle": {
        "task": "billing.tasks.invoice_cycle_task",
        "schedule": crontab(minute="17"),
        "options": {"expires": 3000},
    },
}
