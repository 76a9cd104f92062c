"""OpenAPI texts of webhooks' operations and fields: a summary, a description and examples for
every operation, a description for every field. Applied once, when the URLs are loaded
(`webhooks.api.urls`), through core.openapi."""

from __future__ import annotations

from core.openapi import COMMON_FIELDS, apply_texts
from core.openapi import example as _ex
from webhooks.api import serializers as ser
from webhooks.api import views

_ENDPOINT = {
    "id": 1,
    "url": "https://shop.example.com/flowbill/webhooks",
    "description": "Shop backend",
    "enabled_events": ["invoice.finalized", "invoice.paid", "sync.failed"],
    "is_active": True,
    "disabled_reason": "",
    "created_at": "2026-10-01T09:00:00Z",
}
_ENDPOINT_DISABLED = {
    "id": 2,
    "url": "https://old.example.com/hooks",
    "description": "",
    "enabled_events": ["usage.alert"],
    "is_active": False,
    "disabled_reason": "410 Gone at 2026-10-25T08:00:00+00:00",
    "created_at": "2026-10-02T10:30:00Z",
}
_ENDPOINT_WITH_SECRET = {
    **_ENDPOINT,
    "secret": "whsec_Zk3uT9qLmV0xR2bN8cY5wH1pJ7dF4sA6gE0oK9iU2tQ",
}
_DELIVERY = {
    "id": 12,
    "event": "evt_381",
    "event_type": "usage.alert",
    "endpoint": 1,
    "status": "succeeded",
    "attempts": 2,
    "next_attempt_at": None,
    "last_attempt_at": "2026-10-20T12:01:03Z",
    "last_response_status": 200,
    "last_response_body": "ok",
    "last_error": "",
    "delivered_at": "2026-10-20T12:01:03Z",
    "created_at": "2026-10-20T12:00:00Z",
}
_DELIVERY_PENDING = {
    "id": 13,
    "event": "evt_382",
    "event_type": "sync.failed",
    "endpoint": 1,
    "status": "pending",
    "attempts": 1,
    "next_attempt_at": "2026-11-01T04:11:05Z",
    "last_attempt_at": "2026-11-01T04:10:03Z",
    "last_response_status": None,
    "last_response_body": "",
    "last_error": "ConnectTimeout: timed out",
    "delivered_at": None,
    "created_at": "2026-11-01T04:10:03Z",
}
_DELIVERY_DETAIL = {
    **_DELIVERY,
    "attempt_log": [
        {
            "number": 1,
            "attempted_at": "2026-10-20T12:00:00Z",
            "succeeded": False,
            "response_status": 503,
            "response_body": "Service Unavailable",
            "error": "",
            "duration_ms": 118,
        },
        {
            "number": 2,
            "attempted_at": "2026-10-20T12:01:03Z",
            "succeeded": True,
            "response_status": 200,
            "response_body": "ok",
            "error": "",
            "duration_ms": 87,
        },
    ],
}
_EVENT_SYNC_FAILED = {
    "id": "evt_382",
    "type": "sync.failed",
    "data": {
        "object": "sync_run",
        "id": 58,
        "kind": "usage",
        "status": "failed",
        "upstream_account": 1,
        "sub_account": 2,
        "window_start": "2026-10-29T04:00:00+00:00",
        "window_end": "2026-11-01T05:00:00+00:00",
        "queued_at": "2026-11-01T04:10:02+00:00",
        "started_at": "2026-11-01T04:10:02+00:00",
        "finished_at": "2026-11-01T04:10:03+00:00",
        "error_code": "upstream_auth_failed",
        "error": "authentication failed: check the upstream account's API id and token",
    },
    "created_at": "2026-11-01T04:10:03Z",
}
_EVENT_USAGE_ALERT = {
    "id": "evt_381",
    "type": "usage.alert",
    "data": {
        "object": "usage_alert",
        "id": 17,
        "rule": 4,
        "kind": "quota_share",
        "customer": 1,
        "sub_account": None,
        "period_start": "2026-10-01",
        "fired_at": "2026-10-20T12:00:00+00:00",
        "measured_bytes": 429496729600,
        "threshold_bytes": 429496729600,
        "unit_bytes": 1073741824,
        "message": "400.00 GB used in October 2026: 80% of the 500 GB monthly quota "
        "(alert at 80%).",
    },
    "created_at": "2026-10-20T12:00:00Z",
}

