"""Throttles: per key (429 with Retry-After) and per IP for failed key attempts."""

import pytest
from django.conf import settings
from django.test import override_settings

from accounts.api_keys import api_key_create
from tests.api.conftest import key_client


def rates(**overrides):
    config = dict(settings.REST_FRAMEWORK)
    config["DEFAULT_THROTTLE_RATES"] = {**config["DEFAULT_THROTTLE_RATES"], **overrides}
    return override_settings(REST_FRAMEWORK=config)


@pytest.mark.django_db
def test_a_key_past_its_rate_gets_429_with_retry_after(reseller, reseller_key):
    other_key = api_key_create(reseller=reseller, name="second")[1]
    with rates(api_key="3/min"):
        api = key_client(reseller_key)
        codes = [api.get("/api/v1/reseller/customers/").status_code for _ in range(4)]
        throttled = api.get("/api/v1/reseller/customers/")
        other = key_client(other_key).get("/api/v1/reseller/customers/")

    assert codes == [200, 200, 200, 429]
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert set(throttled.json()) == {"code", "message", "extra"}
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert other.status_code == 200  # the limit is per key


@pytest.mark.django_db
def test_failed_key_attempts_from_one_ip_are_throttled_even_for_a_valid_key(
    client, reseller, reseller_key
):
    bad = "Api-Key fb_abcdefgh_" + "x" * 43
    with rates(api_auth_failure="5/min"):
        failures = [client.get("/api/v1/me/", HTTP_AUTHORIZATION=bad).status_code for _ in range(5)]
        blocked = client.get("/api/v1/reseller/customers/", HTTP_AUTHORIZATION=bad)
        blocked_valid = client.get(
            "/api/v1/reseller/customers/", HTTP_AUTHORIZATION=f"Api-Key {reseller_key}"
        )
        elsewhere = client.get(
            "/api/v1/reseller/customers/",
            HTTP_AUTHORIZATION=f"Api-Key {reseller_key}",
            REMOTE_ADDR="203.0.113.9",
        )

    assert failures == [401] * 5
    assert blocked.status_code == blocked_valid.status_code == 429
    assert int(blocked["Retry-After"]) >= 1
    assert elsewhere.status_code == 200


@pytest.mark.django_db
def test_successful_requests_do_not_count_as_failures(reseller_key):
    api = key_client(reseller_key)
    with rates(api_auth_failure="2/min"):
        codes = {api.get("/api/v1/reseller/customers/").status_code for _ in range(5)}
    assert codes == {200}


@pytest.mark.django_db
def test_x_forwarded_for_is_ignored_without_trusted_proxies(client, reseller):
    bad = "Api-Key fb_abcdefgh_" + "x" * 43
    with rates(api_auth_failure="2/min"):
        for n in range(2):
            client.get("/api/v1/me/", HTTP_AUTHORIZATION=bad, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        spoofed = client.get("/api/v1/me/", HTTP_AUTHORIZATION=bad, HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert spoofed.status_code == 429
