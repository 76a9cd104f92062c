"""Upstream credentials are encrypted at rest, rotate to a new key, and never show."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from accounts.models import SubAccount, UpstreamAccount
from core.crypto import SecretDict, _fernet_for
from tests.factories import StaffUserFactory, SubAccountFactory, UpstreamAccountFactory

SECRET = "tok-VERY-secret-42"


def _raw(model, pk) -> str:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT credentials FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_credentials_round_trip_and_are_ciphertext_in_the_database(db):
    upstream = UpstreamAccountFactory(credentials={"api_id": "id-7", "api_token": SECRET})

    raw = _raw(UpstreamAccount, upstream.pk)
    reloaded = UpstreamAccount.objects.get(pk=upstream.pk)

    assert SECRET not in raw and "id-7" not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert reloaded.credentials == {"api_id": "id-7", "api_token": SECRET}


def test_rotation_reencrypts_under_the_new_first_key(db, settings):
    old_key = settings.FLOWBILL_ENCRYPTION_KEYS[0]
    upstream = UpstreamAccountFactory(credentials={"api_id": "id-7", "api_token": SECRET})
    sub = SubAccountFactory(upstream_account=upstream, credentials={"token": "bf-token-9"})
    new_key = Fernet.generate_key().decode()
    settings.FLOWBILL_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("rotate_encryption_keys")

    # Only the new key is needed from now on.
    only_new = _fernet_for((new_key,))
    assert only_new.decrypt(_raw(UpstreamAccount, upstream.pk).encode())
    assert only_new.decrypt(_raw(SubAccount, sub.pk).encode())
    settings.FLOWBILL_ENCRYPTION_KEYS = [new_key]
    assert UpstreamAccount.objects.get(pk=upstream.pk).credentials["api_token"] == SECRET
    assert SubAccount.objects.get(pk=sub.pk).credentials == {"token": "bf-token-9"}


def test_reading_with_no_matching_key_is_a_clear_configuration_error(db, settings):
    upstream = UpstreamAccountFactory()
    settings.FLOWBILL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(Exception, match="cannot be decrypted"):
        UpstreamAccount.objects.get(pk=upstream.pk)


def test_secrets_do_not_appear_in_repr_str_or_logs(db, caplog):
    upstream = UpstreamAccountFactory(credentials={"api_id": "id-7", "api_token": SECRET})
    creds = UpstreamAccount.objects.get(pk=upstream.pk).credentials

    with caplog.at_level(logging.DEBUG):
        logging.getLogger("flowbill.test").info("credentials are %s / %r", creds, creds)

    assert isinstance(creds, SecretDict)
    assert SECRET not in repr(creds) and SECRET not in str(creds)
    assert SECRET not in repr(upstream) and SECRET not in str(upstream)
    assert SECRET not in caplog.text
    assert "api_token" in caplog.text  # the keys are named, the values are not


def test_admin_never_sends_stored_credentials_to_the_browser(client, db):
    upstream = UpstreamAccountFactory(credentials={"api_id": "id-777", "api_token": SECRET})
    sub = SubAccountFactory(upstream_account=upstream, credentials={"token": "bf-tok-888"})
    client.force_login(StaffUserFactory(reseller=upstream.reseller))

    pages = [
        reverse("admin:accounts_upstreamaccount_change", args=[upstream.pk]),
        reverse("admin:accounts_upstreamaccount_changelist"),
        reverse("admin:accounts_subaccount_change", args=[sub.pk]),
        reverse("admin:accounts_subaccount_changelist"),
    ]
    for page in pages:
        html = client.get(page).content.decode()
        for secret in (SECRET, "id-777", "bf-tok-888"):
            assert secret not in html, page


def test_admin_keeps_stored_secret_when_field_left_empty_and_replaces_when_given(client, db):
    upstream = UpstreamAccountFactory(credentials={"api_id": "id-1", "api_token": SECRET})
    client.force_login(StaffUserFactory(reseller=upstream.reseller))
    url = reverse("admin:accounts_upstreamaccount_change", args=[upstream.pk])
    form = {
        "reseller": upstream.reseller_id,
        "provider": "ipfoxy",
        "name": upstream.name,
        "base_url": "http://127.0.0.1:8765",
        "cost_per_gb": "1.5",
        "mb_bytes": "1048576",
        "requests_per_minute": "50",
        "is_active": "on",
        "api_id": "",
        "api_token": "",
    }

    assert client.post(url, form).status_code == 302
    assert UpstreamAccount.objects.get(pk=upstream.pk).credentials["api_token"] == SECRET

    assert client.post(url, {**form, "api_token": "new-token"}).status_code == 302
    assert UpstreamAccount.objects.get(pk=upstream.pk).credentials == {
        "api_id": "id-1",
        "api_token": "new-token",
    }
