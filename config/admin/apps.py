"""Installs `FlowbillAdminSite` as the default `admin.site` (INSTALLED_APPS lists this
config instead of "django.contrib.admin"), so every `admin.site.register` and
`@admin.register` in the apps lands on it and `config/urls.py` keeps `admin.site.urls`."""

from django.contrib.admin.apps import AdminConfig


class FlowbillAdminConfig(AdminConfig):
    default_site = "config.admin.site.FlowbillAdminSite"
