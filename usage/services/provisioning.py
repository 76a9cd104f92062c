"""Provisioning: Flowbill creates IPFoxy sub-accounts upstream, exactly once; and the manual
add of an IPFoxy sub-account, checked against the upstream's list.

`sub_account_provision` checks the request, generates the upstream name (the reseller's
prefix and a random part, 12 letters and digits: IPFoxy takes 10-15) and a strong password,
and commits a `usage.models.Provisioning` row (password encrypted, its own idempotency key)
before anything is sent. Sending, retries, the lease and the recovery sweep are the shared
machinery of `usage.services.upstream_writes` (kind `provisioning`): every send carries the
row's name, password and key, so a resend after a crash or an unknown outcome replays the
first creation instead of making a second account. When the upstream confirms it, the
`SubAccount` is created in the same transaction (with the proxy password, `provisioned_at`),
linked to the row, its `initial_bytes` recorded in the allocation ledger (sent once, by the
ledger), and `sub_account.provisioned` emitted.

A name the upstream refuses (60400) is looked up in the upstream's list: listed with this
row's password, it is this row's account (an earlier send created it: confirmed); not this
row's, it was certainly not created by it, so the row takes a fresh name and key and sends
again (at most `RENAMES` times per send). Nothing is ever created under two names.

`sub_account_add` is the manual add (API and admin): an IPFoxy `upstream_id` must be listed
by the upstream (`get-sub-account-list` filtered by it), else 400
`upstream_sub_account_unknown`; an upstream that cannot answer is a 503 (502 when it refuses
the credentials). BytesFlows sub-accounts are attached as before. Discovery and the demo
create through `accounts.services.sub_account_create` directly.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import string
from typing import Any

from django.db import transaction

from accounts.models import Customer, Provider, SubAccount, UpstreamAccount
from accounts.services import sub_account_create
from core.errors import ApplicationError
from usage.models import Allocation, Provisioning
from usage.providers.base import ParameterError, UpstreamError
from usage.providers.reseller import EXPIRY_DAYS, ResellerConnector, new_proxy_password
from usage.providers.reseller import new_idempotency_key as _new_key
from usage.services.allocations import (
    _invalid,
    allocation_create,
    allocation_flow_mb,
    allocation_send,
)
from usage.services.connectors import (
    UpstreamStateError,
    connector_for_upstream_account,
    reseller_upstream_check,
)
from usage.services.upstream_writes import (
    WriteKind,
    aware,
    write_enqueue_on_commit,
    write_kind_register,
    write_send,
)
from webhooks.catalogue import SUB_ACCOUNT_PROVISIONED
from webhooks.events import webhook_event_record

logger = logging.getLogger(__name__)

#: Upstream names: the reseller's prefix (its slug's letters and digits, at most
#: `PREFIX_LENGTH`) and random lower-case letters and digits up to `NAME_LENGTH` (IPFoxy:
#: 10-15 characters; at least 6 random ones, 36^6 = 2.2 billion names per prefix).
NAME_LENGTH = 12
PREFIX_LENGTH = 6
DEFAULT_PREFIX = "fb"
_NAME_ALPHABET = string.ascii_lowercase + string.digits
#: Passwords: 14 letters and digits (IPFoxy: 10-15), at least one of each kind (83 bits).
PASSWORD_LENGTH = 14
#: Fresh names one send tries after the upstream refused the name (see the docstring).
RENAMES = 2
#: Tries to draw a name no row of the upstream account has (a clash is a 1 in 10^9 event).
_DRAWS = 20


# --- names and passwords -------------------------------------------------------------------


def provisioning_prefix(*, slug: str) -> str:
    """The reseller's part of its upstream names: its slug's lower-case letters and digits,
    at most `PREFIX_LENGTH` (`DEFAULT_PREFIX` when none)."""
    prefix = re.sub(r"[^a-z0-9]", "", slug.lower())[:PREFIX_LENGTH]
    return prefix or DEFAULT_PREFIX


def provisioning_name_new(*, upstream_account: UpstreamAccount, prefix: str) -> str:
    """A fresh upstream name: `prefix` + random letters and digits, `NAME_LENGTH` in all,
    held by no provisioning and no sub-account of `upstream_account`."""
    for _ in range(_DRAWS):
        tail = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(NAME_LENGTH - len(prefix)))
        name = prefix + tail
        taken = (
            Provisioning.objects.filter(upstream_account=upstream_account, account=name).exists()
            or SubAccount.objects.filter(
                upstream_account=upstream_account, upstream_id__iexact=name
            ).exists()
        )
        if not taken:
            return name
    raise ApplicationError(  # pragma: no cover - 20 clashes in a row
        "provisioning_name_exhausted", "No free upstream name could be drawn; try again."
    )


def provisioning_password_new() -> str:
    """A strong proxy password: `PASSWORD_LENGTH` letters and digits, with at least one
    lower-case letter, one capital and one digit."""
    return new_proxy_password(length=PASSWORD_LENGTH)


# --- recording -----------------------------------------------------------------------------


def provisioning_check(*, customer: Customer, upstream_account: UpstreamAccount) -> None:
    """Raise unless a sub-account may be provisioned for `customer` on `upstream_account`:
    400 naming `upstream_account` (another reseller's), the 409s of
    `reseller_upstream_check` (`provider_has_no_reseller_api`, `upstream_account_inactive`,
    `upstream_credentials_missing`), 409 `customer_suspended`."""
    if customer.reseller_id != upstream_account.reseller_id:
        raise _invalid("upstream_account", "Not one of the customer's reseller's.")
    reseller_upstream_check(upstream_account=upstream_account, credentials=True)
    if customer.status != Customer.Status.ACTIVE:
        raise UpstreamStateError(
            "customer_suspended",
            "The customer is suspended: no sub-account is provisioned until it is reinstated.",
            extra={"customer": customer.pk},
        )


def sub_account_provision(
    *,
    customer: Customer,
    upstream_account: UpstreamAccount,
    label: str = "",
    initial_bytes: int = 0,
    expires_in_days: int = 0,
    actor: str,
    now: dt.datetime,
    send_now: bool = False,
    connector: ResellerConnector | None = None,
) -> Provisioning:
    """Record the creation of a sub-account of `customer` on `upstream_account` (pending),
    with `initial_bytes` (0, or a whole number of the upstream's MB) of traffic expiring
    after `expires_in_days` (0: never) allocated once it exists.

    By default its send is queued once the row commits. `send_now` (the API: the reseller
    waits for the login) sends it in this call instead, after the row committed, and returns
    the row as that send left it: `confirmed` (`sub_account` set), `failed` (`error_code`),
    or still `pending` when the outcome is not known yet (the sweep finishes it); once
    confirmed, the initial traffic's allocation is sent in this call too.
    `connector`: tests."""
    now = aware(now)
    if isinstance(initial_bytes, bool) or not isinstance(initial_bytes, int):
        raise _invalid("initial_bytes", "Give a whole number of bytes.")
    if initial_bytes < 0:
        raise _invalid("initial_bytes", "Must be 0 (no traffic yet) or positive.")
    if initial_bytes:
        allocation_flow_mb(
            upstream_account=upstream_account, nbytes=initial_bytes, field="initial_bytes"
        )
    if isinstance(expires_in_days, bool) or expires_in_days not in EXPIRY_DAYS:
        raise _invalid("expires_in_days", f"One of {', '.join(map(str, EXPIRY_DAYS))}.")
    if not actor or not actor.strip():
        raise _invalid("created_by", "Say who asked for the sub-account.")
    label = (label or "").strip()
    if len(label) > 200:
        raise _invalid("label", "At most 200 characters.")
    provisioning_check(customer=customer, upstream_account=upstream_account)
    prefix = provisioning_prefix(slug=customer.reseller.slug)
    with transaction.atomic():
        row = Provisioning.objects.create(
            upstream_account=upstream_account,
            customer=customer,
            label=label,
            account=provisioning_name_new(upstream_account=upstream_account, prefix=prefix),
            secret={"password": provisioning_password_new()},
            idempotency_key=_new_key(),
            initial_bytes=initial_bytes,
            expires_in_days=expires_in_days,
            created_by=actor.strip()[:160],
            next_attempt_at=now,
            created_at=now,
        )
        if not send_now:
            write_enqueue_on_commit(PROVISIONING, row.pk)
    if send_now:
        provisioning_send(provisioning=row, now=now, connector=connector)
        row.refresh_from_db()
        initial = provisioning_initial_allocation(provisioning=row)
        if initial is not None and initial.status == Allocation.Status.PENDING:
            # Its send was queued when the creation was confirmed; without a broker it ran
            # then (this finds it settled), else the lease keeps the two from both sending.
            allocation_send(allocation=initial, now=now, connector=connector)
    return row


def provisioning_initial_allocation(*, provisioning: Provisioning) -> Allocation | None:
    """The ledger row of `provisioning`'s initial traffic, once it exists."""
    if provisioning.sub_account_id is None or not provisioning.initial_bytes:
        return None
    return (
        Allocation.objects.filter(
            sub_account__provisioning=provisioning, reason=Allocation.Reason.INITIAL
        )
        .order_by("pk")
        .first()
    )


# --- the write kind ------------------------------------------------------------------------


def _check(row: Provisioning) -> None:
    """A row is sendable while its upstream account's reseller API is usable. A customer
    suspended meanwhile does not stop it: the sub-account is created (access is the
    suspension's business) and its initial traffic waits (the ledger refuses it)."""
    reseller_upstream_check(upstream_account=row.upstream_account)


def _ours(connector: ResellerConnector, row: Provisioning) -> bool:
    """Whether the upstream lists `row.account` with the row's password (True), lists it
    with another or does not list it (False: this row did not create it)."""
    page = connector.sub_accounts_page(page=1, page_size=10, account=row.account)
    for listed in page.rows:
        if listed.upstream_id == row.account:
            return listed.password == row.secret.get("password")
    return False


def _rename(row: Provisioning) -> None:
    """Give the row a fresh name and key (committed before the next send: a crash after it
    resends under the new ones)."""
    prefix = provisioning_prefix(slug=row.customer.reseller.slug)
    name = provisioning_name_new(upstream_account=row.upstream_account, prefix=prefix)
    key = _new_key()
    Provisioning.objects.row_of(row).update(account=name, idempotency_key=key)
    logger.info("provisioning %s: upstream name %s refused, now %s", row.pk, row.account, name)
    row.account, row.idempotency_key = name, key


def _send(row: Provisioning, connector: ResellerConnector | None) -> None:
    upstream = connector or connector_for_upstream_account(upstream_account=row.upstream_account)
    for renames_left in range(RENAMES, -1, -1):
        try:
            upstream.create_sub_account(
                account=row.account,
                password=row.secret["password"],
                flow_mb=0,
                idempotency_key=row.idempotency_key,
                day=0,
            )
            return
        except ParameterError:
            if _ours(upstream, row):
                return  # an earlier send created it: the upstream holds this row's account
            if not renames_left:
                raise
            _rename(row)


def _confirmed(row: Provisioning, now: dt.datetime) -> None:
    """The upstream holds the account: create (or link) the sub-account, allocate the
    initial traffic through the ledger, emit `sub_account.provisioned`."""
    password = row.secret["password"]
    sub_account = (
        SubAccount.objects.filter(upstream_account=row.upstream_account, upstream_id=row.account)
        .exclude(status=SubAccount.Status.CLOSED)
        .first()
    )  # attached by hand while the creation was pending: that one is linked
    if sub_account is None:
        sub_account = sub_account_create(
            customer=row.customer,
            upstream_account=row.upstream_account,
            upstream_id=row.account,
            label=row.label,
        )
    sub_account.proxy_login = {**(sub_account.proxy_login or {}), "password": password}
    sub_account.provisioned_at = now
    sub_account.save(update_fields=["proxy_login", "provisioned_at"])
    row.sub_account = sub_account
    row.save(update_fields=["sub_account"])
    if row.initial_bytes:
        try:
            allocation_create(
                sub_account=sub_account,
                bytes=row.initial_bytes,
                expires_in_days=row.expires_in_days,
                reason=Allocation.Reason.INITIAL,
                actor=row.created_by,
                now=now,
            )
        except ApplicationError as exc:  # e.g. the customer was suspended meanwhile
            row.error_code, row.error = exc.code, f"initial traffic not allocated: {exc}"
            row.save(update_fields=["error_code", "error"])
    webhook_event_record(
        reseller_id=row.customer.reseller_id,
        event_type=SUB_ACCOUNT_PROVISIONED,
        subject_id=sub_account.pk,
        now=now,
    )


PROVISIONING = write_kind_register(
    WriteKind(
        name="provisioning",
        model=Provisioning,
        related=("customer__reseller", "upstream_account"),
        check=_check,
        send=_send,
        confirmed=_confirmed,
    )
)


def provisioning_send(
    *, provisioning: Provisioning, now: dt.datetime, connector: ResellerConnector | None = None
) -> Provisioning | None:
    """Send one pending, due provisioning and record the outcome (see `write_send`)."""
    return write_send(PROVISIONING, row=provisioning, now=now, connector=connector)


# --- the manual add ------------------------------------------------------------------------


def upstream_sub_account_check(
    *,
    upstream_account: UpstreamAccount,
    upstream_id: str,
    connector: ResellerConnector | None = None,
) -> dict[str, Any]:
    """Ask IPFoxy whether it lists `upstream_id` (`get-sub-account-list` filtered by it):
    its proxy login (`password`, `ip_whitelist`) when it does; 400
    `upstream_sub_account_unknown` naming `upstream_id` when it does not (or it is the main
    account); the upstream's code when it cannot say (503 to try again, 502 when it refused)."""
    unknown = ApplicationError(
        "upstream_sub_account_unknown",
        f"upstream_id: {upstream_account.name!r} does not list a sub-account {upstream_id[:64]!r}.",
        extra={"fields": {"upstream_id": ["The upstream does not list this sub-account."]}},
    )
    try:
        upstream = connector or connector_for_upstream_account(upstream_account=upstream_account)
        page = upstream.sub_accounts_page(page=1, page_size=10, account=upstream_id)
    except ValueError:  # not a name the upstream could hold
        raise unknown from None
    except ParameterError:  # IPFoxy answers 60400 for a name it does not know
        raise unknown from None
    except UpstreamError as exc:
        raise ApplicationError(
            exc.code,
            f"The upstream could not be asked whether it has {upstream_id[:64]!r}: {exc}",
            extra={"retryable": exc.retryable},
        ) from exc
    for listed in page.rows:
        if listed.upstream_id == upstream_id and not listed.is_main:
            login: dict[str, Any] = {"ip_whitelist": list(listed.ip_whitelist)}
            if listed.password:
                login["password"] = listed.password
            return login
    raise unknown


def sub_account_add(
    *,
    customer: Customer,
    upstream_account: UpstreamAccount,
    upstream_id: str,
    credentials: dict[str, str] | None = None,
    connector: ResellerConnector | None = None,
    **fields: Any,
) -> SubAccount:
    """Attach an existing upstream sub-account to `customer` (the API's and the admin's
    manual add): an IPFoxy `upstream_id` is checked against the upstream's list first
    (`upstream_sub_account_check`) and its proxy login kept; BytesFlows as before. Then
    `accounts.services.sub_account_create` with the rest."""
    login = None
    duplicate = (
        SubAccount.objects.filter(upstream_account=upstream_account, upstream_id=upstream_id)
        .exclude(status=SubAccount.Status.CLOSED)
        .exists()
    )  # refused by `sub_account_create` below without asking the upstream
    if upstream_account.provider == Provider.IPFOXY and not duplicate:
        login = upstream_sub_account_check(
            upstream_account=upstream_account, upstream_id=upstream_id, connector=connector
        )
    with transaction.atomic():
        sub_account = sub_account_create(
            customer=customer,
            upstream_account=upstream_account,
            upstream_id=upstream_id,
            credentials=credentials,
            **fields,
        )
        if login:
            sub_account.proxy_login = login
            sub_account.save(update_fields=["proxy_login"])
    return sub_account
