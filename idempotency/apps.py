from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    name = "idempotency"

    def ready(self) -> None:
        from idempotency import errors  # noqa: F401 (registers the app's error codes)
