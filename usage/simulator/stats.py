"""Request accounting and the IPFoxy rate limit.

Stats answer the questions the tests and drills ask: how many requests each endpoint and each
credential made, how often the rate limit tripped, which faults fired, and the most requests
any api-id sent within one rolling 60-second window (the proof that N workers sharing a
request budget never exceed the provider's limit). Times come from the simulator clock.
"""

from __future__ import annotations

import threading
from collections import deque

WINDOW_SECONDS = 60.0


class RateLimiter:
    """`per_minute` accepted requests per rolling 60 s per key; refusals do not count."""

    def __init__(self, *, enabled: bool, per_minute: int):
        self._lock = threading.Lock()
        self.enabled = enabled
        self.per_minute = per_minute
        self._accepted: dict[str, deque[float]] = {}

    def configure(self, *, enabled: bool | None = None, per_minute: int | None = None) -> None:
        with self._lock:
            if enabled is not None:
                self.enabled = enabled
            if per_minute is not None:
                if per_minute < 1:
                    raise ValueError("per_minute must be positive")
                self.per_minute = per_minute
            self._accepted.clear()

    def allow(self, key: str, now: float) -> bool:
        if not self.enabled:
            return True
        with self._lock:
            window = self._accepted.setdefault(key, deque())
            while window and window[0] <= now - WINDOW_SECONDS:
                window.popleft()
            if len(window) >= self.per_minute:
                return False
            window.append(now)
            return True


class Stats:
    """Counters read by `GET /_sim/stats` and `RunningSimulator.stats()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests_total = 0
            self.by_endpoint: dict[str, int] = {}
            self.by_credential: dict[str, int] = {}
            self.by_outcome: dict[str, int] = {}
            self.rate_limit_trips: dict[str, int] = {}
            self._recent: dict[str, deque[float]] = {}
            self.max_per_window: dict[str, int] = {}
            self.delayed_now = 0
            self.max_delayed_at_once = 0

    def record_request(self, endpoint: str, credential: str | None, now: float) -> None:
        """Count a request; `credential` is "ipfoxy:<api-id>" or "bytesflows:<account>"."""
        with self._lock:
            self.requests_total += 1
            self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1
            if credential is None:
                return
            self.by_credential[credential] = self.by_credential.get(credential, 0) + 1
            recent = self._recent.setdefault(credential, deque())
            while recent and recent[0] <= now - WINDOW_SECONDS:
                recent.popleft()
            recent.append(now)
            if len(recent) > self.max_per_window.get(credential, 0):
                self.max_per_window[credential] = len(recent)

    def record_outcome(self, outcome: str) -> None:
        """Count an answer by kind: "ok", "code_60400", "http_401", "fault_http_5xx", ..."""
        with self._lock:
            self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1

    def delay_started(self) -> None:
        """A response began its injected latency (the server sleeps through many at once)."""
        with self._lock:
            self.delayed_now += 1
            self.max_delayed_at_once = max(self.max_delayed_at_once, self.delayed_now)

    def delay_ended(self) -> None:
        with self._lock:
            self.delayed_now -= 1

    def record_trip(self, api_id: str) -> None:
        with self._lock:
            self.rate_limit_trips[api_id] = self.rate_limit_trips.get(api_id, 0) + 1

    def snapshot(self, *, faults_injected: dict[str, int]) -> dict[str, object]:
        with self._lock:
            return {
                "requests_total": self.requests_total,
                "requests_by_endpoint": dict(self.by_endpoint),
                "requests_by_credential": dict(self.by_credential),
                "responses_by_outcome": dict(self.by_outcome),
                "rate_limit_trips": dict(self.rate_limit_trips),
                "rate_limit_trips_total": sum(self.rate_limit_trips.values()),
                "faults_injected": dict(faults_injected),
                "faults_injected_total": sum(faults_injected.values()),
                "max_requests_per_60s": dict(self.max_per_window),
                "max_delayed_at_once": self.max_delayed_at_once,
            }
