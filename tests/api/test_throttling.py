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
def test_failed_key_attempts_from_one_ip_are_throttled_but_a_valid_key_is_not(
    client, reseller, reseller_key
):
    """Issue 11.5: 40 bad attempts from one address, then a valid key from the same address
    answers 200; the bad attempts themselves are throttled (429 + Retry-After)."""
    bad = "Api-Key fb_abcdefgh_" + "x" * 43
    with rates(api_auth_failure="30/min"):
        failures = [
            client.get("/api/v1/me/", HTTP_AUTHORIZATION=bad).status_code for _ in range(40)
        ]
        blocked = client.get("/api/v1/reseller/customers/", HTTP_AUTHORIZATION=bad)
        valid = client.get(
            "/api/v1/reseller/customers/", HTTP_AUTHORIZATION=f"Api-Key {reseller_key}"
        )
        wrong_scheme = client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer abc")

    assert failures == [401] * 30 + [429] * 10
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "throttled"
    assert int(blocked["Retry-After"]) >= 1
    assert valid.status_code == 200
    assert wrong_scheme.status_code == 429  # a wrong scheme is a failed attempt too


@pytest.mark.django_db
def test_failures_elsewhere_do_not_count_for_another_address(client, reseller):
    bad = "Api-Key fb_abcdefgh_" + "x" * 43
    with rates(api_auth_failure="3/min"):
        for _ in range(3):
            client.get("/api/v1/me/", HTTP_AUTHORIZATION=bad)
        here = client.get("/api/v1/me/", HTTP_AUTHORIZATION=bad)
        elsewhere = client.get("/api/v1/me/", HTTP_AUTHORIZATION=bad, REMOTE_ADDR="203.0.113.9")
    assert here.status_code == 429
    assert elsewhere.status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer abc", "Token abc", "Basic dXNlcjpwdw==", "api-key"])
def test_a_wrong_scheme_is_a_401_naming_the_right_one(client, reseller, header):
    response = client.get("/api/v1/reseller/customers/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"
    assert 'use "Authorization: Api-Key <key>"' in response.json()["message"]
    assert response["WWW-Authenticate"] == "Api-Key"


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