_RETRIES = (
    "A failed attempt (any answer but a 2xx, a redirect, which is not followed, a timeout "
    "or a connection error) is retried after about 1 min, 5 min, 30 min, 2 h, 4 h, 8 h and "
    "12 h (each +/- 10 % jitter): 8 attempts over about 27 hours, then the delivery is "
    "`failed`. A 410 Gone disables the endpoint (`disabled_reason`) and fails the delivery "
    "at once."
)

# A list's example is one item: drf-spectacular puts it in the envelope as `results: [item]`.
_OPERATIONS = [
    (
        views.WebhookEndpointListCreateView,
        "get",
        "List webhook endpoints",
        "Your webhook endpoints, ordered by id; filter `is_active`. Signing secrets are "
        "never shown here. An unknown or repeated parameter or a bad value is a 400 "
        "`validation_error` naming it.",
        [_ex("Active", _ENDPOINT), _ex("Disabled after a 410", _ENDPOINT_DISABLED)],
    ),
    (
        views.WebhookEndpointListCreateView,
        "post",
        "Create a webhook endpoint",
        "Creates an endpoint that Flowbill POSTs the `enabled_events` to (201). The "
        "response's `secret` (`whsec_...`) is shown only here and by `rotate-secret` (and "
        "to a replay of the same `Idempotency-Key`): store it now. Refused with 400 "
        "`validation_error` naming the field: a `url` that is not https, carries a user "
        "name or password, names a special-use host (`localhost`, `*.internal`, `*.local`, "
        "a single label) or an address that is not public (loopback, private, link-local, "
        "CGNAT, NAT64, IPv4-mapped, reserved, multicast; literal or resolved); an unknown "
        "or empty `enabled_events`; an unknown key. A 21st "
        "endpoint is refused with 409 `webhook_endpoint_limit` (at most 20).\n\n"
        "**Deliveries.** Each event is POSTed as compact JSON "
        '`{"id": "evt_<id>", "type", "created", "data": {"object": ...}}` with the headers '
        "`Flowbill-Event-Id`, `Flowbill-Event-Type` and "
        "`Flowbill-Signature: t=<unix seconds>,v1=<hex>`. Answer any 2xx within 10 seconds "
        "to acknowledge, and do the work afterwards. " + _RETRIES + " Retries and replays "
        "send the same body and event id: deduplicate on `id`.\n\n"
        "**Verifying `Flowbill-Signature`.** Split the header on `,` into `t` and one or "
        "more `v1` values. Compute HMAC-SHA256 keyed with the secret (its UTF-8 bytes, "
        "`whsec_` prefix included) over `t`, a `.`, then the raw request body bytes as "
        "received (before any JSON parsing), hex-encoded. Accept the request when it "
        "equals one of the `v1` values, compared in constant time, and `t` is within your "
        "tolerance of your clock (5 minutes is suggested) to refuse replayed requests. "
        'In Python: `hmac.compare_digest(hmac.new(secret.encode(), f"{t}.".encode() + '
        "body, hashlib.sha256).hexdigest(), v1)`.",
        [
            _ex(
                "Create",
                {
                    "url": "https://shop.example.com/flowbill/webhooks",
                    "description": "Shop backend",
                    "enabled_events": ["invoice.finalized", "invoice.paid", "sync.failed"],
                },
                request=True,
            ),
            _ex("Created, with its secret", _ENDPOINT_WITH_SECRET, status="201"),
        ],
    ),
    (
        views.WebhookEndpointDetailView,
        "get",
        "Get a webhook endpoint",
        "One of your endpoints, without its secret. Another reseller's or a missing "
        "endpoint is a 404 `not_found`.",
        [_ex("Endpoint", _ENDPOINT)],
    ),
    (
        views.WebhookEndpointDetailView,
        "patch",
        "Change a webhook endpoint",
        "Changes `url`, `description`, `enabled_events` or `is_active`, with the same 400 "
        "`validation_error` checks as on create. `is_active: false` switches it off: no new "
        "events are recorded for it and its pending deliveries fail at their next attempt. "
        "`is_active: true` switches it back on (also after Flowbill disabled it on a 410) "
        "and clears `disabled_reason`. The secret does not change here (see "
        "`rotate-secret`). Another reseller's or a missing endpoint is a 404 `not_found`.",
        [
            _ex("Fewer events", {"enabled_events": ["invoice.paid"]}, request=True),
            _ex("Re-enable after a 410", {"is_active": True}, request=True),
            _ex("Changed", {**_ENDPOINT, "enabled_events": ["invoice.paid"]}),
        ],
    ),
    (
        views.WebhookEndpointDetailView,
        "delete",
        "Delete a webhook endpoint",
        "Deletes the endpoint with its deliveries and their attempt log (204); the events "
        "stay listed in `webhook-events/`. Another reseller's or a missing endpoint is a "
        "404 `not_found`.",
        [],
    ),
    (
        views.WebhookEndpointRotateSecretView,
        "post",
        "Rotate a signing secret",
        "Replaces the endpoint's signing secret and answers the endpoint with the new "
        "`secret`, shown only in this response (and to a replay of the same "
        "`Idempotency-Key`). The old secret stops at once: every send from now on, retries "
        "of earlier deliveries included, is signed with the new one, so have your receiver "
        "accept both while you switch. No request body. Another reseller's or a missing "
        "endpoint is a 404 `not_found`.",
        [_ex("New secret", _ENDPOINT_WITH_SECRET)],
    ),
    (
        views.WebhookDeliveryListView,
        "get",
        "List webhook deliveries",
        "The delivery log, newest first: one delivery per event and endpoint, with its "
        "status and the latest attempt's outcome. Filters `event_type`, `status` "
        "(`pending`, `succeeded`, `failed`), `endpoint` and `event` (`evt_<id>`). An "
        "unknown or repeated parameter or a bad value is a 400 `validation_error` naming "
        "it; an `endpoint` that is not yours a 404 `not_found`.",
        [_ex("Pending a retry", _DELIVERY_PENDING), _ex("Delivered", _DELIVERY)],
    ),
    (
        views.WebhookDeliveryDetailView,
        "get",
        "Get a webhook delivery",
        "One delivery with `attempt_log`, every attempt in order: when, the receiver's "
        "status and the start of its answer, or why there was none, and how long it took. "
        + _RETRIES
        + " `next_attempt_at` says when the next attempt is due. Another reseller's or a "
        "missing delivery is a 404 `not_found`.",
        [_ex("Delivered on the second attempt", _DELIVERY_DETAIL)],
    ),
    (
        views.WebhookDeliveryReplayView,
        "post",
        "Replay a webhook delivery",
        "Re-sends the delivery now, whatever its status (`succeeded` and `failed` "
        "included): the same event id and body with a fresh `Flowbill-Signature` (current "
        "time, current secret), as one more attempt. Answers 202 with the delivery "
        "`pending`; a worker makes the attempt, which then appears in `attempt_log`. If it "
        "fails it is retried on the usual schedule only while the delivery has fewer than 8 "
        "attempts; a delivery still pending keeps its remaining retries. No request body. "
        "Refused with 409 `webhook_delivery_in_progress` while an attempt is being sent, "
        "and 409 `webhook_endpoint_disabled` while its endpoint is switched off (re-enable "
        "it first). Another reseller's or a missing delivery is a 404 `not_found`.",
        [
            _ex(
                "Queued again",
                {**_DELIVERY, "status": "pending", "next_attempt_at": "2026-10-21T08:30:00Z"},
                status="202",
            )
        ],
    ),
    (
        views.WebhookEventListView,
        "get",
        "List webhook events",
        "Events recorded for your endpoints, newest first; filter `type`. An event is "
        "recorded only when an active endpoint subscribes to its type; `data` is what its "
        "deliveries send as `data.object` (an invoice, a credit note, a usage alert or a "
        "sync run). An unknown or repeated parameter or a bad value is a 400 "
        "`validation_error` naming it.",
        [_ex("sync.failed", _EVENT_SYNC_FAILED), _ex("usage.alert", _EVENT_USAGE_ALERT)],
    ),
]

