"""Webhook endpoints and replays: the writes staff make (API, admin, shell alike).

Every service takes the reseller or an object already fetched through it. The signing
secret is returned only by `webhook_endpoint_create` and `webhook_endpoint_rotate_secret`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Reseller
from core.errors import ApplicationError
from webhooks.catalogue import EVENT_TYPES
from webhooks.events import webhook_deliveries_queue
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.signing import webhook_secret_generate
from webhooks.urls_check import webhook_url_problem

MAX_ENDPOINTS_PER_RESELLER = 20


def webhook_events_validate(events: Iterable[str]) -> list[str]:
    """The subscribed types, deduplicated in catalogue order; unknown ones are refused."""
    events = list(events)
    unknown = sorted({event for event in events if event not in EVENT_TYPES})
    if unknown:
        raise ValidationError({"enabled_events": [f"Unknown event type: {e}." for e in unknown]})
    if not events:
        raise ValidationError({"enabled_events": ["Subscribe to at least one event type."]})
    return [event for event in EVENT_TYPES if event in set(events)]


def webhook_url_validate(url: str) -> str:
    problem = webhook_url_problem(url, resolve=True)
    if problem:
        raise ValidationError({"url": [problem]})
    return url


def webhook_endpoint_create(
    *,
    reseller: Reseller,
    url: str,
    enabled_events: Iterable[str],
    description: str = "",
    is_active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it with its signing secret (shown this once)."""
    events = webhook_events_validate(enabled_events)
    webhook_url_validate(url)
    with transaction.atomic():
        count = WebhookEndpoint.objects.for_reseller(reseller).select_for_update().count()
        if count >= MAX_ENDPOINTS_PER_RESELLER:
            raise ApplicationError(
                "webhook_endpoint_limit",
                f"A reseller has at most {MAX_ENDPOINTS_PER_RESELLER} webhook endpoints.",
                extra={"limit": MAX_ENDPOINTS_PER_RESELLER},
            )
        secret = webhook_secret_generate()
        endpoint = WebhookEndpoint.objects.create(
            reseller=reseller,
            url=url,
            description=description,
            enabled_events=events,
            signing={"secret": secret},
            is_active=is_active,
        )
    return endpoint, secret


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change `url`, `description`, `enabled_events` or `is_active` (re-enabling clears
    `disabled_reason`)."""
    allowed = {"url", "description", "enabled_events", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"cannot change {sorted(unknown)}")
    if "enabled_events" in changes:
        changes["enabled_events"] = webhook_events_validate(changes["enabled_events"])
    if "url" in changes:
        webhook_url_validate(changes["url"])
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if changes.get("is_active"):
        endpoint.disabled_reason = ""
    # Only what changed: a sender's `sending_until` lease must not be overwritten.
    endpoint.save(update_fields=[*changes, "disabled_reason"])
    return endpoint


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, effective for every send from now on (the old one stops)."""
    secret = webhook_secret_generate()
    endpoint.signing = {"secret": secret}
    endpoint.save(update_fields=["signing"])
    return endpoint, secret


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries and their log (events stay)."""
    endpoint.delete()


def webhook_delivery_replay(*, delivery: WebhookDelivery, now: dt.datetime) -> WebhookDelivery:
    """Send a delivery again now (the same event id and body, a fresh signature): one more
    attempt, whatever its status. While pending, it keeps its remaining automatic retries.
    Refused (409) while an attempt is in flight or when the endpoint is disabled."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .row_of(delivery)
            .get()
        )
        if not delivery.endpoint.is_active:
            raise ApplicationError(
                "webhook_endpoint_disabled",
                "The endpoint is disabled; enable it before replaying its deliveries.",
            )
        # Claimed (attempt counted, not yet logged) and its lease still running.
        leased = (
            delivery.status == WebhookDelivery.Status.PENDING
            and delivery.next_attempt_at is not None
            and delivery.next_attempt_at > now
            and delivery.attempts > delivery.attempt_log.count()
        )
        if leased:
            raise ApplicationError(
                "webhook_delivery_in_progress",
                "An attempt of this delivery is being sent; try again in a minute.",
            )
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.next_attempt_at = now
        delivery.save(update_fields=["status", "next_attempt_at"])
        webhook_deliveries_queue([delivery.pk])
    return delivery
