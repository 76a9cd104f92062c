"""Which webhook URLs Flowbill will POST to.

http(s) only, no user name or password in the URL, a host present. Outside DEBUG only
`https`, and never a loopback, private, link-local or reserved address literal nor
`localhost` (the sender must not be turned against the internal network). Checked when an
endpoint is saved and again before every send.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings


def webhook_url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook endpoint, or None when it can."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "Enter a valid URL."
    allowed = {"https", "http"} if settings.DEBUG else {"https"}
    if parts.scheme not in allowed:
        return "Use an https:// URL." if not settings.DEBUG else "Use an http(s):// URL."
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "Do not put a user name or password in the URL."
    if not hostname:
        return "The URL needs a host."
    if settings.DEBUG:
        return None
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return "Use a public host."
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        return None
    if not address.is_global:
        return "Use a public host."
    return None