_ENDPOINT_INPUT_FIELDS = {
    "url": "A new URL, checked as on create: https, no user name or password, a public host.",
    "description": "Your own label for the endpoint, up to 200 characters.",
    "is_active": "Default true; false creates it switched off (nothing is recorded or sent "
    "for it until it is switched on).",
}

_FIELDS = {
    **COMMON_FIELDS,
    "url": "Where events are POSTed.",
    "description": "Your own label for the endpoint.",
    "is_active": "False: switched off (by you, or by Flowbill after a 410 Gone); nothing is "
    "recorded or sent for it.",
    # deliveries
    "event_type": "The event's type.",
    "endpoint": "The endpoint's id.",
    "status": "`pending` (an attempt is due or being made), `succeeded` (a 2xx was "
    "received) or `failed` (8 attempts failed, a 410 Gone, or the endpoint was switched "
    "off or its URL refused).",
    "attempts": "Attempts made so far (up to 8 automatic ones; each replay adds one).",
    "last_attempt_at": "When the latest attempt was made (UTC); null before the first.",
    "last_response_status": "HTTP status of the latest answer; null when there was none "
    "(see `last_error`) or no attempt yet.",
    "last_response_body": "The first 1 KiB of the latest answer's body (no more is read).",
    "last_error": "Why the latest attempt got no answer: `endpoint address not allowed`, "
    "`connection failed`, `TLS error`, `timed out`, `endpoint disabled` or `URL refused: "
    "...`; empty otherwise.",
    "delivered_at": "When an attempt last succeeded (UTC); null if none has.",
    # attempts
    "number": "1 for the first attempt, then 2, 3, ... (replays included).",
    "attempted_at": "When it was sent (UTC).",
    "succeeded": "True when the receiver answered 2xx.",
    "response_status": "The answer's HTTP status; null when there was none (see `error`).",
    "response_body": "The first 1 KiB of the answer's body (no more is read).",
    "error": "Why there was no answer (`endpoint address not allowed`, `connection "
    "failed`, `TLS error`, `timed out`, `endpoint disabled`, `URL refused: ...`); empty "
    "when the receiver answered.",
    "duration_ms": "How long the attempt took, in milliseconds.",
    # events
    "type": "The event type (see `enabled_events`).",
}

