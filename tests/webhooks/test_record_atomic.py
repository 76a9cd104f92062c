"""An event belongs to the change that records it: a failure to record it (a database error
in its payload builder) rolls the change back instead of losing the event silently."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from accounts.models import Customer
from tests import factories
from webhooks import payloads
from webhooks.events import webhook_event_record
from webhooks.models import WebhookEvent


@pytest.mark.django_db(transaction=True)
def test_a_builder_database_error_rolls_the_change_back(reseller, make_endpoint, monkeypatch):
    make_endpoint(events=("sync.failed",))
    customer = factories.CustomerFactory(reseller=reseller, name="Before")

    def broken(ids, *, reseller_id, now, facts):
        raise DatabaseError("canceling statement due to statement timeout")

    monkeypatch.setitem(payloads._BUILDERS, "sync.failed", broken)

    def change_and_record():
        with transaction.atomic():
            Customer.unscoped.filter(pk=customer.pk).update(name="After")
            webhook_event_record(reseller_id=reseller.pk, event_type="sync.failed", subject_id=1)

    with pytest.raises(DatabaseError):
        change_and_record()

    assert Customer.unscoped.get(pk=customer.pk).name == "Before"  # the change rolled back
    assert WebhookEvent.objects.filter(reseller_id=reseller.pk).count() == 0


@pytest.mark.django_db
def test_without_a_subscribed_endpoint_nothing_is_built(reseller, monkeypatch):
    def broken(ids, *, reseller_id, now, facts):
        raise AssertionError("built for nobody")

    monkeypatch.setitem(payloads._BUILDERS, "sync.failed", broken)
    events = webhook_event_record(reseller_id=reseller.pk, event_type="sync.failed", subject_id=1)
    assert not events
