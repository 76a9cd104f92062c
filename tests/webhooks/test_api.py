"""The webhooks API: endpoints CRUD (secret once), delivery log with filters, replay, events."""

import pytest
from django.db import connection

from tests import factories
from tests.api.conftest import key_client
from webhooks import tasks
from webhooks.events import webhook_event_emit
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

BASE = "/api/v1/reseller/webhook-endpoints/"
DELIVERIES = "/api/v1/reseller/webhook-deliveries/"
EVENTS = "/api/v1/reseller/webhook-events/"
NEW = {"url": "https://shop.example.com/hooks", "enabled_events": ["invoice.paid", "sync.failed"]}


@pytest.mark.django_db
def test_create_shows_the_secret_once_and_stores_it_encrypted(reseller_api, reseller):
    response = reseller_api.post(BASE, {**NEW, "description": "shop"}, format="json")

    assert response.status_code == 201
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["enabled_events"] == ["invoice.paid", "sync.failed"]
    assert body["is_active"] is True and body["description"] == "shop"
    endpoint = WebhookEndpoint.objects.get(pk=body["id"], reseller=reseller)
    assert endpoint.secret == secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT signing FROM webhooks_webhookendpoint WHERE id = %s", [endpoint.pk])
        stored = cursor.fetchone()[0]
    assert secret not in stored and stored.startswith("gAAAA")  # a Fernet token
    for url in (BASE, f"{BASE}{endpoint.pk}/"):
        assert secret not in reseller_api.get(url).content.decode()
        assert "secret" not in reseller_api.get(url).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://shop.example.com/hooks", "Use an https:// URL."),
        ("not a url", "Enter a valid URL."),
        ("http://shop.example.com/hooks", "Use an https:// URL."),
        (
            "https://user:pw@shop.example.com/hooks",
            "Do not put a user name or password in the URL.",
        ),
        ("https://127.0.0.1/hooks", "Use a public host."),
        ("https://10.1.2.3/hooks", "Use a public host."),
        ("https://localhost/hooks", "Use a public host."),
        ("https://[::1]/hooks", "Use a public host."),
    ],
)
def test_bad_urls_are_a_400_naming_url(reseller_api, url, message):
    response = reseller_api.post(BASE, {**NEW, "url": url}, format="json")
    assert response.status_code == 400
    [error] = response.json()["extra"]["fields"]["url"]
    assert error.startswith(message)
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_unknown_or_empty_event_lists_are_a_400(reseller_api):
    unknown = reseller_api.post(BASE, {**NEW, "enabled_events": ["invoice.eaten"]}, format="json")
    assert unknown.status_code == 400
    assert "enabled_events" in unknown.json()["extra"]["fields"]
    empty = reseller_api.post(BASE, {**NEW, "enabled_events": []}, format="json")
    assert empty.status_code == 400
    assert "enabled_events" in empty.json()["extra"]["fields"]
    extra = reseller_api.post(BASE, {**NEW, "secret": "whsec_mine"}, format="json")
    assert extra.json()["extra"]["fields"] == {"secret": ["Unknown field."]}


@pytest.mark.django_db
def test_update_rotate_and_delete(reseller_api, reseller):
    created = reseller_api.post(BASE, NEW, format="json").json()
    url = f"{BASE}{created['id']}/"

    changed = reseller_api.patch(url, {"enabled_events": ["usage.alert"], "is_active": False})
    assert changed.status_code == 200
    assert changed.json()["enabled_events"] == ["usage.alert"]
    assert changed.json()["is_active"] is False

    rotated = reseller_api.post(f"{url}rotate-secret/")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    assert WebhookEndpoint.objects.get(pk=created["id"]).secret == rotated.json()["secret"]

    assert reseller_api.delete(url).status_code == 204
    assert reseller_api.get(url).status_code == 404


@pytest.mark.django_db
def test_another_resellers_endpoints_and_deliveries_are_404(reseller_api, make_endpoint):
    other = factories.ResellerFactory()
    endpoint, _ = make_endpoint(reseller=other)
    event = webhook_event_emit(reseller_id=other.pk, event_type="sync.failed", data={})
    delivery = WebhookDelivery.objects.get(event=event)

    for method, url in [
        ("get", f"{BASE}{endpoint.pk}/"),
        ("patch", f"{BASE}{endpoint.pk}/"),
        ("delete", f"{BASE}{endpoint.pk}/"),
        ("post", f"{BASE}{endpoint.pk}/rotate-secret/"),
        ("get", f"{DELIVERIES}{delivery.pk}/"),
        ("post", f"{DELIVERIES}{delivery.pk}/replay/"),
        ("get", f"{DELIVERIES}?endpoint={endpoint.pk}"),
    ]:
        assert getattr(reseller_api, method)(url).status_code == 404, (method, url)
    assert reseller_api.get(DELIVERIES).json()["count"] == 0
    assert reseller_api.get(EVENTS).json()["count"] == 0
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).exists()


@pytest.mark.django_db
def test_customer_keys_cannot_use_the_webhooks_api(reseller, customer):
    from accounts.api_keys import api_key_create

    raw = api_key_create(reseller=reseller, customer=customer, name="c")[1]
    assert key_client(raw).get(BASE).status_code == 403


