"""Mutable simulator state shared by the handlers and the control API: clock, faults, stats,
rate limit, revisions, BytesFlows tokens and the IPFoxy reseller book (`provisioning.py`),
plus the traffic model evaluated at "now".

Everything here is thread-safe: the HTTP loop reads it while tests change it from their own
thread through `RunningSimulator`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from usage.simulator import traffic
from usage.simulator.clock import SimClock, to_epoch
from usage.simulator.config import SimulatorConfig
from usage.simulator.faults import FaultInjector
from usage.simulator.provisioning import ResellerBook
from usage.simulator.stats import RateLimiter, Stats
from usage.simulator.traffic import DAY, HOUR


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # first value of each parameter
    headers: dict[str, str]  # lower-case names
    body: bytes
    form: dict[str, str] = field(default_factory=dict)  # a POST's form fields (first values)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds to wait before answering
    disconnect: bool = False  # close the connection instead of answering
    outcome: str = "ok"  # how stats count this answer


class SimState:
    def __init__(self, config: SimulatorConfig):
        self.config = config
        self.seed = config.seed
        self.clock = SimClock(
            fixed=to_epoch(config.now) if config.now is not None else None,
            offset=config.clock_offset_seconds,
        )
        anchor = to_epoch(config.anchor) if config.anchor is not None else self.clock.now()
        self.anchor_day = traffic.local_day(int(anchor))
        self.anchor_epoch = traffic.local_day_start(self.anchor_day)
        self.faults = FaultInjector(config.faults, seed=config.seed)
        self.stats = Stats()
        self.limiter = RateLimiter(
            enabled=config.rate_limit_enabled, per_minute=config.rate_limit_per_minute
        )
        self.sub_accounts = config.sub_account_names()
        self.ipfoxy_keys = dict(config.ipfoxy_keys)
        self.book = ResellerBook(
            seed=config.seed,
            pool_mb=config.ipfoxy_pool_mb,
            main_account=config.ipfoxy_main_account,
            legacy_accounts=self.sub_accounts,
            password_gates_traffic=config.ipfoxy_password_gates_traffic,
            flow_cache_seconds=config.ipfoxy_flow_cache_seconds,
        )
        self._lock = threading.Lock()
        self._revisions: dict[str, dict[int, int]] = {}
        self._tokens = dict(config.bytesflows_tokens)
        self._expired_tokens: set[str] = set()
        self._prefix_sums: dict[str, tuple[int, int, int]] = {}

    # ------------------------------------------------------------------ BytesFlows tokens

    def token_account(self, token: str) -> tuple[str | None, bool]:
        """(account, expired) for a bearer token; account None when the token is unknown."""
        with self._lock:
            expired = token in self._expired_tokens
            account = self._tokens.get(token)
        prefix = self.config.bytesflows_token_prefix
        if account is None and prefix and token.startswith(prefix) and len(token) > len(prefix):
            account = token[len(prefix) :]
        return account, expired

    def add_token(self, token: str, account: str) -> None:
        with self._lock:
            self._tokens[token] = account
            self._expired_tokens.discard(token)

    def expire_token(self, token: str) -> None:
        with self._lock:
            self._expired_tokens.add(token)

    def restore_token(self, token: str) -> None:
        with self._lock:
            self._expired_tokens.discard(token)

    # ------------------------------------------------------------------ IPFoxy revisions

    def revise(self, account: str, hour_start: int, flow: str) -> None:
        """From now on, report `flow` (MB) for the hour of `account` starting at `hour_start`."""
        if hour_start % HOUR:
            raise ValueError("a revision needs the start of an hour")
        if self.book.is_provisioned(account):
            raise ValueError("a provisioned sub-account reports what it used: no revisions")
        centi = traffic.parse_centi(flow)
        with self._lock:
            self._revisions.setdefault(account, {})[hour_start] = centi

    def clear_revisions(self) -> None:
        with self._lock:
            self._revisions.clear()

    def revisions(self) -> list[dict[str, object]]:
        with self._lock:
            items = [(a, h, c) for a, hours in self._revisions.items() for h, c in hours.items()]
        return [
            {"account": a, "hour": traffic.utc_iso(h), "flow": traffic.format_centi(c)}
            for a, h, c in sorted(items)
        ]

    def account_revisions(self, account: str) -> dict[int, int]:
        with self._lock:
            return dict(self._revisions.get(account, ()))

    # ------------------------------------------------------------------ IPFoxy traffic at now

    def hour_value(self, account: str, hour_start: int, now: int, revised: dict[int, int]) -> int:
        """Centi-MB reported for an hour at `now`: a revision, the full hour, or the part of
        the current hour already elapsed (the current bucket grows until the hour closes)."""
        if hour_start in revised:
            return revised[hour_start]
        full = traffic.hour_centi(self.seed, account, hour_start)
        if hour_start + HOUR > now:
            return full * max(0, now - hour_start) // HOUR
        return full

    def hourly_rows(self, account: str, start: int, end: int, now: int) -> list[int]:
        """Starts of the hours reported for [start, end] (start inside, end inclusive) at
        `now`, newest first."""
        first = -(-start // HOUR) * HOUR
        last = min(end // HOUR * HOUR, now // HOUR * HOUR)
        return list(range(last, first - 1, -HOUR)) if last >= first else []

    def daily_rows(self, start: int, end: int, now: int) -> list[int]:
        """Local (+08:00) days overlapping [start, end] that have begun by `now`, newest first."""
        first = traffic.local_day(start)
        last = min(traffic.local_day(end), traffic.local_day(now))
        return list(range(last, first - 1, -1)) if last >= first else []

    def day_value(self, account: str, day: int, now: int, revised: dict[int, int]) -> int:
        day_start = traffic.local_day_start(day)
        if day_start + DAY <= now and not any(day_start <= h < day_start + DAY for h in revised):
            return traffic.day_total_centi(self.seed, account, day)
        return sum(
            self.hour_value(account, h, now, revised)
            for h in range(day_start, min(day_start + DAY, now + 1), HOUR)
            if h <= now
        )

    def cumulative_centi(self, account: str, since: int, now: int) -> int:
        """Centi-MB used from `since` (a local midnight) until `now`, as the sub-account list's
        `use_flow` reports it: equal to the sum of the reported hours over that span."""
        if now <= since:
            return 0
        revised = self.account_revisions(account)
        first_day, today = traffic.local_day(since), traffic.local_day(now)
        with self._lock:
            cached = self._prefix_sums.get(account)
        if cached and cached[0] == first_day and cached[1] <= today:
            through, total = cached[1], cached[2]
        else:
            through, total = first_day, 0
        for day in range(through, today):
            total += traffic.day_total_centi(self.seed, account, day)
        with self._lock:
            self._prefix_sums[account] = (first_day, today, total)
        for hour, centi in revised.items():
            if since <= hour < traffic.local_day_start(today):
                total += centi - traffic.hour_centi(self.seed, account, hour)
        today_start = traffic.local_day_start(today)
        total += sum(
            self.hour_value(account, h, now, revised) for h in range(today_start, now + 1, HOUR)
        )
        return total