apply_texts(
    _OPERATIONS,
    [
        # Fields whose meaning differs by serializer first (a field keeps the first text).
        (
            [ser.WebhookEndpointCreateInputSerializer, ser.WebhookEndpointUpdateInputSerializer],
            _ENDPOINT_INPUT_FIELDS,
        ),
        (
            [ser.WebhookDeliveryOutputSerializer, ser.WebhookDeliveryDetailOutputSerializer],
            {
                "id": "The delivery's id.",
                "created_at": "When the event was emitted and this delivery queued (UTC).",
            },
        ),
        (
            [ser.WebhookEventOutputSerializer],
            {"created_at": "When it happened (UTC); the payload's `created`."},
        ),
        (
            [ser.WebhookEndpointOutputSerializer, ser.WebhookEndpointSecretOutputSerializer],
            {"id": "The endpoint's id."},
        ),
        (
            [
                ser.WebhookEndpointCreateInputSerializer,
                ser.WebhookEndpointUpdateInputSerializer,
                ser.WebhookEndpointOutputSerializer,
                ser.WebhookEndpointSecretOutputSerializer,
                ser.WebhookAttemptOutputSerializer,
                ser.WebhookDeliveryOutputSerializer,
                ser.WebhookDeliveryDetailOutputSerializer,
                ser.WebhookEventOutputSerializer,
            ],
            _FIELDS,
        ),
    ],
)
