"""API keys: shown once, hashed at rest, revocable, `last_used_at` kept without churn."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from accounts.api_keys import api_key_authenticate, api_key_create, api_key_revoke
from accounts.models import ApiKey
from tests import factories
from tests.api.conftest import key_client

NOW = datetime(2026, 10, 15, 9, 30, tzinfo=UTC)


@pytest.mark.django_db
def test_created_key_is_returned_once_and_only_its_hash_is_stored(reseller):
    api_key, raw_key = api_key_create(reseller=reseller, name="storefront")

    assert raw_key.startswith(f"fb_{api_key.prefix}_")
    assert len(api_key.prefix) == 8
    assert len(raw_key) == 3 + 8 + 1 + 43
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.secret_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    secret = raw_key.split("_", 2)[2]
    for column in (stored.name, stored.prefix, stored.secret_hash):
        assert secret not in column
    assert raw_key not in repr(stored) and raw_key not in str(stored)
    assert stored.scope == ApiKey.Scope.RESELLER and stored.customer is None


@pytest.mark.django_db
def test_customer_key_created_over_the_api_shows_the_key_once(reseller_api, customer):
    created = reseller_api.post(
        f"/api/v1/reseller/customers/{customer.pk}/api-keys/", {"name": "shop"}
    )
    assert created.status_code == 201
    raw_key = created.json()["key"]
    assert created.json()["scope"] == "customer"
    assert created.json()["customer"] == customer.pk

    listed = reseller_api.get(f"/api/v1/reseller/customers/{customer.pk}/api-keys/")
    detail = reseller_api.get(
        f"/api/v1/reseller/customers/{customer.pk}/api-keys/{created.json()['id']}/"
    )
    for response in (listed, detail):
        assert response.status_code == 200
        assert raw_key not in response.content.decode()
        assert b'"key"' not in response.content
    assert key_client(raw_key).get("/api/v1/me/").json()["id"] == customer.pk


@pytest.mark.django_db
def test_revoked_key_answers_401_at_once(reseller_api, customer):
    created = reseller_api.post(
        f"/api/v1/reseller/customers/{customer.pk}/api-keys/", {"name": "shop"}
    ).json()
    customer_api = key_client(created["key"])
    assert customer_api.get("/api/v1/me/").status_code == 200

    url = f"/api/v1/reseller/customers/{customer.pk}/api-keys/{created['id']}/"
    assert reseller_api.delete(url).status_code == 204
    assert reseller_api.delete(url).status_code == 204  # idempotent

    response = customer_api.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json() == {
        "code": "invalid_api_key",
        "message": "Unknown or revoked API key.",
        "extra": {},
    }
    assert response["WWW-Authenticate"] == "Api-Key"
    assert reseller_api.get(url).json()["revoked_at"] is not None


@pytest.mark.django_db
def test_revoking_twice_keeps_the_first_time(reseller):
    api_key, _ = api_key_create(reseller=reseller, name="k")
    api_key_revoke(api_key=api_key, now=NOW)
    api_key_revoke(api_key=ApiKey.objects.get(pk=api_key.pk), now=NOW + timedelta(days=1))
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at == NOW


@pytest.mark.parametrize(
    "header",
    [
        "Api-Key fb_nope",
        "Api-Key fb_abcdefgh_" + "x" * 43,  # well-formed, unknown prefix
        "Api-Key",
        "Api-Key a b",
        "api-key fb_ABCDEFGH_" + "x" * 43,  # prefixes are lowercase
        "Api-Key " + "é" * 10,
    ],
)
@pytest.mark.django_db
def test_unknown_or_malformed_keys_answer_401_in_the_one_error_shape(client, header, reseller):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "extra"}
    assert response.json()["code"] == "invalid_api_key"


@pytest.mark.django_db
def test_a_right_prefix_with_a_wrong_secret_is_refused(reseller):
    api_key, raw_key = api_key_create(reseller=reseller, name="k")
    forged = raw_key[:-4] + ("AAAA" if not raw_key.endswith("AAAA") else "BBBB")
    assert api_key_authenticate(raw_key=forged, now=NOW) is None
    assert api_key_authenticate(raw_key=raw_key, now=NOW) == api_key


@pytest.mark.django_db
def test_no_header_answers_401_not_authenticated(client, reseller):
    response = client.get("/api/v1/reseller/customers/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_last_used_at_moves_at_most_once_a_minute(reseller):
    api_key, raw_key = api_key_create(reseller=reseller, name="k")
    assert api_key.last_used_at is None

    api_key_authenticate(raw_key=raw_key, now=NOW)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == NOW
    api_key_authenticate(raw_key=raw_key, now=NOW + timedelta(seconds=59))
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == NOW
    api_key_authenticate(raw_key=raw_key, now=NOW + timedelta(seconds=60))
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == NOW + timedelta(seconds=60)


@pytest.mark.django_db
def test_a_request_records_last_used_at(reseller, reseller_key):
    key_client(reseller_key).get("/api/v1/reseller/customers/")
    assert ApiKey.objects.get(reseller=reseller).last_used_at is not None


@pytest.mark.django_db
def test_a_customer_key_must_belong_to_the_keys_reseller(reseller):
    from core.errors import ApplicationError

    foreign = factories.CustomerFactory()
    with pytest.raises(ApplicationError) as excinfo:
        api_key_create(reseller=reseller, customer=foreign, name="k")
    assert excinfo.value.code == "api_key_customer_of_other_reseller"


@pytest.mark.django_db
def test_scope_must_match_the_customer_column(reseller, customer):
    from django.db import IntegrityError, transaction

    api_key, _ = api_key_create(reseller=reseller, name="k")
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiKey.objects.filter(pk=api_key.pk).update(customer=customer)


@pytest.mark.django_db
def test_api_keys_are_scoped_per_reseller(reseller, customer):
    api_key_create(reseller=reseller, name="r")
    api_key_create(reseller=reseller, customer=customer, name="c")
    api_key_create(reseller=factories.ResellerFactory(), name="other")
    assert ApiKey.objects.for_reseller(reseller).count() == 2


@pytest.mark.django_db
def test_staff_session_acts_for_the_users_reseller(client, reseller, customer):
    other = factories.CustomerFactory()
    staff = factories.StaffUserFactory(reseller=reseller)
    client.force_login(staff)
    body = client.get("/api/v1/reseller/customers/").json()
    assert [row["id"] for row in body["results"]] == [customer.pk]
    assert client.get(f"/api/v1/reseller/customers/{other.pk}/").status_code == 404


@pytest.mark.django_db
def test_superuser_without_reseller_gets_no_tenant(client, reseller):
    admin = factories.StaffUserFactory(reseller=None, is_superuser=True)
    client.force_login(admin)
    response = client.get("/api/v1/reseller/customers/")
    assert response.status_code == 403
    assert response.json()["code"] == "reseller_key_required"


@pytest.mark.django_db
def test_browsable_api_renders_for_staff_and_shows_no_credentials(client, reseller, sub_account):
    client.force_login(factories.StaffUserFactory(reseller=reseller))
    for url in (
        "/api/v1/reseller/upstream-accounts/",
        f"/api/v1/reseller/upstream-accounts/{sub_account.upstream_account_id}/",
        f"/api/v1/reseller/sub-accounts/{sub_account.pk}/",
        f"/api/v1/reseller/customers/{sub_account.customer_id}/api-keys/",
    ):
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, url
        assert "tok-secret-1" not in response.content.decode()


# --- the reseller's own keys: /api/v1/reseller/api-keys/ (issue 11.6) ----------------------


@pytest.mark.django_db
def test_reseller_keys_are_listed_without_secrets(reseller, reseller_key, customer):
    other_reseller = factories.ResellerFactory()
    api_key_create(reseller=other_reseller, name="foreign")
    api_key_create(reseller=reseller, customer=customer, name="a customer's")
    second, second_raw = api_key_create(reseller=reseller, name="backup")
    api_key_revoke(api_key=second, now=NOW)

    response = key_client(reseller_key).get("/api/v1/reseller/api-keys/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["name"] for r in rows] == ["storefront", "backup"]  # own reseller keys only
    assert set(rows[0]) >= {"prefix", "name", "created_at", "last_used_at", "revoked_at"}
    assert rows[0]["last_used_at"] is not None  # this very request used it
    assert rows[1]["revoked_at"] == "2026-10-15T09:30:00Z"
    body = response.content.decode()
    assert reseller_key not in body and second_raw not in body
    assert "secret_hash" not in body and '"key"' not in body


@pytest.mark.django_db
def test_delete_revokes_a_reseller_key_at_once(reseller, reseller_key):
    victim, victim_raw = api_key_create(reseller=reseller, name="leaked")
    assert key_client(victim_raw).get("/api/v1/reseller/customers/").status_code == 200

    response = key_client(reseller_key).delete(f"/api/v1/reseller/api-keys/{victim.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["customer_keys_revoked"]) == (victim.pk, 0)
    assert body["revoked_at"] is not None
    refused = key_client(victim_raw).get("/api/v1/reseller/customers/")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_api_key"
    again = key_client(reseller_key).delete(f"/api/v1/reseller/api-keys/{victim.pk}/")
    assert again.status_code == 200  # a no-op, the first revocation time is kept
    assert again.json()["revoked_at"] == body["revoked_at"]
    victim.refresh_from_db()
    assert victim.revoked_at is not None


@pytest.mark.django_db
def test_a_key_can_revoke_itself(reseller, reseller_key):
    api = key_client(reseller_key)
    own_id = api.get("/api/v1/reseller/api-keys/").json()["results"][0]["id"]
    assert api.delete(f"/api/v1/reseller/api-keys/{own_id}/").status_code == 200
    assert api.get("/api/v1/reseller/api-keys/").status_code == 401


@pytest.mark.django_db
def test_foreign_and_customer_keys_are_404_here(reseller, reseller_key, customer):
    foreign = api_key_create(reseller=factories.ResellerFactory(), name="foreign")[0]
    customer_key = api_key_create(reseller=reseller, customer=customer, name="c")[0]
    api = key_client(reseller_key)
    for key in (foreign, customer_key):
        assert api.get(f"/api/v1/reseller/api-keys/{key.pk}/").status_code == 404
        assert api.delete(f"/api/v1/reseller/api-keys/{key.pk}/").status_code == 404
        key.refresh_from_db()
        assert key.revoked_at is None


@pytest.mark.django_db
def test_customer_keys_cannot_use_the_reseller_key_endpoints(reseller, customer):
    raw = api_key_create(reseller=reseller, customer=customer, name="c")[1]
    response = key_client(raw).get("/api/v1/reseller/api-keys/")
    assert response.status_code == 403 and response.json()["code"] == "reseller_key_required"


@pytest.mark.django_db
def test_only_a_staff_session_creates_reseller_keys(reseller, reseller_key):
    refused = key_client(reseller_key).post("/api/v1/reseller/api-keys/", {"name": "more"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "staff_session_required"
    assert ApiKey.objects.filter(reseller=reseller).count() == 1

    from rest_framework.test import APIClient

    staff = APIClient()
    staff.force_login(factories.StaffUserFactory(reseller=reseller))
    created = staff.post("/api/v1/reseller/api-keys/", {"name": "ci"})
    assert created.status_code == 201
    body = created.json()
    assert body["scope"] == "reseller" and body["key"].startswith(f"fb_{body['prefix']}_")
    assert key_client(body["key"]).get("/api/v1/reseller/customers/").status_code == 200
    blank = staff.post("/api/v1/reseller/api-keys/", {"name": ""})
    assert blank.status_code == 400 and "name" in blank.json()["extra"]["fields"]


# --- commands: list_api_keys, revoke_api_key ------------------------------------------------


@pytest.mark.django_db
def test_list_api_keys_command_prints_prefixes_never_keys(reseller, customer):
    from io import StringIO

    from django.core.management import call_command

    _, raw = api_key_create(reseller=reseller, name="ops")
    revoked = api_key_create(reseller=reseller, customer=customer, name="portal")[0]
    api_key_revoke(api_key=revoked, now=NOW)
    api_key_create(reseller=factories.ResellerFactory(), name="elsewhere")
    out = StringIO()
    call_command("list_api_keys", "--reseller", reseller.slug, stdout=out)
    text = out.getvalue()
    assert "ops" in text and "portal" in text and "elsewhere" not in text
    assert "revoked 2026-10-15" in text and raw not in text and raw.split("_", 2)[2] not in text


@pytest.mark.django_db
def test_revoke_api_key_command_by_prefix_or_id(reseller):
    from io import StringIO

    from django.core.management import CommandError, call_command

    first, first_raw = api_key_create(reseller=reseller, name="one")
    second, second_raw = api_key_create(reseller=reseller, name="two")
    out = StringIO()
    call_command("revoke_api_key", first.prefix, stdout=out)
    call_command("revoke_api_key", str(second.pk), stdout=out)
    assert f"Revoked API key {first.prefix}" in out.getvalue()
    for raw in (first_raw, second_raw):
        assert key_client(raw).get("/api/v1/reseller/customers/").status_code == 401
    with pytest.raises(CommandError, match="No API key"):
        call_command("revoke_api_key", "zzzzzzzz")
