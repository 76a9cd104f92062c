"""API keys record who created them; revoking a key revokes the keys it minted, and every
revoking path (service, API, admin action, bulk action, command) says how many."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.api_keys import api_key_create, api_key_revoke
from accounts.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)


@pytest.fixture
def family(reseller, customer):
    """A reseller key and two customer keys it minted (one already revoked), plus a customer
    key a command created."""
    parent, _ = api_key_create(reseller=reseller, name="parent")
    live, _ = api_key_create(reseller=reseller, customer=customer, name="c1", created_by_key=parent)
    gone, _ = api_key_create(reseller=reseller, customer=customer, name="c2", created_by_key=parent)
    api_key_revoke(api_key=gone, now=NOW)
    unrelated, _ = api_key_create(reseller=reseller, customer=customer, name="c3")
    return {"parent": parent, "live": live, "gone": gone, "unrelated": unrelated}


def _revoked(*keys) -> list[bool]:
    return [ApiKey.objects.get(pk=k.pk).revoked_at is not None for k in keys]


def test_revoking_a_key_revokes_only_its_live_minted_keys(family):
    done = api_key_revoke(api_key=family["parent"], now=NOW)
    assert (done.revoked_now, done.minted_keys_revoked) == (True, 1)
    assert _revoked(family["live"], family["unrelated"]) == [True, False]
    assert ApiKey.objects.get(pk=family["gone"].pk).revoked_at == NOW  # kept its own time


def test_revoking_again_keeps_the_time_and_catches_a_straggler(reseller, customer, family):
    api_key_revoke(api_key=family["parent"], now=NOW)
    # a key minted in the instant of the revocation (the row was read just before it)
    straggler = ApiKey.objects.create(
        reseller=reseller,
        customer=customer,
        scope="customer",
        name="late",
        prefix="late0001",
        secret_hash="0" * 64,
        created_by_key=family["parent"],
    )
    again = api_key_revoke(api_key=family["parent"], now=NOW + dt.timedelta(hours=1))
    assert (again.revoked_now, again.minted_keys_revoked) == (False, 1)
    assert ApiKey.objects.get(pk=family["parent"].pk).revoked_at == NOW
    assert _revoked(straggler) == [True]


def test_the_revoke_command_says_how_many_customer_keys_went_with_it(family):
    out = StringIO()
    call_command("revoke_api_key", family["parent"].prefix, stdout=out)
    assert out.getvalue().strip().endswith("1 customer key(s) it created revoked with it.")
    assert _revoked(family["live"]) == [True]


def test_bulk_revoke_counts_each_key_once(client, reseller, family):
    client.force_login(factories.StaffUserFactory(reseller=reseller))
    response = client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [family["parent"].pk, family["live"].pk]},
        follow=True,
    )
    assert "1 API key(s) revoked, and the 1 customer key(s) they had created." in (
        response.content.decode()
    )
    assert _revoked(family["parent"], family["live"], family["unrelated"]) == [True, True, False]


def test_a_staff_session_is_recorded_as_the_creator_of_reseller_keys(reseller):
    staff = factories.StaffUserFactory(reseller=reseller, username="bob")
    api = APIClient()
    api.force_login(staff)
    created = api.post("/api/v1/reseller/api-keys/", {"name": "ci"}, format="json")
    assert created.status_code == 201
    assert created.json()["created_by_key"] is None
    key = ApiKey.objects.get(pk=created.json()["id"])
    assert (key.created_by_user, key.created_by) == (staff, "login bob")


def test_the_admin_key_page_shows_the_creator(admin_client, reseller, family):
    page = admin_client.get(reverse("admin:accounts_apikey_change", args=[family["live"].pk]))
    assert "parent (" in page.content.decode()  # created by (API key): the parent's name
