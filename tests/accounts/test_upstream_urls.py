"""Issue 11.1: an upstream account's credentials go only to allowed hosts.

The rule is enforced when a base URL is written (model `clean`, so services, API and admin
alike), when it changes (IPFoxy credentials must be typed in again), and again at request
time, so a row stored before the rule cannot be used either.
"""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from accounts.api_keys import api_key_create
from accounts.models import Provider, UpstreamAccount
from accounts.services import upstream_account_create, upstream_account_update
from accounts.upstream_urls import base_url_problem, validate_upstream_base_url
from tests import factories
from tests.api.conftest import key_client
from usage.services import usage_sync_sub_account
from usage.simulator import SimulatorConfig, start_simulator

CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
ALLOWED = {"ipfoxy": ["apis.ipfoxy.com"], "bytesflows": ["api.bytesflows.com"]}


@pytest.fixture
def reseller_key(reseller) -> str:
    return api_key_create(reseller=reseller, name="automation")[1]


@pytest.fixture
def reseller_api(reseller_key):
    return key_client(reseller_key)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://apis.ipfoxy.com", None),
        ("https://apis.ipfoxy.com/v2/", None),
        ("http://127.0.0.1:8765", None),
        ("ftp://apis.ipfoxy.com", "Only http and https"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "Only http and https"),
        ("https://u:p@apis.ipfoxy.com", "user info"),
        ("https://apis.ipfoxy.com@10.0.0.1", "user info"),
        ("https://apis.ipfoxy.com?x=1", "no query"),
        ("https://10.0.0.1", "not on the allowed"),
        ("https://apis.ipfoxy.com.attacker.example", "not on the allowed"),
        ("https://[::1]:8765", "not on the allowed"),
        ("http://127.0.0.1:99999", "valid"),
    ],
)
def test_base_url_problem(url, problem):
    found = base_url_problem(url, allowed_hosts={"apis.ipfoxy.com", "127.0.0.1"})
    assert (found is None) if problem is None else (problem in found)


def test_production_allows_only_the_real_hosts(settings):
    settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS = ALLOWED
    validate_upstream_base_url(provider="ipfoxy", base_url="https://apis.ipfoxy.com")
    validate_upstream_base_url(provider="bytesflows", base_url="https://api.bytesflows.com")
    validate_upstream_base_url(provider="ipfoxy", base_url="")  # the provider's default
    for provider, url in [
        ("ipfoxy", "http://127.0.0.1:8765"),
        ("ipfoxy", "https://api.bytesflows.com"),  # the other provider's host
        ("bytesflows", "http://localhost:8765"),
    ]:
        with pytest.raises(ValidationError) as info:
            validate_upstream_base_url(provider=provider, base_url=url)
        assert list(info.value.message_dict) == ["base_url"]


def test_debug_and_test_settings_allow_the_local_simulator(settings):
    assert "127.0.0.1" in settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS["ipfoxy"]
    assert "apis.ipfoxy.com" in settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS["ipfoxy"]
    assert "localhost" in settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS["bytesflows"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "http://10.0.0.7:6379", "http://a:b@127.0.0.1"]
)
def test_the_create_service_refuses_a_url_off_the_policy(reseller, url):
    with pytest.raises(ValidationError) as info:
        upstream_account_create(
            reseller=reseller, provider=Provider.IPFOXY, name="x", credentials=CREDS, base_url=url
        )
    assert "base_url" in info.value.message_dict
    assert not UpstreamAccount.objects.exists()


@pytest.mark.django_db
def test_changing_base_url_needs_the_credentials_again(reseller):
    account = upstream_account_create(
        reseller=reseller, provider=Provider.IPFOXY, name="x", credentials=CREDS,
        base_url="http://127.0.0.1:8765",
    )  # fmt: skip
    with pytest.raises(ValidationError) as info:
        upstream_account_update(upstream_account=account, base_url="http://localhost:9999")
    assert list(info.value.message_dict) == ["credentials"]
    account.refresh_from_db()
    assert account.base_url == "http://127.0.0.1:8765"

    # The same URL (give or take a trailing slash) is not a change; other fields are free.
    upstream_account_update(upstream_account=account, base_url="http://127.0.0.1:8765/", name="y")
    upstream_account_update(
        upstream_account=account, base_url="http://localhost:9999", credentials=CREDS
    )
    account.refresh_from_db()
    assert account.base_url == "http://localhost:9999"


@pytest.mark.django_db
def test_api_patch_of_base_url_alone_is_refused(reseller, reseller_key):
    upstream = factories.UpstreamAccountFactory(reseller=reseller, credentials=CREDS)
    api = key_client(reseller_key)
    url = f"/api/v1/reseller/upstream-accounts/{upstream.pk}/"

    alone = api.patch(url, {"base_url": "http://localhost:1234"}, format="json")
    ftp = api.patch(url, {"base_url": "ftp://127.0.0.1/", "credentials": CREDS}, format="json")
    foreign = api.patch(url, {"base_url": "http://attacker.example", "credentials": CREDS})
    ok = api.patch(url, {"base_url": "http://localhost:1234", "credentials": CREDS})

    assert alone.status_code == 400
    assert list(alone.json()["extra"]["fields"]) == ["credentials"]
    assert ftp.status_code == foreign.status_code == 400
    assert list(foreign.json()["extra"]["fields"]) == ["base_url"]
    assert "attacker" not in foreign.content.decode()
    assert ok.status_code == 200 and ok.json()["base_url"] == "http://localhost:1234"


@pytest.mark.django_db
def test_api_create_refuses_a_host_off_the_allowlist(reseller_api):
    response = reseller_api.post(
        "/api/v1/reseller/upstream-accounts/",
        {"name": "x", "provider": "ipfoxy", "base_url": "http://192.168.1.1", "credentials": CREDS},
    )
    assert response.status_code == 400
    assert list(response.json()["extra"]["fields"]) == ["base_url"]


@pytest.mark.django_db
def test_a_stored_row_off_the_policy_cannot_sync_and_sends_nothing(settings, customer):
    """A row written before the rule (or around the services) still cannot be used: the
    transport refuses it before any request, and the SyncRun says why, without the URL."""
    config = SimulatorConfig(seed=7, now=NOW, rate_limit_enabled=False)
    with start_simulator(port=0, config=config) as sim:
        upstream = factories.UpstreamAccountFactory(
            reseller=customer.reseller, base_url=sim.url, credentials=CREDS
        )
        sub = factories.SubAccountFactory(
            customer=customer, upstream_account=upstream, upstream_id="SIM00001"
        )
        settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS = ALLOWED  # production: no local hosts
        run = usage_sync_sub_account(
            sub_account=sub, start=NOW - dt.timedelta(hours=3), end=NOW, now=NOW
        )
        assert sim.stats()["requests_total"] == 0

        UpstreamAccount.objects.filter(pk=upstream.pk).update(base_url="ftp://127.0.0.1:21")
        settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS = {"ipfoxy": ["127.0.0.1"]}
        sub.refresh_from_db()
        ftp_run = usage_sync_sub_account(
            sub_account=sub, start=NOW - dt.timedelta(hours=3), end=NOW, now=NOW
        )

    assert run.status == ftp_run.status == "failed"
    assert run.error_code == ftp_run.error_code == "upstream_url_not_allowed"
    assert "127.0.0.1" not in run.error and str(sim.port) not in run.error
    assert "Only http and https" in ftp_run.error
