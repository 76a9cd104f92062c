from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # Register the billing tasks with Celery in every process, not only in workers (whose
        # autodiscovery imports them): usage's after-sync followups look
        # `billing.tasks.invoice_drafts_refresh_task` up by name wherever a sync runs.
        from billing import tasks  # noqa: F401
        from billing.credit_notes import tasks as _credit_note_tasks  # noqa: F401
        from billing.topups import tasks as _top_up_tasks  # noqa: F401
        from billing.webhook_payloads import BUILDERS
        from webhooks.payloads import webhook_payload_builders_register

        webhook_payload_builders_register(BUILDERS)
        from accounts.sub_accounts import sub_account_holders_changed
        from billing.invoicing.refresh import invoice_drafts_rerate_for_holders

        sub_account_holders_changed.connect(
            invoice_drafts_rerate_for_holders, dispatch_uid="billing-drafts-rerate-for-holders"
        )
        from billing import errors  # noqa: F401 (registers the app's error codes)
