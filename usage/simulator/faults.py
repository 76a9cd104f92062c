"""Fault switches: what can go wrong, when, and for whom.

Each fault kind has a `FaultRule`: fire on the next N matching requests (`next`), and/or with a
probability drawn from the simulator's seeded RNG (`probability`), so tests stay
deterministic. A rule may be narrowed to one API or endpoint (`target`) and one upstream
account (`account`). A `next` budget is only consumed by requests the fault applies to (a
negative flow cannot be injected into a BytesFlows asset read).

Global knobs live next to the rules: a fixed latency added to every API response, how long a
"slow" response stalls (also how long `timeout_after_apply` holds a write's answer before
dropping it), which 5xx status to send, and the Retry-After of a 429.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, replace
from typing import Any

# Endpoint keys (also used in stats).
FLOW_LIST = "ipfoxy.flow_list"
SUB_ACCOUNTS = "ipfoxy.sub_accounts"
SUB_ACCOUNT_FLOW = "ipfoxy.sub_account_flow"
RESIDENTIAL_DATA = "ipfoxy.residential_data"
CREATE_SUB_ACCOUNT = "ipfoxy.create_sub_account"
ALLOCATE_FLOW = "ipfoxy.allocate_flow"
UPDATE_PASS = "ipfoxy.update_pass"  # noqa: S105 - an endpoint key, not a secret
UPDATE_WHITELIST = "ipfoxy.update_ip_whitelist"
ASSET = "bytesflows.asset"
RECORDS = "bytesflows.records"
IPFOXY_WRITES = frozenset({CREATE_SUB_ACCOUNT, ALLOCATE_FLOW, UPDATE_PASS, UPDATE_WHITELIST})
IPFOXY = frozenset({FLOW_LIST, SUB_ACCOUNTS, SUB_ACCOUNT_FLOW, RESIDENTIAL_DATA}) | IPFOXY_WRITES
BYTESFLOWS = frozenset({ASSET, RECORDS})
ALL = IPFOXY | BYTESFLOWS

# kind -> endpoints it can apply to, with what it does.
FAULT_KINDS: dict[str, frozenset[str]] = {
    "slow": ALL,  # stall `slow_seconds` before answering normally
    "disconnect": ALL,  # close the connection without answering
    "http_5xx": ALL,  # HTTP `http_5xx_status` with a short text body
    "http_429": ALL,  # HTTP 429 with Retry-After: `retry_after`
    "html": ALL,  # HTTP 200 with an HTML maintenance page
    "malformed_json": ALL,  # the normal JSON body cut in half (Content-Length matches)
    "code_50000": IPFOXY,  # {"code": 50000} rate limited, HTTP 200
    "code_60500": IPFOXY,  # {"code": 60500} service error, HTTP 200
    "count_mismatch": frozenset({FLOW_LIST, SUB_ACCOUNTS, RECORDS}),  # count/total = real + 3
    "duplicate_rows": frozenset({FLOW_LIST, RECORDS}),  # the page's first row sent twice
    "count_changes": frozenset({FLOW_LIST}),  # a newer bucket appears: count + 1, rows shift
    "negative_flow": frozenset({FLOW_LIST}),  # the first row's flow is negative
    "non_numeric_flow": frozenset({FLOW_LIST}),  # the first row's flow is "N/A"
    "missing_flow": frozenset({FLOW_LIST}),  # the first row has no "flow" key
    "foreign_rows": frozenset({FLOW_LIST}),  # the first row belongs to another account
    "counter_backwards": BYTESFLOWS,  # a record's trafficUsed reads lower than before
    # The write is applied, then its answer stalls `slow_seconds` and the connection closes
    # unanswered: the client cannot know whether it happened (only successful writes).
    "timeout_after_apply": IPFOXY_WRITES,
}

TARGETS = {
    "all": ALL,
    "ipfoxy": IPFOXY,
    "ipfoxy_writes": IPFOXY_WRITES,
    "bytesflows": BYTESFLOWS,
} | {e: frozenset({e}) for e in ALL}


@dataclass
class FaultRule:
    """When one fault kind fires. `next` counts down; `probability` uses the seeded RNG."""

    next: int = 0
    probability: float = 0.0
    target: str = "all"
    account: str | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown fault target {self.target!r}; one of {sorted(TARGETS)}")
        if self.next < 0 or not 0.0 <= self.probability <= 1.0:
            raise ValueError("fault rule needs next >= 0 and 0 <= probability <= 1")

    @classmethod
    def coerce(cls, value: Any) -> FaultRule | None:
        """Accept a rule, a dict of its fields, an int (next N), a "next:N" / "p:0.1" string."""
        if value is None or isinstance(value, FaultRule):
            return value
        if isinstance(value, bool):
            raise ValueError("a fault rule cannot be a boolean")
        if isinstance(value, int):
            return cls(next=value)
        if isinstance(value, str):
            fields_: dict[str, Any] = {}
            for part in value.split(","):
                key, _, raw = part.partition(":")
                key = key.strip()
                if key == "next":
                    fields_["next"] = int(raw)
                elif key in {"p", "probability"}:
                    fields_["probability"] = float(raw)
                elif key == "target":
                    fields_["target"] = raw.strip()
                elif key == "account":
                    fields_["account"] = raw.strip()
                else:
                    raise ValueError(
                        f"bad fault spec {value!r} (use next:N, p:0.1, target:, account:)"
                    )
            return cls(**fields_)
        if isinstance(value, dict):
            return cls(**value)
        raise ValueError(f"cannot read a fault rule from {type(value).__name__}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "next": self.next,
            "probability": self.probability,
            "target": self.target,
            "account": self.account,
        }


@dataclass
class FaultSettings:
    """Every fault switch. All off by default."""

    latency_ms: int = 0
    slow_seconds: float = 5.0
    http_5xx_status: int = 503
    retry_after: int | None = 1
    rules: dict[str, FaultRule] = field(default_factory=dict)

    def copy(self) -> FaultSettings:
        return replace(self, rules={k: replace(v) for k, v in self.rules.items()})

    def as_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "slow_seconds": self.slow_seconds,
            "http_5xx_status": self.http_5xx_status,
            "retry_after": self.retry_after,
            "faults": {k: v.as_dict() for k, v in sorted(self.rules.items())},
            "kinds": sorted(FAULT_KINDS),
        }

    def apply(self, changes: dict[str, Any]) -> None:
        """Merge changes: knob names set knobs; fault kinds set (or with None, clear) rules.

        `{"faults": {...}}` nests rules; `{"reset": true}` first turns everything off.
        """
        changes = dict(changes)
        if changes.pop("reset", False):
            fresh = FaultSettings()
            self.latency_ms, self.slow_seconds = fresh.latency_ms, fresh.slow_seconds
            self.http_5xx_status, self.retry_after = fresh.http_5xx_status, fresh.retry_after
            self.rules = {}
        rules = dict(changes.pop("faults", None) or {})
        for key in list(changes):
            if key in FAULT_KINDS:
                rules[key] = changes.pop(key)
        for key, value in changes.items():
            if key == "latency_ms":
                self.latency_ms = max(0, int(value))
            elif key == "slow_seconds":
                self.slow_seconds = max(0.0, float(value))
            elif key == "http_5xx_status":
                status = int(value)
                if not 500 <= status <= 599:
                    raise ValueError("http_5xx_status must be 500..599")
                self.http_5xx_status = status
            elif key == "retry_after":
                self.retry_after = None if value is None else max(0, int(value))
            else:
                raise ValueError(f"unknown fault setting {key!r}")
        for kind, value in rules.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
            rule = FaultRule.coerce(value)
            if rule is None or (rule.next == 0 and rule.probability == 0.0):
                self.rules.pop(kind, None)
            else:
                self.rules[kind] = rule


class FaultInjector:
    """Thread-safe decisions over `FaultSettings` with a seeded RNG and a tally of firings."""

    def __init__(self, settings: FaultSettings, *, seed: int):
        self._lock = threading.Lock()
        self._settings = settings.copy()
        self._rng = random.Random(f"faults:{seed}")
        self.injected: dict[str, int] = {}

    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings.copy()

    def update(self, changes: dict[str, Any]) -> FaultSettings:
        with self._lock:
            candidate = self._settings.copy()
            candidate.apply(changes)  # raises before anything changes
            self._settings = candidate
            return candidate.copy()

    @property
    def latency_seconds(self) -> float:
        return self._settings.latency_ms / 1000

    def fires(self, kind: str, *, endpoint: str, account: str | None) -> bool:
        """Whether `kind` fires for this request (consuming a `next` if so)."""
        if kind not in self._settings.rules or endpoint not in FAULT_KINDS[kind]:
            return False
        with self._lock:
            rule = self._settings.rules.get(kind)
            if rule is None or endpoint not in TARGETS[rule.target]:
                return False
            if rule.account is not None and rule.account != account:
                return False
            fired = False
            if rule.next > 0:
                rule.next -= 1
                fired = True
            elif rule.probability > 0.0 and self._rng.random() < rule.probability:
                fired = True
            if rule.next == 0 and rule.probability == 0.0:
                self._settings.rules.pop(kind, None)
            if fired:
                self.injected[kind] = self.injected.get(kind, 0) + 1
            return fired
