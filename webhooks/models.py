"""Webhook endpoints of a reseller, the events Flowbill emitted, and their deliveries.

One `WebhookDelivery` per (event, endpoint), backed by a unique constraint: an event is
delivered to an endpoint once, however often it is emitted, retried or replayed; each try
is a `WebhookAttempt` row (the delivery log). The signing secret is stored encrypted with
the project's MultiFernet keys (`accounts.crypto`), as the sender needs it in clear to sign.
"""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.crypto import EncryptedJSONField
from accounts.models import Reseller
from accounts.tenancy import TenantQuerySet


class WebhookEndpoint(models.Model):
    tenant_path = "reseller"

    reseller = models.ForeignKey(
        Reseller, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    enabled_events = models.JSONField(
        default=list, help_text="Event types sent to this endpoint (see the catalogue)."
    )
    #: {"secret": "whsec_..."}, encrypted at rest; shown once, when created or rotated.
    signing = EncryptedJSONField(editable=False)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    #: While a worker sends one of its deliveries: no other send to this endpoint until then
    #: (one attempt at a time per endpoint; see `webhooks.delivery`).
    sending_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return self.signing.get("secret", "")


class WebhookEvent(models.Model):
    """Something that happened, as sent: `{"id": "evt_<id>", "type", "created", "data"}`."""

    tenant_path = "reseller"

    reseller = models.ForeignKey(Reseller, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=40)
    data = models.JSONField(encoder=DjangoJSONEncoder, help_text="`data.object` of the payload.")
    created_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["reseller", "type", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"

    @property
    def public_id(self) -> str:
        return f"evt_{self.pk}"


class WebhookDelivery(models.Model):
    tenant_path = "endpoint__reseller"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    #: Pending: when the next try is due. While a worker sends, a short lease: no other
    #: worker takes the delivery before it (see `webhooks.delivery`).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response_body = models.CharField(max_length=1024, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="webhook_delivery_once_per_endpoint"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} ({self.status})"


#: What the delivery log shows of each attempt (API and admin).
ATTEMPT_LOG_FIELDS = (
    "number",
    "attempted_at",
    "succeeded",
    "response_status",
    "response_body",
    "error",
    "duration_ms",
)


class WebhookAttempt(models.Model):
    """One try of a delivery: what the receiver answered, or why it could not."""

    tenant_path = "delivery__endpoint__reseller"

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=1024, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="webhook_attempt_unique_number"
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
