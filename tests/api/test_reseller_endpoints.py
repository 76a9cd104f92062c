"""Reseller-scope endpoints: validation, write-only credentials, updates, pagination."""

from decimal import Decimal

import pytest

from accounts.models import Customer, Provider, SubAccount, UpstreamAccount
from tests import factories

R = "/api/v1/reseller"
REQUIRED = ["This field is required."]
IPFOXY_CREDENTIALS = {"api_id": "ipf-100", "api_token": "tok-Very-Secret-123"}


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    return body["extra"]["fields"]


@pytest.mark.django_db
def test_upstream_account_create_stores_credentials_and_never_returns_them(reseller_api, reseller):
    response = reseller_api.post(
        f"{R}/upstream-accounts/",
        {
            "name": "IPFoxy main",
            "provider": "ipfoxy",
            "base_url": "http://127.0.0.1:8765",
            "credentials": IPFOXY_CREDENTIALS,
            "cost_per_gb": "0.85",
            "mb_bytes": 1_000_000,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["cost_per_gb"] == "0.850000"
    assert body["has_credentials"] is True
    assert "credentials" not in body
    assert "tok-Very-Secret-123" not in response.content.decode()
    stored = UpstreamAccount.objects.get(pk=body["id"])
    assert stored.reseller == reseller
    assert stored.credentials == IPFOXY_CREDENTIALS
    assert stored.cost_per_gb == Decimal("0.85")
    assert stored.mb_bytes == 1_000_000
    detail = reseller_api.get(f"{R}/upstream-accounts/{stored.pk}/")
    assert "tok-Very-Secret-123" not in detail.content.decode()


@pytest.mark.parametrize(
    ("provider", "credentials", "errors"),
    [
        (
            "ipfoxy",
            {},
            {"api_id": REQUIRED, "api_token": REQUIRED},
        ),
        ("ipfoxy", {"api_id": "a"}, {"api_token": ["This field is required."]}),
        (
            "ipfoxy",
            {**IPFOXY_CREDENTIALS, "password": "hunter2-secret"},
            {"password": ["Not a ipfoxy credential."]},
        ),
        ("bytesflows", {"token": "bf-secret"}, {"token": ["Not a bytesflows credential."]}),
    ],
)
@pytest.mark.django_db
def test_upstream_credentials_are_checked_per_provider(reseller_api, provider, credentials, errors):
    response = reseller_api.post(
        f"{R}/upstream-accounts/",
        {"name": "u", "provider": provider, "credentials": credentials},
    )
    assert fields_of(response) == {"credentials": errors}
    assert "secret" not in response.content.decode()
    assert not UpstreamAccount.objects.exists()


@pytest.mark.django_db
def test_bytesflows_upstream_account_needs_no_credentials(reseller_api):
    response = reseller_api.post(
        f"{R}/upstream-accounts/", {"name": "BF", "provider": "bytesflows"}
    )
    assert response.status_code == 201
    assert response.json()["has_credentials"] is False


@pytest.mark.django_db
def test_unknown_fields_are_rejected_by_name(reseller_api):
    response = reseller_api.post(
        f"{R}/customers/", {"name": "Acme", "email": "a@example.com", "emial": "typo"}
    )
    assert fields_of(response) == {"emial": ["Unknown field."]}
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_validation_errors_name_every_field(reseller_api):
    response = reseller_api.post(
        f"{R}/customers/", {"email": "not-an-email", "currency": "XXQ", "tax_rate": "-1"}
    )
    assert set(fields_of(response)) == {"name", "email", "currency", "tax_rate"}


@pytest.mark.django_db
def test_customer_without_currency_takes_the_resellers(reseller_api, reseller):
    reseller.currency = "EUR"
    reseller.save()
    response = reseller_api.post(
        f"{R}/customers/",
        {
            "name": "Acme GmbH",
            "email": "billing@acme.example",
            "tax_rate": "19.0000",
            "country": "DE",
        },
    )
    assert response.status_code == 201
    assert response.json()["currency"] == "EUR"
    assert response.json()["tax_rate"] == "19.0000"


@pytest.mark.django_db
def test_customer_update_is_partial(reseller_api, customer):
    response = reseller_api.patch(
        f"{R}/customers/{customer.pk}/", {"status": "active", "city": "Shenzhen"}
    )
    assert response.status_code == 200
    customer.refresh_from_db()
    assert (customer.status, customer.city) == ("active", "Shenzhen")
    assert response.json()["email"] == customer.email


@pytest.mark.django_db
def test_customer_status_changes_only_by_suspending(reseller_api, customer):
    response = reseller_api.patch(f"{R}/customers/{customer.pk}/", {"status": "suspended"})
    assert response.status_code == 400
    assert "suspend/" in str(response.json())
    customer.refresh_from_db()
    assert (customer.status, customer.suspended_at) == ("active", None)


@pytest.mark.django_db
def test_upstream_provider_cannot_change(reseller_api, upstream_account):
    response = reseller_api.patch(
        f"{R}/upstream-accounts/{upstream_account.pk}/", {"provider": "bytesflows"}
    )
    assert fields_of(response) == {"provider": ["This field cannot be changed."]}


@pytest.mark.django_db
def test_upstream_credentials_update_replaces_them_and_is_checked(reseller_api, upstream_account):
    url = f"{R}/upstream-accounts/{upstream_account.pk}/"
    bad = reseller_api.patch(url, {"credentials": {"api_id": "only"}})
    assert fields_of(bad) == {"credentials": {"api_token": ["This field is required."]}}
    good = reseller_api.patch(
        url, {"credentials": {"api_id": "new-id", "api_token": "new-Secret"}, "cost_per_gb": "2.5"}
    )
    assert good.status_code == 200
    assert "new-Secret" not in good.content.decode()
    upstream_account.refresh_from_db()
    assert upstream_account.credentials == {"api_id": "new-id", "api_token": "new-Secret"}
    assert upstream_account.cost_per_gb == Decimal("2.5")


@pytest.mark.django_db
def test_duplicate_upstream_name_is_a_400(reseller_api, upstream_account):
    response = reseller_api.post(
        f"{R}/upstream-accounts/",
        {"name": upstream_account.name, "provider": "bytesflows"},
    )
    assert list(fields_of(response)) == ["non_field_errors"]


@pytest.mark.django_db
def test_bytesflows_sub_account_needs_its_token(reseller_api, reseller, customer):
    bytesflows = factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    body = {"customer": customer.pk, "upstream_account": bytesflows.pk, "upstream_id": "acc-1"}
    missing = reseller_api.post(f"{R}/sub-accounts/", body)
    assert fields_of(missing) == {"credentials": {"token": ["This field is required."]}}

    created = reseller_api.post(
        f"{R}/sub-accounts/", {**body, "credentials": {"token": "bf-Token-xyz"}, "label": "Shop 1"}
    )
    assert created.status_code == 201
    assert created.json()["has_credentials"] is True
    assert created.json()["provider"] == "bytesflows"
    assert "bf-Token-xyz" not in created.content.decode()
    assert SubAccount.objects.get(pk=created.json()["id"]).credentials == {"token": "bf-Token-xyz"}


@pytest.mark.django_db
def test_sub_account_identity_cannot_change_but_its_label_can(reseller_api, sub_account):
    url = f"{R}/sub-accounts/{sub_account.pk}/"
    response = reseller_api.patch(url, {"upstream_id": "OTHER", "customer": 1})
    assert fields_of(response) == {
        "customer": ["This field cannot be changed."],
        "upstream_id": ["This field cannot be changed."],
    }
    response = reseller_api.patch(url, {"label": "Tokyo pool", "status": "suspended"})
    assert response.status_code == 200
    assert (response.json()["label"], response.json()["status"]) == ("Tokyo pool", "suspended")


@pytest.mark.django_db
def test_duplicate_upstream_id_is_a_400(reseller_api, sub_account):
    response = reseller_api.post(
        f"{R}/sub-accounts/",
        {
            "customer": sub_account.customer_id,
            "upstream_account": sub_account.upstream_account_id,
            "upstream_id": sub_account.upstream_id,
        },
    )
    assert list(fields_of(response)) == ["non_field_errors"]


@pytest.mark.django_db
def test_lists_paginate_in_id_order(reseller_api, reseller):
    created = [
        factories.CustomerFactory(reseller=reseller, name=name).pk
        for name in ("Zeta", "Alpha", "Mid", "Beta", "Omega")
    ]
    first = reseller_api.get(f"{R}/customers/?limit=2").json()
    second = reseller_api.get(f"{R}/customers/?limit=2&offset=2").json()
    last = reseller_api.get(f"{R}/customers/?limit=2&offset=4").json()
    assert first["count"] == 5
    ids = [row["id"] for page in (first, second, last) for row in page["results"]]
    assert ids == sorted(created)
    assert last["next"] is None


@pytest.mark.django_db
def test_unknown_api_paths_answer_the_json_404(reseller_api):
    response = reseller_api.get("/api/v1/reseller/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "extra": {}}


@pytest.mark.django_db
def test_me_shows_public_reseller_details_only(reseller, customer):
    from accounts.api_keys import api_key_create
    from tests.api.conftest import key_client

    reseller.payment_instructions = "IBAN internal"
    reseller.tax_id = "TAX-INTERNAL"
    reseller.save()
    raw_key = api_key_create(reseller=reseller, customer=customer, name="c")[1]
    body = key_client(raw_key).get("/api/v1/me/").json()
    assert body["reseller"] == {
        "name": reseller.name,
        "currency": "USD",
        "timezone": "UTC",
        "sender_email": "billing@example.com",
    }
    assert body["name"] == customer.name
