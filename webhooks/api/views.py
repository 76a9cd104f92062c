"""Webhooks endpoints (reseller scope): endpoints CRUD, the delivery log with replay, events.

Each view parses with an input serializer, calls one service or scoped queryset, and
renders with an output serializer; every lookup goes through the tenancy base, so another
reseller's endpoint, delivery or event answers 404 exactly like a missing one.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response

from accounts.api.base import ResellerScopedView
from core.openapi import ApiErrorSerializer
from core.query import StrictQueryMixin, query_error_responses
from webhooks import services
from webhooks.api.serializers import (
    WebhookDeliveryDetailOutputSerializer,
    WebhookDeliveryOutputSerializer,
    WebhookDeliveryQuerySerializer,
    WebhookEndpointCreateInputSerializer,
    WebhookEndpointOutputSerializer,
    WebhookEndpointQuerySerializer,
    WebhookEndpointSecretOutputSerializer,
    WebhookEndpointUpdateInputSerializer,
    WebhookEventOutputSerializer,
    WebhookEventQuerySerializer,
)
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

_CONFLICT = OpenApiResponse(
    ApiErrorSerializer,
    description="The delivery or endpoint does not allow this now (the operation names the "
    "code), or the Idempotency-Key was reused with another body (`idempotency_key_reused`) "
    "or its first request is still running (`idempotency_request_in_progress`).",
)

# --- endpoints ------------------------------------------------------------------------------


@extend_schema(tags=["reseller: webhooks"])
class WebhookEndpointListCreateView(StrictQueryMixin, mixins.ListModelMixin, ResellerScopedView):
    model = WebhookEndpoint
    serializer_class = WebhookEndpointOutputSerializer
    query_serializer = WebhookEndpointQuerySerializer
    equal_filters = {"is_active": "is_active"}

    @extend_schema(
        operation_id="reseller_webhook_endpoints_list",
        parameters=[WebhookEndpointQuerySerializer],
        responses=query_error_responses(**{"200": WebhookEndpointOutputSerializer(many=True)}),
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())

    @extend_schema(
        operation_id="reseller_webhook_endpoints_create",
        request=WebhookEndpointCreateInputSerializer,
        responses={201: WebhookEndpointSecretOutputSerializer, 409: _CONFLICT},
    )
    def post(self, request):
        data = self.parse(WebhookEndpointCreateInputSerializer)
        endpoint, secret = services.webhook_endpoint_create(reseller=self.reseller, **data)
        body = WebhookEndpointSecretOutputSerializer(endpoint, context={"secret": secret}).data
        return Response(body, status=201)


@extend_schema(tags=["reseller: webhooks"])
class WebhookEndpointDetailView(ResellerScopedView):
    model = WebhookEndpoint
    serializer_class = WebhookEndpointOutputSerializer

    @extend_schema(operation_id="reseller_webhook_endpoints_retrieve")
    def get(self, request, pk: int):
        return Response(WebhookEndpointOutputSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="reseller_webhook_endpoints_update",
        request=WebhookEndpointUpdateInputSerializer,
        responses={200: WebhookEndpointOutputSerializer},
    )
    def patch(self, request, pk: int):
        endpoint = self.get_object()
        data = self.parse(WebhookEndpointUpdateInputSerializer, partial=True)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, **data)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)

    @extend_schema(
        operation_id="reseller_webhook_endpoints_delete",
        responses={204: None},
    )
    def delete(self, request, pk: int):
        services.webhook_endpoint_delete(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["reseller: webhooks"])
class WebhookEndpointRotateSecretView(ResellerScopedView):
    model = WebhookEndpoint
    serializer_class = WebhookEndpointSecretOutputSerializer

    @extend_schema(
        operation_id="reseller_webhook_endpoints_rotate_secret",
        request=None,
        responses={200: WebhookEndpointSecretOutputSerializer},
    )
    def post(self, request, pk: int):
        endpoint, secret = services.webhook_endpoint_rotate_secret(endpoint=self.get_object())
        return Response(
            WebhookEndpointSecretOutputSerializer(endpoint, context={"secret": secret}).data
        )


# --- deliveries -----------------------------------------------------------------------------


class _DeliveriesBase(ResellerScopedView):
    model = WebhookDelivery

    def scope_queryset(self, queryset):
        return queryset.select_related("event")


@extend_schema(tags=["reseller: webhooks"])
class WebhookDeliveryListView(StrictQueryMixin, mixins.ListModelMixin, _DeliveriesBase):
    serializer_class = WebhookDeliveryOutputSerializer
    query_serializer = WebhookDeliveryQuerySerializer
    owned_filters = {"endpoint": WebhookEndpoint}
    equal_filters = {"status": "status", "event_type": "event__type"}

    def get_queryset(self):
        return super().get_queryset().order_by("-created_at", "-pk")

    @extend_schema(
        operation_id="reseller_webhook_deliveries_list",
        parameters=[WebhookDeliveryQuerySerializer],
        responses=query_error_responses(**{"200": WebhookDeliveryOutputSerializer(many=True)}),
    )
    def get(self, request):
        query = self.parse_query()
        queryset = self.get_queryset()
        if "event" in query:
            queryset = queryset.filter(event_id=query["event"])  # the id, range-checked
        return self.filtered_list(query, queryset)


@extend_schema(tags=["reseller: webhooks"])
class WebhookDeliveryDetailView(_DeliveriesBase):
    serializer_class = WebhookDeliveryDetailOutputSerializer

    def scope_queryset(self, queryset):
        return super().scope_queryset(queryset).prefetch_related("attempt_log")

    @extend_schema(operation_id="reseller_webhook_deliveries_retrieve")
    def get(self, request, pk: int):
        return Response(WebhookDeliveryDetailOutputSerializer(self.get_object()).data)


@extend_schema(tags=["reseller: webhooks"])
class WebhookDeliveryReplayView(_DeliveriesBase):
    serializer_class = WebhookDeliveryOutputSerializer

    @extend_schema(
        operation_id="reseller_webhook_deliveries_replay",
        request=None,
        responses={202: WebhookDeliveryOutputSerializer, 409: _CONFLICT},
    )
    def post(self, request, pk: int):
        delivery = services.webhook_delivery_replay(delivery=self.get_object(), now=timezone.now())
        return Response(WebhookDeliveryOutputSerializer(delivery).data, status=202)


# --- events ---------------------------------------------------------------------------------


@extend_schema(tags=["reseller: webhooks"])
class WebhookEventListView(StrictQueryMixin, mixins.ListModelMixin, ResellerScopedView):
    model = WebhookEvent
    serializer_class = WebhookEventOutputSerializer
    query_serializer = WebhookEventQuerySerializer
    equal_filters = {"type": "type"}

    def get_queryset(self):
        return super().get_queryset().order_by("-created_at", "-pk")

    @extend_schema(
        operation_id="reseller_webhook_events_list",
        parameters=[WebhookEventQuerySerializer],
        responses={
            200: WebhookEventOutputSerializer(many=True),
            400: query_error_responses()[400],
        },
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())
