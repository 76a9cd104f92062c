"""IPFoxy reseller state: each api-id's traffic pool, the sub-accounts it provisioned
(`consumption.py`: lots, expiry, consumption), and the idempotency records of the writes.

Every operation takes `now` (simulator epoch seconds) and first settles the sub-account it
touches up to `now`. One lock guards everything. Each api-id's pool goes down by exactly
the sum of its successful allocations (creates included).

The configured sub-accounts (SIMMAIN, SIM00001...: "legacy") keep their synthetic counters.
An allocation to one of them adds to its package (the pool pays) without capping its usage;
the main account cannot be allocated to or changed.

Idempotency: a successful create or allocate is recorded under (api-id, idempotency_key).
The same key with the same parameters answers the first result again and changes nothing;
with other parameters, or for the other operation, it is 60400. A refused request records
nothing, so a retry after 60300 with the same key may succeed once the pool is topped up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from usage.simulator import traffic
from usage.simulator.consumption import CENTI_PER_MB, SubAccount, describe_sub_account

EXPIRY_DAYS = (0, 30, 90, 180, 360)


class RefusedError(Exception):
    """A request the upstream refuses; `code` is the IPFoxy business code."""

    def __init__(self, code: int, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class LegacyOverride:
    """What reseller writes changed on a configured (synthetic) sub-account."""

    extra: int = 0  # centi-MB allocated on top of its package
    password: str | None = None
    whitelist: tuple[str, ...] = ()


@dataclass
class Pool:
    total: int  # centi-MB the main account holds to allocate
    allocated: int = 0

    @property
    def remaining(self) -> int:
        return self.total - self.allocated


@dataclass(frozen=True)
class Receipt:
    operation: str
    params: tuple[Any, ...]
    result: dict[str, Any]


class ResellerBook:
    def __init__(
        self,
        *,
        seed: int,
        pool_mb: int,
        main_account: str,
        legacy_accounts: Iterable[str],
        password_gates_traffic: bool,
        flow_cache_seconds: int,
    ):
        self._lock = threading.Lock()
        self.seed = seed
        self.pool_mb = pool_mb
        self.main_account = main_account
        self.legacy = frozenset((main_account, *legacy_accounts))
        self.password_gates_traffic = password_gates_traffic
        self.flow_cache_seconds = flow_cache_seconds
        self._pools: dict[str, Pool] = {}
        self._accounts: dict[str, SubAccount] = {}  # creation order
        self._overrides: dict[str, LegacyOverride] = {}
        self._receipts: dict[tuple[str, str], Receipt] = {}
        self._flow_cache: dict[str, tuple[int, Any]] = {}

    # ------------------------------------------------------------------ writes

    def create(
        self, api_id: str, *, account: str, password: str, flow_mb: int, key: str, day: int,
        now: int,
    ) -> dict[str, Any]:  # fmt: skip
        params = (account, password, flow_mb, day)
        with self._lock:
            replay = self._replay(api_id, key, "create", params)
            if replay is not None:
                return replay
            if account in self.legacy or account in self._accounts:
                raise RefusedError(60400, "account already exists")
            self._draw(api_id, flow_mb)
            sub = SubAccount(account, api_id, password, password, created=now, settled_at=now)
            self._accounts[account] = sub
            sub.add_lot(flow_mb, day, now)
            return self._record(
                api_id, key, "create", params, {"account": account, "password": password}
            )

    def allocate(
        self, api_id: str, *, account: str, flow_mb: int, key: str, day: int, now: int
    ) -> dict[str, Any]:
        params = (account, flow_mb, day)
        with self._lock:
            replay = self._replay(api_id, key, "allocate", params)
            if replay is not None:
                return replay
            if account == self.main_account:
                raise RefusedError(60400, "the main account cannot be allocated to")
            if account in self.legacy:
                self._draw(api_id, flow_mb)
                self._overrides.setdefault(account, LegacyOverride()).extra += (
                    flow_mb * CENTI_PER_MB
                )
            else:
                sub = self._owned(api_id, account, now)
                self._draw(api_id, flow_mb)
                sub.add_lot(flow_mb, day, now)
            return self._record(api_id, key, "allocate", params, {})

    def update_password(self, api_id: str, *, account: str, password: str, now: int) -> None:
        def change(sub: SubAccount) -> None:
            sub.password = password
            if not self.password_gates_traffic:
                sub.client_password = password  # the customer switches at once

        self._change(api_id, account, now, change, lambda o: replace(o, password=password))

    def update_whitelist(
        self, api_id: str, *, account: str, ips: tuple[str, ...], now: int
    ) -> None:
        def change(sub: SubAccount) -> None:
            sub.whitelist = ips

        self._change(api_id, account, now, change, lambda o: replace(o, whitelist=ips))

    # ------------------------------------------------------------------ control (tests)

    def set_pool(self, api_id: str, *, total_mb: int | None = None, add_mb: int | None = None):
        with self._lock:
            pool = self._pool(api_id)
            if total_mb is not None:
                pool.total = int(total_mb) * CENTI_PER_MB
            if add_mb is not None:
                pool.total += int(add_mb) * CENTI_PER_MB
            if pool.total < 0:
                raise ValueError("the pool cannot be negative")
            return self._pool_view(pool)

    def set_status(self, account: str, status: int, now: int) -> None:
        if status not in (1, 2):
            raise ValueError("status is 1 (normal) or 2 (disabled)")
        self._control(account, now, lambda sub: setattr(sub, "status", status))

    def client_login(self, account: str, password: str, now: int) -> None:
        """The customer's proxy client now sends `password` (right or wrong)."""
        self._control(account, now, lambda sub: setattr(sub, "client_password", password))

    # ------------------------------------------------------------------ reads

    def kind(self, api_id: str, account: str) -> str | None:
        """ "legacy", "provisioned" (by this api-id) or None (unknown to this api-id)."""
        if account in self.legacy:
            return "legacy"
        with self._lock:
            sub = self._accounts.get(account)
        return "provisioned" if sub is not None and sub.owner == api_id else None

    def is_provisioned(self, account: str) -> bool:
        with self._lock:
            return account in self._accounts

    def owned(self, api_id: str) -> list[str]:
        with self._lock:
            return [name for name, sub in self._accounts.items() if sub.owner == api_id]

    def snapshot(self, account: str, now: int) -> SubAccount | None:
        """A settled copy of a provisioned sub-account (None for any other name)."""
        with self._lock:
            sub = self._accounts.get(account)
            if sub is None:
                return None
            self._settle(sub, now)
            return replace(sub, lots=[replace(lot) for lot in sub.lots], hours=dict(sub.hours))

    def override(self, account: str) -> LegacyOverride:
        with self._lock:
            return replace(self._overrides.get(account) or LegacyOverride())

    def pool(self, api_id: str) -> dict[str, str]:
        with self._lock:
            return self._pool_view(self._pool(api_id))

    def pool_remaining(self, api_id: str) -> int:
        with self._lock:
            return self._pool(api_id).remaining

    def pool_total(self, api_id: str) -> int:
        with self._lock:
            return self._pool(api_id).total

    def cached_flow(self, account: str, now: int, compute: Callable[[], Any]) -> Any:
        """`compute()` at most once per `flow_cache_seconds` per account (the upstream's
        one-minute cache: a read right after an allocation may still show the old figures)."""
        with self._lock:
            hit = self._flow_cache.get(account)
        if hit is not None and hit[0] <= now < hit[0] + self.flow_cache_seconds:
            return hit[1]
        value = compute()
        with self._lock:
            self._flow_cache[account] = (now, value)
        return value

    def describe(self, now: int) -> dict[str, Any]:
        with self._lock:
            names = list(self._accounts)
            pools = {api_id: self._pool_view(pool) for api_id, pool in self._pools.items()}
        accounts = {}
        for name in names:
            sub = self.snapshot(name, now)
            assert sub is not None  # accounts are never removed
            accounts[name] = describe_sub_account(sub)
        return {"pools": pools, "sub_accounts": accounts}

    # ------------------------------------------------------------------ internals

    def _pool(self, api_id: str) -> Pool:
        pool = self._pools.get(api_id)
        if pool is None:
            pool = self._pools[api_id] = Pool(total=self.pool_mb * CENTI_PER_MB)
        return pool

    @staticmethod
    def _pool_view(pool: Pool) -> dict[str, str]:
        return {
            "total_mb": traffic.format_centi(pool.total),
            "allocated_mb": traffic.format_centi(pool.allocated),
            "remaining_mb": traffic.format_centi(pool.remaining),
        }

    def _replay(self, api_id: str, key: str, operation: str, params: tuple) -> dict | None:
        receipt = self._receipts.get((api_id, key))
        if receipt is None:
            return None
        if (receipt.operation, receipt.params) != (operation, params):
            raise RefusedError(60400, "idempotency_key already used with other parameters")
        return dict(receipt.result)

    def _record(self, api_id: str, key: str, operation: str, params: tuple, result: dict):
        self._receipts[(api_id, key)] = Receipt(operation, params, dict(result))
        return dict(result)

    def _draw(self, api_id: str, flow_mb: int) -> None:
        pool = self._pool(api_id)
        if flow_mb * CENTI_PER_MB > pool.remaining:
            raise RefusedError(60300, "the main account's traffic is insufficient")
        pool.allocated += flow_mb * CENTI_PER_MB

    def _owned(self, api_id: str, account: str, now: int) -> SubAccount:
        sub = self._accounts.get(account)
        if sub is None or sub.owner != api_id:
            raise RefusedError(60400, "account not found")
        self._settle(sub, now)
        return sub

    def _change(self, api_id, account, now, change_sub, change_override) -> None:
        with self._lock:
            if account == self.main_account:
                raise RefusedError(60400, "the main account cannot be changed here")
            if account in self.legacy:
                self._overrides[account] = change_override(
                    self._overrides.get(account) or LegacyOverride()
                )
                return
            change_sub(self._owned(api_id, account, now))

    def _settle(self, sub: SubAccount, now: int) -> None:
        sub.settle(now, seed=self.seed, password_gates_traffic=self.password_gates_traffic)

    def _control(self, account: str, now: int, change: Callable[[SubAccount], None]) -> None:
        with self._lock:
            sub = self._accounts.get(account)
            if sub is None:
                raise ValueError(f"{account!r} is not a provisioned sub-account")
            self._settle(sub, now)
            change(sub)
