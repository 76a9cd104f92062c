"""IPFoxy reseller writes and account reads, mixed into `IPFoxyConnector` (one transport, one
set of credentials, one request budget for sync and writes).

Upstream facts (../shared/upstream/ipfoxy-reseller-endpoints.md): paths under
`/ip/open-api/`; the same `api-id`/`api-token` headers; POST bodies are form-data (sent as
multipart by default, `form_encoding="urlencoded"` otherwise); success is `"code": 0` with
HTTP 200, errors are HTTP 200 with a business code (`ipfoxy_parse.IPFOXY_ERRORS`: 60300
InsufficientBalanceError, 60400 ParameterError, 60401 AuthError, 50000 RateLimitedError,
60500/10086 TransientError, 8700 RetryableRefusalError). Flow is whole MB out
(bytes = flow_mb * mb_bytes); counters come back as KB text (1 KB = kb_bytes, default
mb_bytes / 1024: binary) or MB text (`residential-data`).

Writes go through `Transport.post_form`: budget priority, retries with backoff that resend
the identical form (the same idempotency key), `OutcomeUnknownError` when an attempt may
have been applied and none settled it (see `reseller.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from dataclasses import replace
from typing import Any

from usage.providers import parsing as p
from usage.providers import reseller as r
from usage.providers.base import DiscoveredSubAccount
from usage.providers.ipfoxy_parse import check_body, kb_ratio, kb_to_bytes, parse_sub_account_page
from usage.providers.transport import Transport, secrets_scrubbed

API = "/ip/open-api/"
CREATE_PATH = API + "create-sub-account"
ALLOCATE_PATH = API + "allocate-flow-sub-account"
UPDATE_PASS_PATH = API + "update-pass"
UPDATE_WHITELIST_PATH = API + "update-ip-whitelist"
SUB_ACCOUNT_FLOW_PATH = API + "get-sub-account-flow"
SUB_ACCOUNTS_PATH = API + "get-sub-account-list"
RESIDENTIAL_PATH = API + "residential-data"
FLOW_CACHE = dt.timedelta(minutes=1)  # "one-minute cache" on get-sub-account-flow
MAX_PAGES = 10_000


class IPFoxyResellerMixin:
    """The `ResellerConnector` methods; the host class provides the attributes below."""

    provider: str
    transport: Transport
    mb_bytes: int
    kb_bytes: int | None
    form_encoding: str
    _headers: dict[str, str]

    # ------------------------------------------------------------------ writes

    def create_sub_account(
        self, *, account: str, password: str, flow_mb: int, idempotency_key: str, day: int = 0
    ) -> r.CreatedSubAccount:
        """Create `account` with `password` and `flow_mb` MB of traffic expiring after `day`
        days (0: never). A retry of the same key answers the first success again."""
        form = {
            "account": r.check_new_account(account),
            "password": r.check_password(password),
            "flow": str(r.check_flow_mb(flow_mb, minimum=0)),
            "idempotency_key": r.check_key(idempotency_key),
            "day": str(r.check_day(day)),
        }
        ctx = {
            "account": account,
            "flow_mb": flow_mb,
            "day": day,
            "idempotency_key": idempotency_key,
        }

        def created(payload: Any, context: dict[str, Any]) -> str:
            data = p.mapping(check_body(payload, context), "data", context)
            if data.get("account") != account:
                raise p.bad("`account` in the answer is not the one created", context)
            echoed = data.get("password")
            return password if echoed in (None, "") else p.text(echoed, "password", context)

        upstream_password, attempts = self._write(
            CREATE_PATH, form, ctx, created, secret_fields=("password",)
        )
        return r.CreatedSubAccount(
            account=account, password=upstream_password, flow_mb=flow_mb,
            allocated_bytes=flow_mb * self.mb_bytes, day=day, idempotency_key=idempotency_key,
            attempts=attempts,
        )  # fmt: skip

    def allocate_flow(
        self, *, account: str, flow_mb: int, idempotency_key: str, day: int = 0
    ) -> r.Allocation:
        """Add `flow_mb` MB to `account`, expiring after `day` days (0: never). A retry of
        the same key answers the first success again and allocates nothing more."""
        form = {
            "account": r.check_account(account),
            "flow": str(r.check_flow_mb(flow_mb, minimum=1)),
            "idempotency_key": r.check_key(idempotency_key),
            "day": str(r.check_day(day)),
        }
        ctx = {
            "account": account,
            "flow_mb": flow_mb,
            "day": day,
            "idempotency_key": idempotency_key,
        }
        _, attempts = self._write(ALLOCATE_PATH, form, ctx, check_body)
        return r.Allocation(
            account=account, flow_mb=flow_mb, bytes=flow_mb * self.mb_bytes, day=day,
            idempotency_key=idempotency_key, attempts=attempts,
        )  # fmt: skip

    def update_password(self, *, account: str, password: str) -> r.WriteAck:
        """Set the proxy password of `account` (the old one stops working)."""
        form = {"account": r.check_account(account), "password": r.check_password(password)}
        _, attempts = self._write(
            UPDATE_PASS_PATH, form, {"account": account}, check_body, secret_fields=("password",)
        )
        return r.WriteAck(account=account, attempts=attempts)

    def update_ip_whitelist(self, *, account: str, ips: Sequence[str]) -> r.WriteAck:
        """Replace the IP whitelist of `account` (whitelisted IPs need no password); an empty
        sequence clears it."""
        form = {"account": r.check_account(account), "ip": r.check_ips(ips)}
        ctx = {"account": account, "ips": len(form["ip"].split(",")) if form["ip"] else 0}
        _, attempts = self._write(UPDATE_WHITELIST_PATH, form, ctx, check_body)
        return r.WriteAck(account=account, attempts=attempts)

    # ------------------------------------------------------------------ reads

    def sub_account_flow(self, *, account: str, priority: bool = True) -> r.SubAccountFlow:
        """Used and remaining traffic of one sub-account (the upstream caches it a minute).
        `priority` (default) takes the budget ahead of sync: it is a top-up decision's read."""
        ctx = {"account": r.check_account(account)}
        with secrets_scrubbed(self._headers.values()):
            data = self.transport.get_json(
                SUB_ACCOUNT_FLOW_PATH, params={"account": account}, headers=self._headers,
                check=check_body, context=ctx, priority=priority,
            )  # fmt: skip
            ctx = {"provider": self.provider, "path": SUB_ACCOUNT_FLOW_PATH, **ctx}
            data = p.mapping(data, "data", ctx)
            unit = data.get("unit", "KB")
            if not isinstance(unit, str) or unit.strip().upper() != "KB":
                raise p.bad(f"unexpected `unit` {str(unit)[:20]!r} (expected KB)", ctx)
            ratio = kb_ratio(self.mb_bytes, self.kb_bytes)
            used, raw_used = kb_to_bytes(data.get("use_flow"), "use_flow", ratio, ctx)
            left, raw_left = kb_to_bytes(data.get("surplus_flow"), "surplus_flow", ratio, ctx)
        return r.SubAccountFlow(
            account=account, used_bytes=used, remaining_bytes=left, raw_used=raw_used,
            raw_remaining=raw_left, raw_unit="KB", fetched_at=self.transport.wall_clock(),
            max_age=FLOW_CACHE,
        )  # fmt: skip

    def sub_accounts_page(
        self, *, page: int = 1, page_size: int = 100, account: str | None = None
    ) -> r.SubAccountPage:
        """One page of the sub-account list (100 rows per request at most), optionally
        filtered to one `account`."""
        r.check_page(page, page_size)
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if account is not None:
            params["account"] = r.check_account(account)
        with secrets_scrubbed(self._headers.values()):
            data = self.transport.get_json(
                SUB_ACCOUNTS_PATH, params=params, headers=self._headers, check=check_body,
                context={"page": page},
            )  # fmt: skip
            ctx = {"provider": self.provider, "path": SUB_ACCOUNTS_PATH, "page": page}
            total, rows = parse_sub_account_page(
                data, mb_bytes=self.mb_bytes, kb_bytes=self.kb_bytes, context=ctx
            )
        return r.SubAccountPage(page=page, page_size=page_size, total=total, rows=tuple(rows))

    def iter_sub_account_pages(self, *, page_size: int = 100) -> Iterator[r.SubAccountPage]:
        """Every page of the list, each as it arrives (a 10,000-row walk costs 100 requests,
        101 with the main account's row). Rows are not restarted when the list changes
        mid-walk: a row already yielded is left out of later pages, one shifted past the walk
        is caught by the next pass (`list_sub_accounts` restarts instead, for a consistent
        snapshot)."""
        seen: set[str] = set()
        received, page = 0, 1
        while page <= MAX_PAGES:
            result = self.sub_accounts_page(page=page, page_size=page_size)
            fresh = []
            for row in result.rows:
                if row.upstream_id not in seen:
                    seen.add(row.upstream_id)
                    fresh.append(row)
            yield replace(result, rows=tuple(fresh))
            received += len(result.rows)
            if not result.rows or received >= result.total:
                return
            page += 1

    def iter_sub_accounts(self, *, page_size: int = 100) -> Iterator[DiscoveredSubAccount]:
        """Every row of the list once, page by page as they arrive (`iter_sub_account_pages`)."""
        for result in self.iter_sub_account_pages(page_size=page_size):
            yield from result.rows

    def pool_balance(self, *, account: str | None = None) -> r.PoolBalance:
        """`residential-data`: the main account's traffic (the pool) by default."""
        params = {} if account is None else {"account": r.check_account(account)}
        with secrets_scrubbed(self._headers.values()):
            data = self.transport.get_json(
                RESIDENTIAL_PATH, params=params, headers=self._headers, check=check_body,
                context={"account": account or "<main>"},
            )  # fmt: skip
            ctx = {"provider": self.provider, "path": RESIDENTIAL_PATH, "account": account}
            data = p.mapping(data, "data", ctx)
            total, raw_total = p.amount(data.get("total_mb"), "total_mb", ctx)
            left, raw_left = p.amount(data.get("remain_mb"), "remain_mb", ctx)
        return r.PoolBalance(
            account=account, total_bytes=p.to_bytes(total, numerator=self.mb_bytes),
            remaining_bytes=p.to_bytes(left, numerator=self.mb_bytes), raw_total=str(raw_total),
            raw_remaining=str(raw_left), fetched_at=self.transport.wall_clock(),
        )  # fmt: skip

    # ------------------------------------------------------------------ internals

    def _write(
        self,
        path: str,
        form: dict[str, str],
        context: dict[str, Any],
        check: Any,
        *,
        secret_fields: Collection[str] = (),
    ) -> tuple[Any, int]:
        """POST `form` through the transport; (check's result, requests sent)."""
        before = self.transport.requests
        secrets = [*self._headers.values(), *(form[f] for f in secret_fields)]
        with secrets_scrubbed(secrets):
            result = self.transport.post_form(
                path, form=form, headers=self._headers, check=check, context=context,
                secret_fields=secret_fields, encoding=self.form_encoding,
            )  # fmt: skip
        return result, self.transport.requests - before
