from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"

    def ready(self) -> None:
        # Register the usage tasks with Celery in every process, not only in workers (whose
        # autodiscovery imports them): the after-sync followups look
        # `usage.tasks.usage_alerts_check_task` up by name wherever a sync runs.
        from usage import tasks  # noqa: F401
        from usage.webhook_payloads import BUILDERS
        from webhooks.payloads import webhook_payload_builders_register

        webhook_payload_builders_register(BUILDERS)
        from usage import errors  # noqa: F401 (registers the app's error codes)
