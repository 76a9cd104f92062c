"""Webhooks routes of `/api/v1/reseller/` (config/urls.py includes this under `api/v1/`)."""

from django.urls import include, path

from webhooks.api import openapi, views  # noqa: F401 (openapi: texts)

reseller_patterns = [
    path(
        "webhook-endpoints/",
        views.WebhookEndpointListCreateView.as_view(),
        name="webhook-endpoint-list",
    ),
    path(
        "webhook-endpoints/<int:pk>/",
        views.WebhookEndpointDetailView.as_view(),
        name="webhook-endpoint-detail",
    ),
    path(
        "webhook-endpoints/<int:pk>/rotate-secret/",
        views.WebhookEndpointRotateSecretView.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-deliveries/",
        views.WebhookDeliveryListView.as_view(),
        name="webhook-delivery-list",
    ),
    path(
        "webhook-deliveries/<int:pk>/",
        views.WebhookDeliveryDetailView.as_view(),
        name="webhook-delivery-detail",
    ),
    path(
        "webhook-deliveries/<int:pk>/replay/",
        views.WebhookDeliveryReplayView.as_view(),
        name="webhook-delivery-replay",
    ),
    path("webhook-events/", views.WebhookEventListView.as_view(), name="webhook-event-list"),
]

urlpatterns = [path("reseller/", include((reseller_patterns, "webhooks-reseller")))]
