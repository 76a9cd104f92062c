"""Stripe-style signatures: `Flowbill-Signature: t=<unix>,v1=<hex>`.

`v1` is HMAC-SHA256 of `f"{t}.{body}"` keyed with the endpoint's secret (`whsec_...`), over
the exact body bytes sent. Receivers recompute it, compare in constant time and refuse
timestamps older than their tolerance (5 minutes by default) to stop replays.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

SIGNATURE_HEADER = "Flowbill-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TOLERANCE_SECONDS = 300
#: ASCII digits only (`str.isdigit` accepts "²", which `int` refuses), at most 12 of them.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def webhook_secret_generate() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _hmac(secret: str, timestamp: int | str, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    """The `Flowbill-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_hmac(secret, timestamp, body)}"


def webhook_signature_verify(
    *,
    secret: str,
    body: bytes,
    header: str,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when `header` signs `body` with `secret` and its timestamp is within
    `tolerance` seconds of `now`. Any `v1` in the header may match (secret rotation).
    A malformed header (no `t`, several, or one that is not ASCII digits; no `v1` of 64 hex
    digits) is False, never an exception."""
    stamps = []
    signatures = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            stamps.append(value)
        elif name == "v1" and _HEX_DIGEST.fullmatch(value):
            signatures.append(value.encode())
    if len(stamps) != 1 or not _TIMESTAMP.fullmatch(stamps[0]) or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamps[0])) > tolerance:
        return False
    # Over the timestamp's text as received (what the sender signed).
    expected = _hmac(secret, stamps[0], body).encode()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)
