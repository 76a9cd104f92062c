"""Input and output serializers of the webhooks API, separate and uniquely named.

The signing secret appears only in `WebhookEndpointSecretOutputSerializer` (create and
rotate-secret responses); every other output says nothing about it.
"""

from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import StrictInputSerializer
from core.query import PublicIdField, id_parameter
from webhooks.catalogue import EVENT_TYPE_CHOICES, EVENT_TYPES
from webhooks.models import (
    ATTEMPT_LOG_FIELDS,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

_EVENTS_HELP = "Event types to send: " + ", ".join(f"`{t}`" for t in EVENT_TYPES) + "."


def _events_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
        min_length=1,
        max_length=len(EVENT_TYPES) * 2,
        help_text=_EVENTS_HELP,
        **kwargs,
    )


class WebhookEndpointCreateInputSerializer(StrictInputSerializer):
    url = serializers.URLField(
        max_length=500,
        help_text="Where events are POSTed: https (http only in development), no user name "
        "or password, a public host.",
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled_events = _events_field()
    is_active = serializers.BooleanField(required=False, default=True)


class WebhookEndpointUpdateInputSerializer(StrictInputSerializer):
    url = serializers.URLField(max_length=500, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled_events = _events_field(required=False)
    is_active = serializers.BooleanField(
        required=False, help_text="`true` re-enables an endpoint (clears `disabled_reason`)."
    )


class WebhookEndpointOutputSerializer(serializers.ModelSerializer):
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES), help_text=_EVENTS_HELP
    )
    disabled_reason = serializers.CharField(
        help_text="Why Flowbill disabled the endpoint (a 410 Gone answer); empty otherwise."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "enabled_events",
            "is_active",
            "disabled_reason",
            "created_at",
        ]


class WebhookEndpointSecretOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.SerializerMethodField(
        help_text="The signing secret (`whsec_...`). Shown only in this response (and, to the "
        "same caller, in an `Idempotency-Key` replay of it within 24 h): store it now to "
        "verify `Flowbill-Signature`."
    )

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = [*WebhookEndpointOutputSerializer.Meta.fields, "secret"]

    def get_secret(self, obj: WebhookEndpoint) -> str:
        return self.context["secret"]


class WebhookAttemptOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ATTEMPT_LOG_FIELDS


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="event.public_id", help_text="`evt_<id>`.")
    event_type = serializers.ChoiceField(source="event.type", choices=EVENT_TYPE_CHOICES)
    next_attempt_at = serializers.DateTimeField(
        allow_null=True, help_text="Pending: when the next attempt is due."
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "event_type",
            "endpoint",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_response_status",
            "last_response_body",
            "last_error",
            "delivered_at",
            "created_at",
        ]


class WebhookDeliveryDetailOutputSerializer(WebhookDeliveryOutputSerializer):
    attempt_log = WebhookAttemptOutputSerializer(many=True, help_text="Every attempt, in order.")

    class Meta(WebhookDeliveryOutputSerializer.Meta):
        fields = [*WebhookDeliveryOutputSerializer.Meta.fields, "attempt_log"]


class WebhookEventOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", help_text="`evt_<id>`, as sent.")
    type = serializers.ChoiceField(choices=EVENT_TYPE_CHOICES)
    data = serializers.JSONField(help_text="The payload's `data.object` (see the docs).")

    class Meta:
        model = WebhookEvent
        fields = ["id", "type", "data", "created_at"]


class WebhookEndpointQuerySerializer(serializers.Serializer):
    is_active = serializers.BooleanField(required=False, help_text="`true` or `false`.")


class WebhookDeliveryQuerySerializer(serializers.Serializer):
    event_type = serializers.ChoiceField(choices=EVENT_TYPE_CHOICES, required=False)
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)
    endpoint = id_parameter("An endpoint id of yours.")
    event = PublicIdField(
        "evt", required=False, help_text="One event's deliveries: its id, `evt_<id>`."
    )


class WebhookEventQuerySerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=EVENT_TYPE_CHOICES, required=False)
