"""Encryption at rest (Fernet / MultiFernet from `cryptography`): upstream credentials, webhook
signing secrets, stored idempotent responses.

`FLOWBILL_ENCRYPTION_KEYS` is a comma-separated list of Fernet keys: the first encrypts,
all decrypt. Rotating keys means putting a new key first and running
`manage.py rotate_encryption_keys`, which re-encrypts every stored secret under it.

Decrypted values are `SecretDict`s: ordinary dicts whose `repr`/`str` never show the
values, so a credential that slips into a log line or an error message stays hidden.
"""

import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretDict(dict):
    """A dict of secrets that never prints its values."""

    def __repr__(self) -> str:
        return f"SecretDict(keys={sorted(self)!r})"

    __str__ = __repr__


@cache
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FLOWBILL_ENCRYPTION_KEYS must be comma-separated url-safe base64 Fernet keys"
        ) from exc


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FLOWBILL_ENCRYPTION_KEYS))


def encrypt_secret(value: dict[str, Any]) -> str:
    return fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_secret(token: str) -> SecretDict:
    try:
        return SecretDict(json.loads(fernet().decrypt(token.encode())))
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with any key in FLOWBILL_ENCRYPTION_KEYS"
        ) from exc


def rotate_secret(token: str) -> str:
    """Re-encrypt a stored token under the first key (raises if no key can read it)."""
    return fernet().rotate(token.encode()).decode()
