"""Which webhook URLs Flowbill will POST to (checked when an endpoint is saved and again
before every send; the send itself goes through `core.http`, which refuses any resolved
address that is not public, whatever this module let through).

Always: http(s) only, no user name or password in the URL, a host present. Unless the
operator set `FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS` for a local receiver (DEBUG alone does
not lift the guard): only `https`; no address literal that is not public, in any numeric
form (`127.1`, `2130706433`, `[::7f00:1]`, `[64:ff9b::a00:1]`); no special-use or single-label name
(`localhost`, `*.localhost`, `*.local`, `*.internal`, `*.localdomain`, `*.home.arpa`,
`metadata`), with or without a trailing dot, after IDNA mapping (`localhost。` is
`localhost.`); and, when the name resolves at save time (within 2 s), none of its addresses
may be non-public (a name that does not resolve yet is accepted: every send resolves again).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from core import http as outbound

#: Names that never lead to a public receiver (RFC 6761, RFC 8375, ICANN's `.internal`).
SPECIAL_USE_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "localdomain",
    "home.arpa",
    "arpa",
    "test",
    "invalid",
    "onion",
)
NOT_PUBLIC = "Use a public host. This one is, or resolves to, a private or reserved address."


#: Seconds a save waits for the host's name lookup (a slow name server must not hold a web
#: worker); past it the URL is accepted and every send checks the addresses again.
SAVE_LOOKUP_SECONDS = 2.0


def webhook_private_hosts_allowed() -> bool:
    """The operator's explicit opt-in for a receiver on a private network (tests, a local
    setup). Not DEBUG: a deployment that forgot `DJANGO_DEBUG=0` must not lose the guard."""
    return bool(settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS)


def _literal_address(host: str) -> str | None:
    """The address a host names literally, including inet_aton's numeric forms."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _host_problem(host: str, port: int, *, resolve: bool) -> str | None:
    try:  # IDNA: full-width and ideographic dots become dots, as a resolver would read them
        name = host.encode("idna").decode("ascii").rstrip(".").lower()
    except UnicodeError:
        return "Enter a valid host name."
    if not name:
        return "The URL needs a host."
    address = _literal_address(name)
    if address is not None:
        return None if outbound.address_is_public(address) else NOT_PUBLIC
    if "." not in name or any(
        name == suffix or name.endswith("." + suffix) for suffix in SPECIAL_USE_SUFFIXES
    ):
        return NOT_PUBLIC
    if resolve:
        try:
            addresses = outbound.resolve_within(name, port, SAVE_LOOKUP_SECONDS)
        except outbound.OutboundError:
            return None
        if not all(outbound.address_is_public(a) for a in addresses):
            return NOT_PUBLIC
    return None


def webhook_url_problem(url: str, *, resolve: bool = False) -> str | None:
    """Why `url` cannot be a webhook endpoint, or None when it can. `resolve` also looks the
    host up (when saving; a send resolves through the guarded client anyway)."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "Enter a valid URL."
    lenient = webhook_private_hosts_allowed()
    allowed = {"https", "http"} if lenient else {"https"}
    if parts.scheme not in allowed:
        return "Use an http(s):// URL." if lenient else "Use an https:// URL."
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "Do not put a user name or password in the URL."
    if not hostname:
        return "The URL needs a host."
    if lenient:
        return None
    return _host_problem(hostname, port, resolve=resolve)
