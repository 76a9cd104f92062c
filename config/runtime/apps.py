from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    """Holds `manage.py serve` (the embedded runtime); no models."""

    name = "config.runtime"
    label = "runtime"
    verbose_name = "Embedded runtime"
