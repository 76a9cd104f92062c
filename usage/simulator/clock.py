"""The simulator's clock: real time by default, or fixed / offset under test control.

Everything time-dependent (the 90-day lookback, the current partial hour, BytesFlows
counters, the rate-limit window) reads this clock, so a test can freeze "now", then advance
it to see counters grow or a rate-limit window roll over.
"""

from __future__ import annotations

import datetime as dt
import threading
import time


def to_epoch(value: dt.datetime | float | int | str) -> float:
    """An aware datetime, epoch seconds or ISO-8601 string ("Z" allowed) as epoch seconds."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("the simulator clock needs an aware datetime")
        return value.timestamp()
    return float(value)


class SimClock:
    """Thread-safe clock: `now()` is either `fixed + 0` or `time.time() + offset`."""

    def __init__(self, *, fixed: float | None = None, offset: float = 0.0):
        self._lock = threading.Lock()
        self._fixed = fixed
        self._offset = offset

    def now(self) -> float:
        fixed = self._fixed
        return fixed if fixed is not None else time.time() + self._offset

    def now_datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), dt.UTC)

    def set_fixed(self, when: dt.datetime | float | str) -> None:
        """Freeze the clock at `when`; it stays there until advanced or released."""
        with self._lock:
            self._fixed, self._offset = to_epoch(when), 0.0

    def set_offset(self, seconds: float) -> None:
        """Run in real time shifted by `seconds` (negative for the past)."""
        with self._lock:
            self._fixed, self._offset = None, float(seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back) by `seconds`, in either mode."""
        with self._lock:
            if self._fixed is not None:
                self._fixed += seconds
            else:
                self._offset += seconds

    def set_real(self) -> None:
        with self._lock:
            self._fixed, self._offset = None, 0.0

    def describe(self) -> dict[str, object]:
        now = self.now()
        return {
            "mode": "fixed" if self._fixed is not None else "real",
            "now": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
            "epoch": now,
            "offset_seconds": self._offset,
        }
