"""Where Flowbill may send an upstream account's credentials: the base-URL policy.

An upstream base URL is accepted only if it is `http` or `https`, carries no user info
(`user:pw@`), no query or fragment, and its host is on the provider's allowlist
(`settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS`, from the `FLOWBILL_UPSTREAM_ALLOWED_HOSTS_<PROVIDER>`
variables: the provider's real API host, plus 127.0.0.1 and localhost for the simulator in
debug). An entry `host` allows any port; `host:port` only that port.

`base_url_problem` is pure (no Django imports), so the provider transport can check the URL
again at request time: a row stored before the rule, or written around the services, still
cannot send credentials elsewhere. `validate_upstream_base_url` is the model-side check used
by `UpstreamAccount.clean()`, hence by the admin form, the API and the services alike.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

ALLOWED_SCHEMES = ("http", "https")


def base_url_problem(url: str, *, allowed_hosts: Collection[str] | None) -> str | None:
    """Why `url` may not receive credentials, or None if it may. Never echoes the URL.

    `allowed_hosts=None` checks the scheme and user-info rules only.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "Enter a valid http(s) URL."
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return "Only http and https URLs are allowed."
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "A URL with user info (user:password@) is not allowed."
    if parts.query or parts.fragment:
        return "A base URL takes no query string or fragment."
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "Enter a valid http(s) URL."
    if allowed_hosts is None:
        return None
    allowed = {entry.strip().lower() for entry in allowed_hosts if entry.strip()}
    if host in allowed or (port is not None and f"{host}:{port}" in allowed):
        return None
    return (
        "This host is not on the allowed upstream hosts of this provider "
        "(FLOWBILL_UPSTREAM_ALLOWED_HOSTS_<PROVIDER>)."
    )


def upstream_allowed_hosts(provider: str) -> frozenset[str]:
    """The configured allowlist of `provider` (empty for an unknown provider)."""
    from django.conf import settings

    return frozenset(settings.FLOWBILL_UPSTREAM_ALLOWED_HOSTS.get(provider, ()))


def validate_upstream_base_url(*, provider: str, base_url: str) -> None:
    """Raise a ValidationError naming `base_url` unless the URL may receive credentials.

    An empty base URL means the provider's default, which is always allowed.
    """
    from django.core.exceptions import ValidationError

    if not base_url:
        return
    problem = base_url_problem(base_url, allowed_hosts=upstream_allowed_hosts(provider))
    if problem:
        raise ValidationError({"base_url": problem}, code="upstream_url_not_allowed")
