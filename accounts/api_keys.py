"""API keys: create (the full key is returned once), revoke, authenticate.

A key reads `fb_<prefix>_<secret>`: `prefix` is 8 lowercase letters and digits, stored in
clear and unique, used to find the row; `secret` is `secrets.token_urlsafe(32)` (256 random
bits). Only the SHA-256 of the whole key is stored and compared in constant time. Because
the secret may itself contain `_`, a key is split by position, not by `split("_")`.

Every key records who created it: a staff login (`created_by_user`) or the key whose request
minted it (`created_by_key`; a reseller key creating customer keys). Revoking a key revokes,
in the same transaction, every live key it minted, so a leaked reseller key cannot leave
customer keys behind that outlive it. Both rows are locked, so a key being revoked and a key
it is minting at that moment cannot cross: either the new key is revoked with it, or the
creation is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiKey, Customer, Reseller, User
from core.compiled import CompiledQuery
from core.errors import ApplicationError

KEY_PREFIX = "fb_"
PREFIX_LENGTH = 8
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
#: `last_used_at` is written at most this often per key, so busy keys do not write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: A stored hash nobody's key matches: compared against when the prefix is unknown, so a miss
#: costs the same as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"flowbill-no-such-key").hexdigest()


def _hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _new_prefix() -> str:
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))


def api_key_parse_prefix(raw_key: str) -> str | None:
    """The public prefix of a well-formed key, or None for anything malformed."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 200:
        return None
    body = raw_key[len(KEY_PREFIX) :]
    prefix, sep = body[:PREFIX_LENGTH], body[PREFIX_LENGTH : PREFIX_LENGTH + 1]
    secret = body[PREFIX_LENGTH + 1 :]
    if sep != "_" or len(secret) < 20 or any(c not in _PREFIX_ALPHABET for c in prefix):
        return None
    return prefix


class ApiKeyRevokedError(ApplicationError):
    """The key making the request was revoked while it ran (401, like any revoked key)."""

    def __init__(self):
        super().__init__("invalid_api_key", "The API key making this request was revoked.")


@transaction.atomic
def api_key_create(
    *,
    reseller: Reseller,
    name: str,
    customer: Customer | None = None,
    created_by_user: User | None = None,
    created_by_key: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never stored or shown again.

    A customer key must name a customer of `reseller` (the API resolves the customer through
    the caller's reseller first, so a foreign customer never gets this far). The creator is
    the staff login or the API key the request came with (neither: a command or the demo).
    A creating key is locked and must still be live (`ApiKeyRevokedError`, 401).
    """
    name = name.strip()
    if not name:
        raise ApplicationError("api_key_name_required", "An API key needs a name.")
    if customer is not None and customer.reseller_id != reseller.pk:
        raise ApplicationError(
            "api_key_customer_of_other_reseller", "The customer belongs to another reseller."
        )
    if created_by_key is not None:
        creator = ApiKey.objects.select_for_update().row_of(created_by_key).get()
        if creator.revoked_at is not None or creator.reseller_id != reseller.pk:
            raise ApiKeyRevokedError()
    scope = ApiKey.Scope.CUSTOMER if customer is not None else ApiKey.Scope.RESELLER
    for _attempt in range(5):
        prefix = _new_prefix()
        raw_key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    reseller=reseller,
                    customer=customer,
                    scope=scope,
                    name=name,
                    prefix=prefix,
                    secret_hash=_hash_key(raw_key),
                    created_by_user=created_by_user,
                    created_by_key=created_by_key,
                )
        except IntegrityError:  # prefix collision (1 in 36^8 per existing key): draw again
            continue
        return api_key, raw_key
    raise ApplicationError("api_key_prefix_exhausted", "Could not allocate a key prefix.")


@dataclass(frozen=True)
class ApiKeyRevocation:
    api_key: ApiKey
    #: False when the key was revoked already (its first revocation time is kept).
    revoked_now: bool
    #: Live keys it had minted (customer keys) that were revoked with it now.
    minted_keys_revoked: int


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, now: datetime | None = None) -> ApiKeyRevocation:
    """Revoke a key for good, and with it every live key it minted (see the module text).

    Revoking twice keeps the first revocation time, and still revokes any minted key left
    live. Keys cannot mint reseller keys, so the minted keys mint none in turn.
    """
    now = now or timezone.now()
    locked = ApiKey.objects.select_for_update().row_of(api_key).get()
    revoked_now = locked.revoked_at is None
    if revoked_now:
        locked.revoked_at = now
        ApiKey.objects.row_of(locked).update(revoked_at=now)
    api_key.revoked_at = locked.revoked_at
    minted = ApiKey.objects.filter(created_by_key=locked, revoked_at__isnull=True).update(
        revoked_at=now
    )
    return ApiKeyRevocation(api_key=api_key, revoked_now=revoked_now, minted_keys_revoked=minted)


#: The key row with its reseller and customer by prefix (unique), compiled once per process:
#: building this query (three models' columns) cost more CPU than running it, on every
#: request. Global by nature: the key is what tells which reseller the request is for.
_KEY_BY_PREFIX = CompiledQuery(
    lambda prefix: ApiKey.unscoped.select_related("reseller", "customer").filter(prefix=prefix),
    sentinels=["\x00prefix"],
)


def api_key_authenticate(*, raw_key: str, now: datetime) -> ApiKey | None:
    """The active key matching `raw_key`, or None (unknown, malformed, wrong or revoked).

    The secret is compared in constant time, and an unknown prefix still costs one compare.
    `last_used_at` moves forward at most once per `LAST_USED_RESOLUTION`.
    """
    prefix = api_key_parse_prefix(raw_key)
    candidate = None
    if prefix is not None:
        found = _KEY_BY_PREFIX.rows(prefix)
        candidate = found[0] if found else None
    stored_hash = candidate.secret_hash if candidate is not None else _DUMMY_HASH
    matches = hmac.compare_digest(stored_hash, _hash_key(raw_key))
    if candidate is None or not matches or candidate.revoked_at is not None:
        return None
    if candidate.last_used_at is None or now - candidate.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.row_of(candidate).update(last_used_at=now)
        candidate.last_used_at = now
    return candidate
