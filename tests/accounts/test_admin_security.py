"""Issue 11 in the admin: scoped related filters (11.3), login lockout (11.4), API keys
listed and revoked by their reseller's staff only (11.6); issue 10's currency lock and an
upstream base URL that cannot move without the credentials."""

import re

import pytest
from django.urls import reverse

from accounts.api_keys import api_key_authenticate, api_key_create
from accounts.models import ApiKey
from tests.billing.factories import PlanFactory, SubscriptionFactory
from tests.factories import (
    CustomerFactory,
    ResellerFactory,
    StaffUserFactory,
    UpstreamAccountFactory,
)


@pytest.fixture
def two(db):
    data = {}
    for key, name in (("a", "Alpha"), ("b", "Bravo")):
        reseller = ResellerFactory(name=f"{name} Proxies")
        customer = CustomerFactory(reseller=reseller, name=f"{name}-customer")
        plan = PlanFactory(reseller=reseller, name=f"{name}-plan")
        PlanFactory(reseller=reseller, name=f"{name}-spare-plan")  # a filter needs 2 choices
        customer2 = CustomerFactory(reseller=reseller, name=f"{name}-customer-2")
        SubscriptionFactory(customer=customer, plan=plan)
        data[key] = {
            "reseller": reseller,
            "customer": customer,
            "customer2": customer2,
            "plan": plan,
            "staff": StaffUserFactory(reseller=reseller, username=f"staff-{key}"),
            "reseller_key": api_key_create(reseller=reseller, name=f"{name}-rkey")[0],
            "customer_key": api_key_create(
                reseller=reseller, customer=customer, name=f"{name}-ckey"
            )[0],
        }
    return data


def test_subscription_plan_filter_lists_only_own_plans(client, two):
    client.force_login(two["a"]["staff"])
    html = client.get(reverse("admin:billing_subscription_changelist")).content.decode()
    assert f"plan__id__exact={two['a']['plan'].pk}" in html
    assert "Alpha-plan" in html and "Alpha-spare-plan" in html
    assert "Bravo-plan" not in html and "Bravo-spare-plan" not in html
    assert f"plan__id__exact={two['b']['plan'].pk}" not in html


def test_api_key_customer_filter_lists_only_own_customers_and_no_reseller_filter(client, two):
    client.force_login(two["a"]["staff"])
    html = client.get(reverse("admin:accounts_apikey_changelist")).content.decode()
    assert "customer__id__exact" in html and "Alpha-customer" in html
    assert "Bravo" not in html
    assert "reseller__id__exact" not in html


def test_superuser_filters_still_list_everything(admin_client, two):
    html = admin_client.get(reverse("admin:billing_subscription_changelist")).content.decode()
    assert "Alpha-plan" in html and "Bravo-plan" in html


def test_staff_list_and_revoke_only_their_keys(client, two):
    client.force_login(two["a"]["staff"])
    listing = client.get(reverse("admin:accounts_apikey_changelist")).content.decode()
    assert "Alpha-rkey" in listing and "Alpha-ckey" in listing and "Bravo" not in listing

    foreign = two["b"]["reseller_key"]
    own = two["a"]["reseller_key"]
    assert client.get(reverse("admin:accounts_apikey_change", args=[foreign.pk])).status_code == 404
    denied = client.post(reverse("admin:accounts_apikey_action", args=[foreign.pk, "revoke"]))
    assert denied.status_code == 404
    done = client.post(reverse("admin:accounts_apikey_action", args=[own.pk, "revoke"]))
    assert done.status_code == 302
    own.refresh_from_db()
    foreign.refresh_from_db()
    assert own.revoked_at is not None and foreign.revoked_at is None


def test_bulk_revoke_action_touches_only_own_keys(client, two):
    client.force_login(two["a"]["staff"])
    ids = [two[k][kind].pk for k in "ab" for kind in ("reseller_key", "customer_key")]
    client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": ids},
    )
    revoked = set(ApiKey.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True))
    assert revoked == {two["a"]["reseller_key"].pk, two["a"]["customer_key"].pk}


