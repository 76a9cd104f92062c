"""Request budgets: how many upstream requests may start per minute, per upstream account.

IPFoxy allows 60 requests per minute per reseller account, shared by every endpoint and
sub-account, and answers code 50000 beyond that. Every worker therefore takes a token from
one budget keyed by the upstream account before each attempt (`transport.py` does it).

Both implementations are a sliding-window log rather than a refilling bucket: a request is
admitted only while fewer than `per_minute` requests started in the last `window` seconds.
That makes the promise exact: in ANY 60-second window, all callers sharing a key together
start at most `per_minute` requests (a refilling bucket of capacity C and rate r/60 admits up
to C + r in some windows). The log holds at most `per_minute` timestamps per key.

Writes go first. A `priority=True` request (an upstream write, or a read on a customer's
critical path) may use the whole `per_minute`; any other request (sync) is admitted only
while fewer than `per_minute - reserved_for_priority(per_minute)` requests started in the
window. So `priority_share` of every window (default a fifth, rounded down: 10 of 50) is
always left for writes, and a write never waits behind a sync pass however long it is; it
waits only when writes themselves used the whole window. The price: sync alone runs at
four fifths of `per_minute`.

- `InProcessBudget`: thread-safe, for a single process (tests, the CLI without a broker).
- `RedisBudget`: one atomic Lua script on Redis's own clock (`TIME`), so N workers on N hosts
  with skewed clocks share one log; keys expire one window after their last request.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from usage.providers.base import BudgetExhaustedError

DEFAULT_WINDOW_SECONDS = 60.0
#: Share of every window that only priority requests (upstream writes) may take.
DEFAULT_PRIORITY_SHARE = 0.2


@runtime_checkable
class RequestBudget(Protocol):
    """Blocks until a request may start under `key`, or raises `BudgetExhaustedError`."""

    def acquire(
        self, key: str, *, per_minute: int, timeout: float, priority: bool = False
    ) -> None: ...


def _check_limit(per_minute: int) -> None:
    if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
        raise ValueError("per_minute must be a positive integer")


def _check_share(share: float) -> float:
    if not 0 <= share < 1:
        raise ValueError("priority_share must be in [0, 1)")
    return share


def reserved_for_priority(per_minute: int, share: float = DEFAULT_PRIORITY_SHARE) -> int:
    """Slots of each window that only priority requests may take: floor(per_minute * share),
    leaving at least one slot for the others (50 -> 10, 60 -> 12, 4 -> 0)."""
    return min(per_minute - 1, int(per_minute * share))


def _limit(per_minute: int, share: float, priority: bool) -> int:
    """How many requests may have started in the window for this one to start."""
    return per_minute if priority else per_minute - reserved_for_priority(per_minute, share)


class _SlidingLogBudget:
    """The wait loop both budgets share: take a slot under the request's limit, or sleep
    until one frees up. Subclasses set `priority_share`, `_clock` and `_sleep` and
    implement `_try(key, limit)`."""

    priority_share: float
    _clock: Callable[[], float]
    _sleep: Callable[[float], None]

    def _try(self, key: str, limit: int) -> float:
        raise NotImplementedError

    def acquire(self, key: str, *, per_minute: int, timeout: float, priority: bool = False) -> None:
        _check_limit(per_minute)
        limit = _limit(per_minute, self.priority_share, priority)
        deadline = self._clock() + timeout
        while True:
            wait = self._try(key, limit)
            if wait == 0.0:
                return
            remaining = deadline - self._clock()
            if wait > remaining:
                raise _exhausted(key, per_minute, timeout, wait)
            self._sleep(wait)


def _exhausted(key: str, per_minute: int, timeout: float, wait: float) -> BudgetExhaustedError:
    return BudgetExhaustedError(
        "request budget exhausted: no slot within the allowed wait",
        retry_after=wait,
        context={"budget_key": key, "per_minute": per_minute, "timeout": timeout},
    )


class InProcessBudget(_SlidingLogBudget):
    """Sliding-window log per key, guarded by one lock; `clock` and `sleep` are injectable."""

    def __init__(
        self,
        *,
        window: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_grant: Callable[[str, float], None] | None = None,
        priority_share: float = DEFAULT_PRIORITY_SHARE,
    ) -> None:
        self.priority_share = _check_share(priority_share)
        self._on_grant = on_grant  # (key, clock time of the grant): metrics and tests
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._logs: dict[str, deque[float]] = {}

    def clear(self) -> None:
        """Forget every key's log (a test starting afresh: ids are reused between tests)."""
        with self._lock:
            self._logs.clear()

    def _try(self, key: str, limit: int) -> float:
        """Take a slot and return 0, or return the seconds until one frees up."""
        with self._lock:
            now = self._clock()
            log = self._logs.setdefault(key, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) < limit:
                log.append(now)
                if self._on_grant is not None:
                    self._on_grant(key, now)
                return 0.0
            # The (len - limit)-th oldest entry must leave the window first.
            return max(log[len(log) - limit] + self.window - now, 1e-6)


# KEYS[1] = log key; ARGV = limit (per_minute, less the priority reserve for the others),
# window in microseconds, unique member.
# Times come from Redis (`TIME`) so worker clocks do not matter. Returns 0 when a slot was
# taken, else the microseconds until the oldest counted request leaves the window; and
# Redis's time of the decision (microseconds), reported to `on_grant`.
_LUA_SLIDING_LOG = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('ZCARD', key)
if n < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, math.floor(window / 1000) + 1000)
  return {0, now}
end
local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return {wait, now}
"""


class RedisBudget(_SlidingLogBudget):
    """Sliding-window log in a Redis sorted set, shared by every process using the client's
    Redis. `redis_client` is a `redis.Redis`; keys are `prefix + key` and expire on their own.
    """

    def __init__(
        self,
        redis_client: Any,
        *,
        window: float = DEFAULT_WINDOW_SECONDS,
        prefix: str = "flowbill:budget:",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_grant: Callable[[str, float], None] | None = None,
        priority_share: float = DEFAULT_PRIORITY_SHARE,
    ) -> None:
        self.priority_share = _check_share(priority_share)
        self._on_grant = on_grant  # (key, Redis unix time of the grant): metrics and tests
        self._redis = redis_client
        self._script = redis_client.register_script(_LUA_SLIDING_LOG)
        self.window = window
        self.prefix = prefix
        self._clock = clock
        self._sleep = sleep

    def _try(self, key: str, limit: int) -> float:
        wait_us, now_us = self._script(
            keys=[self.prefix + key],
            args=[limit, int(self.window * 1_000_000), uuid.uuid4().hex],
        )
        if int(wait_us) == 0 and self._on_grant is not None:
            self._on_grant(key, int(now_us) / 1_000_000)
        return int(wait_us) / 1_000_000


class UnlimitedBudget:
    """No limit at all: for benchmarks against a simulator whose rate limit is off."""

    def acquire(self, key: str, *, per_minute: int, timeout: float, priority: bool = False) -> None:
        return None
