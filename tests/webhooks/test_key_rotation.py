"""`rotate_encryption_keys` also re-encrypts webhook signing secrets (found through the app
registry: accounts never imports webhooks)."""

from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from accounts.services import encrypted_fields
from core.crypto import _fernet_for
from tests.factories import ResellerFactory
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_endpoint_create


def _raw_signing(pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT signing FROM {WebhookEndpoint._meta.db_table} WHERE id = %s",  # noqa: S608
            [pk],
        )
        return cursor.fetchone()[0]


def test_the_registry_lists_every_encrypted_field():
    names = {(m._meta.label, f) for m, f in encrypted_fields()}
    assert names == {
        ("accounts.UpstreamAccount", "credentials"),
        ("accounts.SubAccount", "credentials"),
        ("accounts.SubAccount", "proxy_login"),
        ("usage.Provisioning", "secret"),
        ("usage.AccessChange", "secret"),
        ("webhooks.WebhookEndpoint", "signing"),
    }


def test_rotation_reencrypts_webhook_signing_secrets(db, settings):
    old_key = settings.FLOWBILL_ENCRYPTION_KEYS[0]
    endpoint, secret = webhook_endpoint_create(
        reseller=ResellerFactory(),
        url="https://hooks.example.com/in",
        enabled_events=["invoice.paid"],
    )
    assert secret not in _raw_signing(endpoint.pk)
    new_key = Fernet.generate_key().decode()
    settings.FLOWBILL_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("rotate_encryption_keys")

    assert _fernet_for((new_key,)).decrypt(_raw_signing(endpoint.pk).encode())
    settings.FLOWBILL_ENCRYPTION_KEYS = [new_key]
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
