"""Two simultaneous POSTs with one Idempotency-Key run the view once (PostgreSQL, threads)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from accounts import services
from accounts.models import Customer
from idempotency.models import IdempotencyRecord
from tests.api.conftest import key_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/reseller/customers/"
BODY = {"name": "Acme Storefront", "email": "billing@acme.example"}


def _post(raw_key: str):
    try:
        return key_client(raw_key).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-77")
    finally:
        connection.close()


def test_a_retry_while_the_first_runs_is_409_then_replays(reseller, reseller_key, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    real = services.customer_create

    def slow_create(**kwargs):
        entered.set()
        assert release.wait(30)
        return real(**kwargs)

    monkeypatch.setattr(services, "customer_create", slow_create)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_post, reseller_key)
        assert entered.wait(30)
        retry = key_client(reseller_key).post(
            URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-77"
        )
        release.set()
        first = first.result()

    assert retry.status_code == 409
    assert retry.json()["code"] == "idempotency_request_in_progress"
    assert first.status_code == 201
    again = key_client(reseller_key).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-77")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Customer.objects.filter(reseller=reseller).count() == 1


def test_two_simultaneous_posts_create_one_customer(reseller, reseller_key):
    barrier = threading.Barrier(2)

    def post():
        barrier.wait()
        return _post(reseller_key)

    with ThreadPoolExecutor(2) as pool:
        responses = [f.result() for f in [pool.submit(post), pool.submit(post)]]

    assert Customer.objects.filter(reseller=reseller).count() == 1
    statuses = sorted(r.status_code for r in responses)
    # The loser either found the first still running (409) or already done (a replay).
    assert statuses in ([201, 201], [201, 409])
    if statuses == [201, 201]:
        assert sorted(r.has_header("Idempotent-Replayed") for r in responses) == [False, True]
    assert IdempotencyRecord.objects.get().status_code == 201
