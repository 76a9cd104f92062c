"""Cutting off and restoring an IPFoxy sub-account's proxy access upstream, exactly once.

IPFoxy lets a proxy client in with the sub-account's password, or without one from an IP on
its whitelist. So a **block** sets a throwaway strong password nobody is told and clears the
whitelist; a **restore** sets a new strong password (the customer is shown it:
`SubAccount.proxy_login["password"]`) and puts back the whitelist Flowbill kept.

Every change is an `AccessChange` row (a recorded write: `usage.services.upstream_writes`
sends, retries and recovers it) committed before anything is sent, under the sub-account's
row lock. A newer change of the same sub-account marks a still-pending one `superseded`
(there is at most one pending per sub-account), so suspending then reinstating quickly ends
open, and the other way round ends blocked. A superseded change whose send may still be on
the wire (claimed, its lease running) holds the newer one back until that lease ends, so the
two never race upstream; the resend sweep sends the newer one then.

Sending: both upstream writes set values (`update-pass`, `update-ip-whitelist`), so a resend
repeats them harmlessly. Each send first reads the sub-account's row of
`get-sub-account-list` (filtered to it) and keeps a non-empty whitelist it finds in
`SubAccount.proxy_login["ip_whitelist"]` (Flowbill may not know it otherwise; a block
clears it only after keeping it). A restore puts back the whitelist it finds upstream when
one is there (the block never got to clear it), else the kept one. When confirmed,
`SubAccount.access` becomes `blocked` / `open`, and a restore's password becomes the proxy
password shown to the customer (the throwaway password of a block is never shown).

Only IPFoxy sub-accounts: BytesFlows publishes no write API, so nothing is recorded for them
(they stay monitor-only; `access_change_record` returns None).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

from accounts.models import SubAccount
from usage.models import AccessChange
from usage.providers.reseller import ResellerConnector
from usage.providers.reseller import new_proxy_password as _proxy_password
from usage.services.connectors import (
    RESELLER_PROVIDERS,
    reseller_api_check,
    reseller_connector_for_sub_account,
)
from usage.services.upstream_writes import (
    WriteKind,
    aware,
    write_enqueue_on_commit,
    write_kind_register,
    write_send,
    writes_resend_pending,
)

logger = logging.getLogger(__name__)

Action = AccessChange.Action
Status = AccessChange.Status

#: `AccessChange.reason` values.
REASON_CUSTOMER_SUSPENDED = "customer_suspended"
REASON_CUSTOMER_REINSTATED = "customer_reinstated"
REASON_SUB_ACCOUNT_CLOSED = "sub_account_closed"

PASSWORD_LENGTH = 15  # IPFoxy: 10-15 characters (letters and digits are always accepted)
_ACCESS = {Action.BLOCK: "blocked", Action.RESTORE: "open"}


def new_proxy_password() -> str:
    """A strong proxy password within IPFoxy's rules: 15 letters and digits (about 89 bits),
    at least one lower-case letter, one upper-case letter and one digit."""
    return _proxy_password(length=PASSWORD_LENGTH)


def access_changes_apply(sub_account: SubAccount) -> bool:
    """Whether access changes are recorded for `sub_account`: IPFoxy ones only."""
    return sub_account.upstream_account.provider in RESELLER_PROVIDERS


def _lock(sub_account: SubAccount) -> SubAccount:
    """Lock the sub-account row, then read it (as accounts.sub_accounts does)."""
    SubAccount.objects.select_for_update().row_of(sub_account).values_list("pk").get()
    return (
        SubAccount.objects.select_related("customer", "upstream_account").row_of(sub_account).get()
    )


def access_change_pending(*, sub_account: SubAccount) -> AccessChange | None:
    return AccessChange.objects.filter(sub_account=sub_account, status=Status.PENDING).first()


def access_change_record(
    *,
    sub_account: SubAccount,
    action: str,
    reason: str,
    actor: str,
    now: dt.datetime,
    force: bool = False,
) -> AccessChange | None:
    """Record a block or restore of `sub_account` (pending) and queue its send on commit.

    Under the sub-account's row lock: a pending change with the same action is already on
    its way (returned as is); a pending one with the other action is superseded; with none
    pending, a sub-account already in the wanted state gets nothing (None) unless `force`.
    Nothing for a BytesFlows sub-account (None)."""
    now = aware(now)
    if action not in Action.values:
        raise ValueError(f"unknown access action {action!r}")
    if not access_changes_apply(sub_account):
        return None
    with transaction.atomic():
        locked = _lock(sub_account)
        pending = access_change_pending(sub_account=locked)
        if pending is not None and pending.action == action:
            return pending
        if pending is None and locked.access == _ACCESS[action] and not force:
            return None
        not_before = now
        if pending is not None:
            if pending.maybe_applied and pending.next_attempt_at > now:
                # Its send may be on the wire: this one waits until that lease ends.
                not_before = pending.next_attempt_at
            pending.status = Status.SUPERSEDED
            pending.settled_at = now
            pending.save(update_fields=["status", "settled_at"])
        kept = list((locked.proxy_login or {}).get("ip_whitelist") or [])
        change = AccessChange.objects.create(
            sub_account=locked,
            action=action,
            reason=reason[:40],
            secret={
                "password": new_proxy_password(),
                "ip_whitelist": [] if action == Action.BLOCK else kept,
            },
            created_by=(actor or "system").strip()[:160],
            next_attempt_at=not_before,
            created_at=now,
        )
        write_enqueue_on_commit(ACCESS_CHANGE, change.pk)
    return change


def sub_account_access_block(
    *, sub_account: SubAccount, reason: str, actor: str, now: dt.datetime
) -> AccessChange | None:
    """Cut `sub_account` off upstream: a throwaway password, the whitelist cleared."""
    return access_change_record(
        sub_account=sub_account, action=Action.BLOCK, reason=reason, actor=actor, now=now
    )


def sub_account_access_restore(
    *, sub_account: SubAccount, reason: str, actor: str, now: dt.datetime
) -> AccessChange | None:
    """Let `sub_account` in again upstream: a new password (shown to the customer once
    confirmed) and the whitelist Flowbill kept."""
    return access_change_record(
        sub_account=sub_account, action=Action.RESTORE, reason=reason, actor=actor, now=now
    )


# --- sending -------------------------------------------------------------------------------


def _upstream_whitelist(upstream: ResellerConnector, account: str) -> tuple[str, ...]:
    """The sub-account's whitelist as the upstream holds it now (empty when it is not
    listed: the password write then tells what is wrong)."""
    page = upstream.sub_accounts_page(page=1, page_size=10, account=account)
    for row in page.rows:
        if row.upstream_id == account:
            return tuple(row.ip_whitelist)
    return ()


def _keep_whitelist(sub_account: SubAccount, whitelist: tuple[str, ...]) -> list[str]:
    """Store a non-empty upstream whitelist in `proxy_login` (under the row lock); return
    the whitelist Flowbill keeps for the sub-account."""
    with transaction.atomic():
        locked = _lock(sub_account)
        login = dict(locked.proxy_login or {})
        if whitelist and list(whitelist) != login.get("ip_whitelist"):
            login["ip_whitelist"] = list(whitelist)
            locked.proxy_login = login
            locked.save(update_fields=["proxy_login"])
        return list(login.get("ip_whitelist") or [])


def _send(change: AccessChange, connector: ResellerConnector | None) -> None:
    sub_account = change.sub_account
    upstream = connector or reseller_connector_for_sub_account(sub_account=sub_account)
    account = sub_account.upstream_id
    current = _upstream_whitelist(upstream, account)
    kept = _keep_whitelist(sub_account, current)
    upstream.update_password(account=account, password=change.secret["password"])
    if change.action == Action.BLOCK:
        upstream.update_ip_whitelist(account=account, ips=[])
    else:
        upstream.update_ip_whitelist(account=account, ips=list(current) or kept)


def _confirmed(change: AccessChange, now: dt.datetime) -> None:
    """Under the change's row lock, in the transaction that confirms it."""
    locked = _lock(change.sub_account)
    locked.access = _ACCESS[change.action]
    fields = ["access"]
    if change.action == Action.RESTORE:
        login = dict(locked.proxy_login or {})
        login["password"] = change.secret["password"]
        locked.proxy_login = login
        fields.append("proxy_login")
    locked.save(update_fields=fields)


def _settled(change: AccessChange, now: dt.datetime) -> None:
    logger.error(
        "access change %s (%s of sub-account %s) ended %s: %s",
        change.pk, change.action, change.sub_account_id, change.status, change.error,
        extra={"error_code": change.error_code},
    )  # fmt: skip


ACCESS_CHANGE = write_kind_register(
    WriteKind(
        name="access_change",
        model=AccessChange,
        related=("sub_account__customer", "sub_account__upstream_account"),
        check=lambda change: reseller_api_check(sub_account=change.sub_account),
        send=_send,
        confirmed=_confirmed,
        settled=_settled,
    )
)


def access_change_send(
    *, change: AccessChange, now: dt.datetime, connector: ResellerConnector | None = None
) -> AccessChange | None:
    """Send one pending, due change and record the outcome (see upstream_writes)."""
    return write_send(ACCESS_CHANGE, row=change, now=now, connector=connector)


def access_changes_resend_pending(*, now: dt.datetime) -> list[int]:
    return writes_resend_pending(ACCESS_CHANGE, now=now)