@pytest.mark.django_db
def test_delivery_list_filters_and_detail_with_attempt_log(
    reseller_api, reseller, make_endpoint, receiver
):
    a, _ = make_endpoint(events=["sync.failed", "usage.alert"])
    b, _ = make_endpoint(events=["usage.alert"], url="https://b.example.com/h")
    failed_event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})
    alert_event = webhook_event_emit(reseller_id=reseller.pk, event_type="usage.alert", data={})
    receiver.statuses = [200, 503]
    from django.utils import timezone

    from webhooks.delivery import webhook_delivery_send

    first = WebhookDelivery.objects.get(event=failed_event)
    webhook_delivery_send(delivery_id=first.pk, now=timezone.now())
    webhook_delivery_send(
        delivery_id=WebhookDelivery.objects.get(event=alert_event, endpoint=b).pk,
        now=timezone.now(),
    )

    def ids(query):
        response = reseller_api.get(DELIVERIES + query)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert len(ids("")) == 3
    assert ids("?event_type=sync.failed") == [first.pk]
    assert ids(f"?endpoint={b.pk}") == [WebhookDelivery.objects.get(endpoint=b).pk]
    assert ids("?status=succeeded") == [first.pk]
    assert len(ids("?status=pending")) == 2
    assert len(ids(f"?event=evt_{alert_event.pk}")) == 2
    assert ids(f"?status=pending&endpoint={a.pk}") == [
        WebhookDelivery.objects.get(event=alert_event, endpoint=a).pk
    ]

    detail = reseller_api.get(f"{DELIVERIES}{first.pk}/").json()
    assert detail["event"] == f"evt_{failed_event.pk}"
    assert detail["event_type"] == "sync.failed"
    assert detail["status"] == "succeeded"
    assert [row["response_status"] for row in detail["attempt_log"]] == [200]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=lost", "status"),
        ("?event_type=invoice.eaten", "event_type"),
        ("?endpoint=abc", "endpoint"),
        ("?event=12", "event"),
        ("?colour=red", "colour"),
        ("?status=failed&status=pending", "status"),
    ],
)
def test_bad_delivery_filters_are_a_400_naming_them(reseller_api, query, field):
    response = reseller_api.get(DELIVERIES + query)
    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"]


@pytest.mark.django_db
def test_replay_requeues_a_failed_delivery_for_one_more_attempt(
    reseller_api,
    reseller,
    make_endpoint,
    receiver,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    from django.utils import timezone

    from webhooks.delivery import MAX_ATTEMPTS, webhook_delivery_send

    make_endpoint()
    event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})
    delivery = WebhookDelivery.objects.get(event=event)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=MAX_ATTEMPTS)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued = []
    monkeypatch.setattr(tasks.webhook_delivery_send_task, "delay", queued.append)

    with django_capture_on_commit_callbacks(execute=True):
        response = reseller_api.post(f"{DELIVERIES}{delivery.pk}/replay/")

    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert queued == [delivery.pk]
    receiver.statuses = [500]
    result = webhook_delivery_send(delivery_id=delivery.pk, now=timezone.now())
    assert result.status == "failed"  # its automatic retries were used up: one attempt only
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_replay_of_a_succeeded_delivery_sends_the_same_event_again(
    reseller_api, reseller, make_endpoint, receiver
):
    from django.utils import timezone

    from webhooks.delivery import webhook_delivery_send

    make_endpoint()
    event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={"id": 1})
    delivery = WebhookDelivery.objects.get(event=event)
    webhook_delivery_send(delivery_id=delivery.pk, now=timezone.now())

    assert reseller_api.post(f"{DELIVERIES}{delivery.pk}/replay/").status_code == 202
    webhook_delivery_send(delivery_id=delivery.pk, now=timezone.now())

    assert [r.headers["flowbill-event-id"] for r in receiver.requests] == [f"evt_{event.pk}"] * 2
    assert receiver.requests[0].content == receiver.requests[1].content
    assert WebhookDelivery.objects.get(pk=delivery.pk).attempts == 2


@pytest.mark.django_db
def test_replay_is_409_while_in_flight_or_when_the_endpoint_is_disabled(
    reseller_api, reseller, make_endpoint
):
    from django.utils import timezone

    from webhooks.delivery import _claim

    endpoint, _ = make_endpoint()
    event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={})
    delivery = WebhookDelivery.objects.get(event=event)
    _claim(delivery.pk, timezone.now())  # a worker is sending it

    in_flight = reseller_api.post(f"{DELIVERIES}{delivery.pk}/replay/")
    assert in_flight.status_code == 409
    assert in_flight.json()["code"] == "webhook_delivery_in_progress"

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    disabled = reseller_api.post(f"{DELIVERIES}{delivery.pk}/replay/")
    assert disabled.status_code == 409
    assert disabled.json()["code"] == "webhook_endpoint_disabled"


@pytest.mark.django_db
def test_event_list_newest_first_with_a_type_filter(reseller_api, reseller, make_endpoint):
    make_endpoint(events=["sync.failed", "usage.alert"])
    first = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={"n": 1})
    second = webhook_event_emit(reseller_id=reseller.pk, event_type="usage.alert", data={"n": 2})

    rows = reseller_api.get(EVENTS).json()["results"]
    assert [row["id"] for row in rows] == [f"evt_{second.pk}", f"evt_{first.pk}"]
    assert rows[0]["type"] == "usage.alert" and rows[0]["data"] == {"n": 2}
    only = reseller_api.get(EVENTS + "?type=sync.failed").json()["results"]
    assert [row["id"] for row in only] == [f"evt_{first.pk}"]
    assert reseller_api.get(EVENTS + "?type=nope").status_code == 400


@pytest.mark.django_db
def test_endpoint_limit_is_a_409(reseller_api, reseller, make_endpoint):
    from webhooks.services import MAX_ENDPOINTS_PER_RESELLER

    for n in range(MAX_ENDPOINTS_PER_RESELLER):
        make_endpoint(url=f"https://h{n}.example.com/")
    response = reseller_api.post(BASE, NEW, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "webhook_endpoint_limit"
