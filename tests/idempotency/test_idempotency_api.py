"""`Idempotency-Key` on POSTs of the API: replay, conflicts, expiry, scope, 5xx release."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import Customer
from idempotency.models import IdempotencyRecord
from idempotency.services import idempotency_records_purge
from idempotency.tasks import idempotency_records_purge_task
from tests.api.conftest import key_client

URL = "/api/v1/reseller/customers/"
BODY = {"name": "Acme Storefront", "email": "billing@acme.example"}


def post(client, body, key, **headers):
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **headers)


@pytest.mark.django_db
def test_same_key_and_body_replays_the_first_response_once(reseller_api, reseller):
    first = post(reseller_api, BODY, "order-1")
    second = post(reseller_api, BODY, "order-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Customer.objects.filter(reseller=reseller, name="Acme Storefront").count() == 1


@pytest.mark.django_db
def test_json_body_compares_by_value_not_by_bytes(reseller_api, reseller):
    post(reseller_api, BODY, "k-1")
    reordered = '{ "email": "billing@acme.example",\n "name": "Acme Storefront" }'
    again = reseller_api.post(
        URL, reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(reseller=reseller).count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_409_key_reused(reseller_api, reseller):
    post(reseller_api, BODY, "k-2")
    other = post(reseller_api, {**BODY, "name": "Other"}, "k-2")

    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert other.json()["extra"] == {"header": "Idempotency-Key"}
    assert Customer.objects.filter(reseller=reseller).count() == 1


@pytest.mark.django_db
def test_same_key_on_another_path_is_409_key_reused(reseller_api, reseller):
    post(reseller_api, BODY, "k-3")
    other = reseller_api.post(
        "/api/v1/reseller/sub-accounts/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-3"
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


@pytest.mark.django_db
def test_a_4xx_is_stored_and_replayed(reseller_api):
    bad = {"name": "No email", "email": "not-an-email"}
    first = post(reseller_api, bad, "k-4")
    second = post(reseller_api, bad, "k-4")

    assert first.status_code == second.status_code == 400
    assert second.json() == first.json()
    assert "email" in second.json()["extra"]["fields"]
    assert second["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_5xx_is_not_stored_and_the_retry_runs(reseller_api, reseller, monkeypatch):
    from accounts import services

    real = services.customer_create
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs["name"])
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return real(**kwargs)

    monkeypatch.setattr(services, "customer_create", flaky)
    reseller_api.raise_request_exception = False

    first = post(reseller_api, BODY, "k-5")
    assert first.status_code == 500
    assert not IdempotencyRecord.objects.filter(key="k-5").exists()

    second = post(reseller_api, BODY, "k-5")
    assert second.status_code == 201
    assert not second.has_header("Idempotent-Replayed")
    assert calls == ["Acme Storefront", "Acme Storefront"]
    assert Customer.objects.filter(reseller=reseller).count() == 1


@pytest.mark.django_db
def test_a_record_older_than_24_hours_is_ignored(reseller_api, reseller):
    post(reseller_api, BODY, "k-6")
    IdempotencyRecord.objects.filter(key="k-6").update(
        created_at=timezone.now() - dt.timedelta(hours=24, minutes=1)
    )
    again = post(reseller_api, BODY, "k-6")

    assert again.status_code == 201
    assert not again.has_header("Idempotent-Replayed")
    assert Customer.objects.filter(reseller=reseller).count() == 2
    assert IdempotencyRecord.objects.filter(key="k-6").count() == 1


@pytest.mark.django_db
def test_a_record_23_hours_old_still_replays(reseller_api, reseller):
    post(reseller_api, BODY, "k-7")
    IdempotencyRecord.objects.filter(key="k-7").update(
        created_at=timezone.now() - dt.timedelta(hours=23)
    )
    assert post(reseller_api, BODY, "k-7")["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(reseller=reseller).count() == 1


@pytest.mark.django_db
def test_keys_belong_to_one_api_key(reseller_api, reseller):
    other_key = api_key_create(reseller=reseller, name="second storefront")[1]
    post(reseller_api, BODY, "shared-key")
    other = post(key_client(other_key), BODY, "shared-key")

    assert other.status_code == 201
    assert not other.has_header("Idempotent-Replayed")
    assert Customer.objects.filter(reseller=reseller).count() == 2


@pytest.mark.django_db
def test_a_request_still_running_answers_409_in_progress(reseller_api, reseller, reseller_key):
    from accounts.models import ApiKey

    api_key = ApiKey.objects.get(reseller=reseller)
    post(reseller_api, BODY, "warm-up")  # the body hash of BODY on URL, as stored
    stored = IdempotencyRecord.objects.get(key="warm-up")
    IdempotencyRecord.objects.create(
        scope=f"api_key:{api_key.pk}",
        key="k-8",
        method="POST",
        path=URL,
        request_hash=stored.request_hash,
        created_at=timezone.now(),
    )
    response = post(reseller_api, BODY, "k-8")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_request_in_progress"

    # A claim left by a worker that died (older than 5 minutes) is taken over.
    IdempotencyRecord.objects.filter(key="k-8").update(
        created_at=timezone.now() - dt.timedelta(minutes=6)
    )
    assert post(reseller_api, BODY, "k-8").status_code == 201
    assert Customer.objects.filter(reseller=reseller).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve"])
def test_a_malformed_key_is_a_400_naming_the_header(reseller_api, reseller, key):
    response = reseller_api.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["extra"]["fields"]
    assert not Customer.objects.filter(reseller=reseller).exists()


@pytest.mark.django_db
def test_posts_without_the_header_are_not_recorded(reseller_api, reseller):
    post_without = reseller_api.post(URL, BODY, format="json")
    again = reseller_api.post(URL, BODY, format="json")
    assert post_without.status_code == again.status_code == 201
    assert Customer.objects.filter(reseller=reseller).count() == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_an_unauthenticated_post_is_not_recorded():
    response = post(key_client("fb_bogus_key"), BODY, "k-9")
    assert response.status_code == 401
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_purge_deletes_only_expired_records(reseller_api):
    post(reseller_api, BODY, "old")
    post(reseller_api, {**BODY, "name": "B"}, "new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - dt.timedelta(hours=25)
    )
    assert idempotency_records_purge(now=timezone.now()) == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_records_purge_task.delay().get() == 0


@pytest.mark.django_db
def test_a_secret_shown_once_is_replayed_but_stored_encrypted(reseller_api):
    body = {"url": "https://shop.example.com/hooks", "enabled_events": ["usage.alert"]}
    url = "/api/v1/reseller/webhook-endpoints/"
    first = reseller_api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    again = reseller_api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")

    secret = first.json()["secret"]
    assert again["Idempotent-Replayed"] == "true" and again.json()["secret"] == secret
    stored = IdempotencyRecord.objects.get(key="hook-1").response_body
    assert secret not in stored and stored.startswith("gAAAA")
