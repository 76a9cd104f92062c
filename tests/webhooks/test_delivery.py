"""Sending a delivery: signature, outcomes, backoff, 410, claims, the delivery log."""

import datetime as dt
import json

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from webhooks.delivery import MAX_ATTEMPTS, RETRY_DELAYS, retry_delay, webhook_delivery_send
from webhooks.events import webhook_event_emit
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_create
from webhooks.signing import webhook_signature_verify
from webhooks.tasks import webhook_deliveries_send_due_task, webhook_delivery_send_task

NOW = dt.datetime(2026, 10, 5, 8, 30, tzinfo=dt.UTC)
MIDDLE = lambda: 0.5  # noqa: E731 (jitter exactly 0)


def emit(reseller, data=None):
    event = webhook_event_emit(
        reseller_id=reseller.pk, event_type="sync.failed", data=data or {"id": 41}, now=NOW
    )
    return WebhookDelivery.objects.filter(event=event).order_by("pk").first()


@pytest.mark.django_db
def test_a_2xx_succeeds_and_the_request_is_signed_with_the_endpoint_secret(
    reseller, make_endpoint, receiver
):
    _, secret = make_endpoint()
    delivery = emit(reseller, {"id": 41, "error_code": "upstream_unavailable"})

    result = webhook_delivery_send(delivery_id=delivery.pk, now=NOW)

    assert result.status == "succeeded" and result.delivered_at == NOW
    assert result.attempts == 1 and result.last_response_status == 200
    (request,) = receiver.requests
    assert str(request.url) == "https://hooks.example.com/flowbill"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["flowbill-event-id"] == f"evt_{delivery.event_id}"
    assert request.headers["flowbill-event-type"] == "sync.failed"
    signature = request.headers["flowbill-signature"]
    assert signature.startswith(f"t={int(NOW.timestamp())},v1=")
    assert webhook_signature_verify(
        secret=secret, body=request.content, header=signature, now=NOW.timestamp()
    )
    assert json.loads(request.content) == {
        "id": f"evt_{delivery.event_id}",
        "type": "sync.failed",
        "created": "2026-10-05T08:30:00Z",
        "data": {"object": {"id": 41, "error_code": "upstream_unavailable"}},
    }
    (attempt,) = WebhookAttempt.objects.filter(delivery=delivery)
    assert (attempt.number, attempt.succeeded, attempt.response_status) == (1, True, 200)
    assert attempt.response_body == "answer 200"
    assert secret not in json.dumps(list(WebhookAttempt.objects.values()), default=str)


@pytest.mark.django_db
def test_a_failure_retries_with_backoff_then_fails_after_the_last_attempt(
    reseller, make_endpoint, receiver
):
    receiver.statuses = [500]
    make_endpoint()
    delivery = emit(reseller)
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS):
        result = webhook_delivery_send(delivery_id=delivery.pk, now=now, rand=MIDDLE)
        assert result.status == "pending" and result.attempts == attempt
        assert result.next_attempt_at == now + dt.timedelta(seconds=RETRY_DELAYS[attempt - 1])
        # Not due before its time: nothing is sent.
        early = result.next_attempt_at - dt.timedelta(seconds=1)
        assert webhook_delivery_send(delivery_id=delivery.pk, now=early) is None
        now = result.next_attempt_at

    result = webhook_delivery_send(delivery_id=delivery.pk, now=now, rand=MIDDLE)

    assert result.status == "failed" and result.attempts == MAX_ATTEMPTS == 8
    assert result.next_attempt_at is None
    assert len(receiver.requests) == 8
    assert list(
        WebhookAttempt.objects.filter(delivery=delivery).values_list("number", flat=True)
    ) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert 20 * 3600 < sum(RETRY_DELAYS) < 30 * 3600  # about a day in all


def test_retry_delay_jitter_stays_within_ten_percent():
    assert retry_delay(1, rand=lambda: 0.0) == dt.timedelta(seconds=54)
    assert retry_delay(1, rand=lambda: 1.0) == dt.timedelta(seconds=66)
    assert retry_delay(7, rand=MIDDLE) == dt.timedelta(hours=12)
    assert retry_delay(99, rand=MIDDLE) == dt.timedelta(hours=12)


@pytest.mark.django_db
def test_410_gone_disables_the_endpoint_and_fails_the_delivery(reseller, make_endpoint, receiver):
    receiver.statuses = [410]
    endpoint, _ = make_endpoint()
    delivery = emit(reseller)

    result = webhook_delivery_send(delivery_id=delivery.pk, now=NOW)

    assert result.status == "failed" and result.next_attempt_at is None
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert endpoint.disabled_reason.startswith("410 Gone")
    # A later event is not recorded for the disabled endpoint.
    assert webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={}) is None


