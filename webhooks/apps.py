from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        # Register the delivery tasks in every process (emitters queue them by reference).
        from webhooks import tasks  # noqa: F401
