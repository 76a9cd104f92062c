"""Who an email sent for a reseller is from: the one place that decides `From`, `Reply-To`,
`To`/`Cc` and `Message-ID` of invoice, credit note and usage alert emails.

A reseller's `sender_email` is a claim, not a proof: whoever edits its settings can type any
address, another reseller's included. So it is the `From` only when its domain is one the
platform operator verified (the platform's SMTP may send for it: SPF, DKIM): a domain listed in
`FLOWBILL_SENDER_DOMAINS` (shared by every reseller), or the reseller's own
`verified_sender_domain`, which only a superuser sets. Otherwise the email is from the
platform's address (`DEFAULT_FROM_EMAIL`) under the reseller's name, with `Reply-To` the
`sender_email`. Message-IDs are always on the platform's domain: the platform sent it.

The display name is the reseller's name folded to one printable line and quoted or encoded by
`email.utils.formataddr`, so quotes, newlines or non-ASCII in it can never add a header. The
first recipient is the `To`; the others (a customer's `cc_emails`, at most
`accounts.validators.MAX_CC_EMAILS`) go in `Cc`, never more than that many (a list saved
before the cap is cut, with a warning in the log).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formataddr, make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.utils.encoding import punycode

from accounts.models import Reseller
from accounts.validators import MAX_CC_EMAILS

logger = logging.getLogger(__name__)


def _ascii_domain(domain: str) -> str:
    """A domain in lower case and its ASCII (IDNA) form; "" when it cannot be one."""
    domain = domain.strip().rstrip(".").lower()
    try:
        return punycode(domain) if domain else ""
    except UnicodeError:
        return ""


def platform_address() -> str:
    """The platform's own sender address: the address part of `DEFAULT_FROM_EMAIL`."""
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL


def platform_domain() -> str:
    return _ascii_domain(platform_address().rpartition("@")[2])


def verified_sender_domains() -> frozenset[str]:
    """`FLOWBILL_SENDER_DOMAINS`: domains every reseller may send from (ASCII, lower case)."""
    listed = (_ascii_domain(d) for d in getattr(settings, "FLOWBILL_SENDER_DOMAINS", ()))
    return frozenset(d for d in listed if d)


def sender_email_verified(*, reseller: Reseller) -> bool:
    """Whether the reseller's `sender_email` may be the `From`: its domain is verified by the
    operator (`FLOWBILL_SENDER_DOMAINS`) or by a superuser for this reseller. Exact domains
    only: `acme.example` does not verify `mail.acme.example`."""
    local, _, domain = reseller.sender_email.strip().rpartition("@")
    domain = _ascii_domain(domain)
    if not local or not domain or not local.isascii():
        return False
    own = _ascii_domain(reseller.verified_sender_domain)
    return domain in verified_sender_domains() or (bool(own) and domain == own)


def display_name(name: str) -> str:
    """`name` on one line of printable characters (newlines, tabs and controls removed)."""
    printable = "".join(c if c.isprintable() else " " for c in name)
    return " ".join(printable.split())


@dataclass(frozen=True)
class EmailEnvelope:
    """The addressing of one email: pass `as_kwargs()` to an `EmailMessage`."""

    from_email: str
    to: list[str]
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    message_id: str = ""

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "from_email": self.from_email,
            "to": list(self.to),
            "cc": list(self.cc),
            "reply_to": list(self.reply_to),
            "headers": {"Message-ID": self.message_id} if self.message_id else {},
        }


def reseller_email_envelope(
    *, reseller: Reseller, recipients: Sequence[str], idstring: str
) -> EmailEnvelope:
    """The addressing of an email sent for `reseller` (see the module text). `idstring`
    names the message in its Message-ID (e.g. `<invoice id>.<delivery sequence>`)."""
    name = display_name(reseller.name)
    sender = reseller.sender_email.strip()
    if sender and sender_email_verified(reseller=reseller):
        local, _, domain = sender.rpartition("@")
        from_email = formataddr((name, f"{local}@{_ascii_domain(domain)}"))
        reply_to = []
    else:
        from_email = formataddr((name, platform_address()))
        reply_to = [sender] if sender else []
    first, *others = [r for r in recipients if r] or [""]
    if len(others) > MAX_CC_EMAILS:  # saved before the cap existed: never more than 5 Cc
        logger.warning(
            "reseller %s: %d Cc addresses, the first %d kept",
            reseller.pk,
            len(others),
            MAX_CC_EMAILS,
        )
    return EmailEnvelope(
        from_email=from_email,
        to=[first] if first else [],
        cc=others[:MAX_CC_EMAILS],
        reply_to=reply_to,
        message_id=make_msgid(idstring=idstring, domain=platform_domain() or None),
    )
