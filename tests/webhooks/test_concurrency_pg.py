"""Two workers delivering one delivery make one attempt (PostgreSQL, threads)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from webhooks.delivery import webhook_delivery_send
from webhooks.events import webhook_event_emit
from webhooks.models import WebhookAttempt, WebhookDelivery

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_workers_sending_one_delivery_record_one_successful_attempt(
    reseller, make_endpoint, receiver
):
    make_endpoint()
    event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={"id": 1})
    delivery = WebhookDelivery.objects.get(event=event)
    barrier = threading.Barrier(2)
    now = timezone.now()

    def worker():
        try:
            barrier.wait()
            result = webhook_delivery_send(delivery_id=delivery.pk, now=now)
            return None if result is None else result.status
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted([f.result() for f in [pool.submit(worker), pool.submit(worker)]], key=str)

    assert outcomes == [None, "succeeded"]
    assert len(receiver.requests) == 1
    (attempt,) = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.succeeded and attempt.number == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


def test_two_workers_emitting_for_one_endpoint_never_share_a_delivery(reseller, make_endpoint):
    endpoint, _ = make_endpoint()
    barrier = threading.Barrier(4)

    def emit():
        try:
            barrier.wait()
            return webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={}).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        events = [f.result() for f in [pool.submit(emit) for _ in range(4)]]

    assert len(set(events)) == 4
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 4