def test_a_revoked_key_stops_authenticating(two):
    api_key, raw = api_key_create(reseller=two["a"]["reseller"], name="soon-gone")
    from django.utils import timezone

    from accounts.api_keys import api_key_revoke

    assert api_key_authenticate(raw_key=raw, now=timezone.now()) is not None
    api_key_revoke(api_key=api_key)
    assert api_key_authenticate(raw_key=raw, now=timezone.now()) is None


def _management_forms(client, url) -> dict[str, str]:
    """The hidden management-form inputs of the inlines other apps add to a change page."""
    html = client.get(url).content.decode()
    pattern = r'name="([^"]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d*)"'
    return dict(re.findall(pattern, html))


@pytest.mark.slow
def test_admin_customer_currency_change_is_refused_with_a_form_error(client, two):
    client.force_login(two["a"]["staff"])
    customer = two["a"]["customer"]
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    form = {
        **_management_forms(client, url),
        **{"name": customer.name, "email": customer.email, "cc_emails": "", "address_line1": "",
           "address_line2": "", "city": "", "postal_code": "", "country": "DE", "tax_id": "",
           "tax_rate": "19", "currency": "EUR", "status": "active"},
    }  # fmt: skip
    response = client.post(url, form)
    assert response.status_code == 200  # the form again, with the error
    assert "currency cannot change" in response.content.decode()
    customer.refresh_from_db()
    assert customer.currency == "USD"

    response = client.post(url, {**form, "currency": "USD", "tax_rate": "101"})
    assert response.status_code == 200
    assert "less than or equal to 100" in response.content.decode()
    response = client.post(url, {**form, "currency": "USD", "country": "XX"})
    assert "ISO 3166-1" in response.content.decode()
    assert client.post(url, {**form, "currency": "USD"}).status_code == 302
    customer.refresh_from_db()
    assert (customer.country, str(customer.tax_rate)) == ("DE", "19.0000")


def test_admin_base_url_change_needs_the_credentials(client, two):
    client.force_login(two["a"]["staff"])
    upstream = UpstreamAccountFactory(reseller=two["a"]["reseller"], name="Alpha-up")
    url = reverse("admin:accounts_upstreamaccount_change", args=[upstream.pk])
    form = {
        "provider": "ipfoxy", "name": "Alpha-up", "base_url": "http://localhost:9000",
        "cost_per_gb": "1.5", "mb_bytes": "1048576", "requests_per_minute": "50",
        "is_active": "on", "api_id": "", "api_token": "",
    }  # fmt: skip
    refused = client.post(url, form)
    assert refused.status_code == 200
    assert "requires entering the api_id and api_token again" in refused.content.decode()
    off_list = client.post(
        url, {**form, "base_url": "http://10.0.0.1", "api_id": "i", "api_token": "t"}
    )
    assert "not on the allowed upstream hosts" in off_list.content.decode()
    upstream.refresh_from_db()
    assert upstream.base_url == "http://127.0.0.1:8765"

    ok = client.post(url, {**form, "api_id": "new-id", "api_token": "new-token"})
    assert ok.status_code == 302
    upstream.refresh_from_db()
    assert upstream.base_url == "http://localhost:9000"
    assert upstream.credentials == {"api_id": "new-id", "api_token": "new-token"}


def _login(client, username: str, password: str, **extra) -> int:
    form = {"username": username, "password": password, "next": "/admin/"}
    return client.post(reverse("admin:login"), form, **extra).status_code


@pytest.mark.django_db
def test_admin_login_locks_out_after_repeated_failures(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    StaffUserFactory(username="victim")

    codes = [_login(client, "victim", "nope") for _ in range(3)]
    locked = _login(client, "victim", "pw-Staff-123")  # the right password, but locked out
    assert "_auth_user_id" not in client.session
    other_ip = _login(client, "victim", "pw-Staff-123", REMOTE_ADDR="198.51.100.7")

    assert codes == [200, 200, 429]  # the login form twice, then locked out
    assert locked == 429
    assert other_ip == 302  # one username from one address is locked, not all


@pytest.mark.django_db
def test_admin_login_success_resets_the_failure_count(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    StaffUserFactory(username="typo")
    for _round in range(2):
        assert [_login(client, "typo", "nope") for _ in range(2)] == [200, 200]
        assert _login(client, "typo", "pw-Staff-123") == 302
        client.logout()