@pytest.mark.django_db
def test_a_redirect_is_not_followed_and_counts_as_a_failure(reseller, make_endpoint, receiver):
    receiver.statuses = [302]
    make_endpoint()
    delivery = emit(reseller)
    result = webhook_delivery_send(delivery_id=delivery.pk, now=NOW)
    assert result.status == "pending" and result.last_response_status == 302
    assert len(receiver.requests) == 1


@pytest.mark.django_db
@pytest.mark.slow
def test_a_network_error_is_recorded_and_retried(reseller, make_endpoint, receiver):
    receiver.error = httpx.ConnectError("connection refused")
    make_endpoint()
    delivery = emit(reseller)
    result = webhook_delivery_send(delivery_id=delivery.pk, now=NOW)
    assert result.status == "pending"
    assert result.last_response_status is None
    # Outside DEBUG (tests run so) the log names the kind of failure, never errno text.
    assert result.last_error == "connection failed"


@pytest.mark.django_db
def test_in_debug_a_network_error_also_shows_the_library_text(
    reseller, make_endpoint, receiver, settings
):
    receiver.error = httpx.ConnectError("[Errno 111] Connection refused")
    make_endpoint()
    delivery = emit(reseller)
    settings.DEBUG = True
    result = webhook_delivery_send(delivery_id=delivery.pk, now=NOW)
    assert result.last_error == "connection failed (ConnectError: [Errno 111] Connection refused)"


@pytest.mark.django_db
def test_a_long_response_body_is_cut_to_an_excerpt(reseller, make_endpoint, monkeypatch):
    from webhooks import delivery as module

    transport = httpx.MockTransport(lambda request: httpx.Response(500, text="x" * 5000))
    monkeypatch.setattr(module, "http_transport", lambda: transport)
    make_endpoint()
    result = webhook_delivery_send(delivery_id=emit(reseller).pk, now=NOW)
    assert result.last_response_body == "x" * 1024


@pytest.mark.django_db
@pytest.mark.slow
def test_a_delivery_already_claimed_or_done_is_not_sent_again(reseller, make_endpoint, receiver):
    make_endpoint()
    delivery = emit(reseller)
    assert webhook_delivery_send(delivery_id=delivery.pk, now=NOW).status == "succeeded"
    # A duplicate task, or the sweep, after success: nothing.
    assert webhook_delivery_send(delivery_id=delivery.pk, now=NOW) is None
    assert webhook_delivery_send_task.delay(delivery.pk).get() is None
    assert len(receiver.requests) == 1
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1


@pytest.mark.django_db
def test_an_http_url_is_refused_at_send_time_once_private_hosts_are_not_allowed(
    reseller, make_endpoint, receiver, settings
):
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    make_endpoint(url="http://hooks.example.com/flowbill")  # allowed while opted in
    delivery = emit(reseller)
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    result = webhook_delivery_send(delivery_id=delivery.pk, now=NOW)
    assert result.status == "failed"
    assert result.last_error == "URL refused: Use an https:// URL."
    assert receiver.requests == []


@pytest.mark.django_db
def test_the_sweep_queues_due_deliveries_and_the_command_sends_them(
    reseller, make_endpoint, receiver
):
    make_endpoint()
    make_endpoint(url="https://second.example.com/h")
    emit(reseller)
    # Eager (no broker): the sweep's tasks run in-process.
    assert webhook_deliveries_send_due_task.delay().get() == 2
    assert len(receiver.requests) == 2
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}

    emit(reseller, {"id": 2})
    call_command("webhooks_send_due", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert len(receiver.requests) == 4


@pytest.mark.django_db
def test_a_disabled_endpoint_fails_its_pending_deliveries(reseller, make_endpoint, receiver):
    endpoint, _ = make_endpoint()
    delivery = emit(reseller)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    result = webhook_delivery_send(delivery_id=delivery.pk, now=NOW)
    assert result.status == "failed" and result.last_error == "endpoint disabled"
    assert receiver.requests == []


@pytest.mark.django_db
def test_debug_alone_does_not_lift_the_address_guard(reseller, settings):
    """A deployment that forgot DJANGO_DEBUG=0 keeps refusing internal receivers."""
    settings.DEBUG = True
    with pytest.raises(ValidationError):
        webhook_endpoint_create(
            reseller=reseller, url="http://127.0.0.1:8000/x", enabled_events=["sync.failed"]
        )
