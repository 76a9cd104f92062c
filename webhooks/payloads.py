"""Webhook payloads: one builder per event type, registered by the app that owns the objects.

A service records an event with its type and the ids of what it concerns
(`webhooks.events.webhook_event_record`); it never builds the payload. The builder registered
for the type turns those ids into `data.object`. The apps above the webhook layer register
theirs in `AppConfig.ready()` (`usage.webhook_payloads`, `billing.webhook_payloads`), so the
webhook layer calls them by type without importing those apps (core <- accounts <- webhooks
<- usage <- billing), and their domain services never import an API package: the builder
modules are the presentation side (billing's invoice builder is the reseller API's output
serializer), like Saleor's `webhook/payloads.py` and Lago's `webhooks/*_service.rb`.

When: at record time, in the transaction that made the change, from the ids. `data.object`
is the object as it was when the event happened (what Stripe sends, and what a consumer of
`invoice.finalized` then `invoice.paid` must see: the status at each event), stored on the
event row, so a retry or a replay sends the same bytes. A rolled-back change records nothing.
Nothing is built for a reseller without a subscribed endpoint.

A builder: `build(ids, *, reseller_id, now, facts) -> {id: data.object}`. It reads only the
reseller's rows (an id of another reseller is missing, which is an error), in one query per
batch where it can; `facts` carries what the service decided that no row holds (the size of
a refused top-up), else it is empty.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from webhooks.catalogue import EVENT_TYPES


class PayloadBuilder(Protocol):
    def __call__(
        self,
        ids: Sequence[int],
        *,
        reseller_id: int,
        now: dt.datetime,
        facts: Mapping[str, Any],
    ) -> Mapping[int, dict[str, Any]]: ...


_BUILDERS: dict[str, PayloadBuilder] = {}


def webhook_payload_builders_register(builders: Mapping[str, PayloadBuilder]) -> None:
    """Register the builder of each event type (idempotent; another builder for a type that
    has one, or a type not in the catalogue, is a programming error)."""
    for event_type, builder in builders.items():
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event type {event_type!r}")
        current = _BUILDERS.get(event_type)
        if current is not None and current is not builder:
            raise ValueError(f"webhook event type {event_type!r} already has a payload builder")
        _BUILDERS[event_type] = builder


def webhook_payload_builder(event_type: str) -> PayloadBuilder:
    """The registered builder of `event_type` (LookupError: no app registered one)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    try:
        return _BUILDERS[event_type]
    except KeyError:
        raise LookupError(f"no payload builder registered for {event_type!r}") from None


def webhook_payload_types() -> list[str]:
    """The event types that have a builder, in catalogue order."""
    return [event_type for event_type in EVENT_TYPES if event_type in _BUILDERS]


def webhook_payloads_build(
    *,
    event_type: str,
    ids: Sequence[int],
    reseller_id: int,
    now: dt.datetime,
    facts: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """`data.object` of each id's event, in the order of `ids`."""
    built = webhook_payload_builder(event_type)(
        ids, reseller_id=reseller_id, now=now, facts=facts or {}
    )
    missing = [pk for pk in ids if pk not in built]
    if missing:
        raise LookupError(
            f"{event_type} payload: no object {missing} of reseller {reseller_id} to build"
        )
    return [built[pk] for pk in ids]


def rows_builder(model, to_object, *, related: Sequence[str] = ()) -> PayloadBuilder:
    """A builder of one object per row: the reseller's rows of `model` (a tenant model) with
    those ids, one query per batch, each through `to_object`."""

    def build(
        ids: Sequence[int], *, reseller_id: int, now: dt.datetime, facts: Mapping[str, Any]
    ) -> dict[int, dict[str, Any]]:
        rows = model.objects.for_reseller(reseller_id).filter(pk__in=ids)
        if related:
            rows = rows.select_related(*related)
        return {row.pk: to_object(row) for row in rows}

    return build
