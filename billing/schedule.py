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
    # Every 3 minutes: PDFs and emails a killed worker left undone (billing.recovery):
    # documents issued 2 minutes ago without a PDF, emails claimed by a dead worker (5
    # minutes: the send's own deadline and a margin), emails whose last task message is 5
    # minutes old unclaimed. `expires` also applies to the per-reseller messages it sends.
    "billing-documents-recover": {
        "task": "billing.tasks.documents_recover_all_task",
        "schedule": 180.0,
        "options": {"expires": 170},
    },
    # Every 5 minutes: top up the sub-accounts of customers on the credit-limit policy.
    "billing-traffic-policy": {
        "task": "billing.tasks.traffic_policy_apply_all_task",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
    # Every 15 minutes: suspend customers whose invoices are overdue past their reseller's
    # `suspend_after_overdue_days`, reinstate the ones that paid (billing.overdue_suspension).
    "billing-overdue-suspension": {
        "task": "billing.tasks.customers_suspend_overdue_task",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 840},
    },
    # Every 15 minutes: mark invoices overdue (invoice.overdue, once) and queue the payment
    # reminders whose day has come (billing.dunning).
    "billing-dunning": {
        "task": "billing.tasks.invoices_dunning_task",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 840},
    },
}
