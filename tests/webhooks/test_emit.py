"""`webhook_event_emit`: who gets a delivery, when sends are queued, what never breaks."""

import datetime as dt

import pytest
from django.db import transaction

from tests import factories
from webhooks import tasks
from webhooks.events import webhook_event_emit, webhook_event_payload
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.services import webhook_endpoint_update

NOW = dt.datetime(2026, 10, 5, 8, 30, tzinfo=dt.UTC)


@pytest.fixture
def queued(monkeypatch, settings):
    """A broker is configured: record the send tasks queued instead of running them."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent = []
    monkeypatch.setattr(tasks.webhook_delivery_send_task, "delay", sent.append)
    return sent


@pytest.mark.django_db
def test_no_subscribed_endpoint_writes_nothing(reseller, make_endpoint):
    make_endpoint(events=["invoice.paid"])
    assert webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={}) is None
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_one_delivery_per_subscribed_active_endpoint(reseller, make_endpoint):
    a, _ = make_endpoint(events=["sync.failed", "usage.alert"])
    b, _ = make_endpoint(events=["sync.failed"], url="https://b.example.com/h")
    make_endpoint(events=["usage.alert"], url="https://c.example.com/h")
    off, _ = make_endpoint(events=["sync.failed"], url="https://d.example.com/h")
    webhook_endpoint_update(endpoint=off, is_active=False)
    other_reseller = factories.ResellerFactory()
    make_endpoint(events=["sync.failed"], reseller=other_reseller)

    event = webhook_event_emit(
        reseller_id=reseller.pk, event_type="sync.failed", data={"id": 7}, now=NOW
    )

    deliveries = WebhookDelivery.objects.filter(event=event)
    assert sorted(d.endpoint_id for d in deliveries) == sorted([a.pk, b.pk])
    assert all(d.status == "pending" and d.next_attempt_at == NOW for d in deliveries)
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_payload_shape(reseller, make_endpoint):
    make_endpoint(events=["usage.alert"])
    event = webhook_event_emit(
        reseller_id=reseller.pk, event_type="usage.alert", data={"id": 3, "x": "y"}, now=NOW
    )
    assert webhook_event_payload(event) == {
        "id": f"evt_{event.pk}",
        "type": "usage.alert",
        "created": "2026-10-05T08:30:00Z",
        "data": {"object": {"id": 3, "x": "y"}},
    }


@pytest.mark.django_db
def test_unknown_event_type_is_a_programming_error(reseller):
    with pytest.raises(ValueError, match="unknown webhook event type"):
        webhook_event_emit(reseller_id=reseller.pk, event_type="invoice.eaten", data={})


@pytest.mark.django_db
def test_sends_are_queued_only_when_the_caller_commits(
    reseller, make_endpoint, queued, django_capture_on_commit_callbacks
):
    make_endpoint()
    with django_capture_on_commit_callbacks(execute=True):
        event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})
        assert queued == []  # not before the commit
    assert queued == [WebhookDelivery.objects.get(event=event).pk]


@pytest.mark.django_db
def test_a_rolled_back_caller_sends_nothing(reseller, make_endpoint, queued):
    make_endpoint()

    def caller_that_fails():
        with transaction.atomic():
            webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})
            raise RuntimeError("the caller's change failed")

    with pytest.raises(RuntimeError):
        caller_that_fails()
    assert not WebhookEvent.objects.exists()
    assert queued == []


@pytest.mark.django_db
def test_a_broker_that_is_down_is_not_raised_into_the_caller(
    reseller, make_endpoint, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = False

    def down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.webhook_delivery_send_task, "delay", down)
    make_endpoint()
    with django_capture_on_commit_callbacks(execute=True):
        event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})
    # Recorded and due: the beat sweep sends it.
    assert WebhookDelivery.objects.get(event=event).status == "pending"


@pytest.mark.django_db
def test_without_a_broker_nothing_is_sent_in_process(
    reseller, make_endpoint, receiver, django_capture_on_commit_callbacks
):
    make_endpoint()
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})
    assert receiver.requests == []  # the caller never waits on a remote server


@pytest.mark.django_db
def test_decimal_and_datetime_data_are_stored_as_json(reseller, make_endpoint):
    from decimal import Decimal

    make_endpoint(events=["usage.alert"])
    event = webhook_event_emit(
        reseller_id=reseller.pk,
        event_type="usage.alert",
        data={"amount": Decimal("12.50"), "at": NOW},
    )
    event.refresh_from_db()
    assert event.data == {"amount": "12.50", "at": "2026-10-05T08:30:00Z"}
