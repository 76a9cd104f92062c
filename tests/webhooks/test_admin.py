"""The webhooks admin: create an endpoint (secret shown once), rotate, replay, tenancy."""

import pytest
from django.urls import reverse

from tests import factories
from webhooks.events import webhook_event_emit
from webhooks.models import WebhookDelivery, WebhookEndpoint


@pytest.fixture
def staff_client(client, reseller):
    user = factories.StaffUserFactory(reseller=reseller)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_adding_an_endpoint_shows_its_secret_once(staff_client, reseller):
    response = staff_client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "reseller": reseller.pk,
            "url": "https://shop.example.com/hooks",
            "description": "shop",
            "enabled_events": ["invoice.paid", "usage.alert"],
            "is_active": "on",
        },
    )

    assert response.status_code == 200, response.content.decode()[:2000]
    assert "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get(reseller=reseller)
    assert endpoint.enabled_events == ["invoice.paid", "usage.alert"]
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode()
    page = staff_client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert page.status_code == 200 and endpoint.secret not in page.content.decode()


@pytest.mark.django_db
def test_an_http_or_private_url_is_refused_by_the_form(staff_client, reseller):
    response = staff_client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {"reseller": reseller.pk, "url": "https://10.0.0.5/x", "enabled_events": ["usage.alert"]},
    )
    assert response.status_code == 200
    assert "Use a public host." in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_rotate_secret_shows_the_new_one(staff_client, make_endpoint):
    endpoint, old = make_endpoint()
    url = reverse("admin:webhooks_webhookendpoint_action", args=[endpoint.pk, "rotate_secret"])
    response = staff_client.post(url)
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in response.content.decode()


@pytest.mark.django_db
def test_replay_action_requeues_deliveries(staff_client, reseller, make_endpoint):
    make_endpoint()
    event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})
    delivery = WebhookDelivery.objects.get(event=event)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)

    response = staff_client.post(
        reverse("admin:webhooks_webhookdelivery_changelist"),
        {"action": "replay_selected", "_selected_action": [delivery.pk]},
        follow=True,
    )

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    detail = staff_client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    assert detail.status_code == 200


@pytest.mark.django_db
def test_another_resellers_webhooks_are_404_in_the_admin(staff_client, make_endpoint):
    other = factories.ResellerFactory()
    endpoint, _ = make_endpoint(reseller=other)
    event = webhook_event_emit(reseller_id=other.pk, event_type="sync.failed", data={})
    delivery = WebhookDelivery.objects.get(event=event)

    for name, pk in [
        ("webhooks_webhookendpoint_change", endpoint.pk),
        ("webhooks_webhookdelivery_change", delivery.pk),
        ("webhooks_webhookevent_change", event.pk),
    ]:
        assert staff_client.get(reverse(f"admin:{name}", args=[pk])).status_code == 404
    replay = reverse("admin:webhooks_webhookdelivery_action", args=[delivery.pk, "replay"])
    assert staff_client.post(replay).status_code == 404
    listing = staff_client.get(reverse("admin:webhooks_webhookendpoint_changelist"))
    assert endpoint.url not in listing.content.decode()


@pytest.mark.django_db
def test_the_deliveries_event_type_filter_lists_only_the_staffs_own_event_types(
    staff_client, reseller, make_endpoint
):
    make_endpoint(events=("sync.failed",))
    other = factories.ResellerFactory()
    make_endpoint(reseller=other, events=("invoice.voided",))
    webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})
    webhook_event_emit(reseller_id=other.pk, event_type="invoice.voided", data={})

    page = staff_client.get(reverse("admin:webhooks_webhookdelivery_changelist"))

    assert page.status_code == 200
    html = page.content.decode()
    assert "event__type=sync.failed" in html  # the filter's one choice: its own deliveries'
    assert "invoice.voided" not in html
