from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        # Register the delivery tasks in every process (emitters queue them by reference).
        from webhooks import (
            errors,  # noqa: F401 (registers the app's error codes)
            tasks,  # noqa: F401
        )
