"""A provisioned IPFoxy sub-account and how it consumes the traffic allocated to it.

Units are hundredths of a MB ("centi-MB") like the rest of the IPFoxy model; allocations are
whole MB. The sub-account wants the same deterministic hourly traffic as any IPFoxy account
(`traffic.hour_centi`, prorated inside the current hour) and gets it only while it has
surplus and it is `serving` (status normal (1) and, when passwords gate traffic, its client
holds the current password or the IP whitelist is not empty). Surplus is held in lots, one
per allocation, each with its own expiry (`day` 0: never, else that many days after the
allocation). Consumption draws from the lot that expires first, and a lot's remainder is
forfeited at its expiry.

`settle(now)` walks the time since the last settlement in segments cut at hour boundaries
and lot expiries, so the flow-list hours, `use_flow` and the lots always agree:
`allocated == used + surplus + expired` and `used == sum(hours)`. Time only moves forward:
settling at an earlier `now` does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from usage.simulator import traffic
from usage.simulator.traffic import DAY, HOUR

NEVER = 2_147_483_647  # IPFoxy's `ex_time` for "never expires"
CENTI_PER_MB = 100


@dataclass
class Lot:
    remaining: int  # centi-MB
    expires: int | None  # epoch; None = never


@dataclass
class SubAccount:
    """A provisioned sub-account (created through `create-sub-account`)."""

    name: str
    owner: str  # the api-id that created it
    password: str
    client_password: str  # what the customer's proxy client sends
    created: int
    settled_at: int
    whitelist: tuple[str, ...] = ()
    status: int = 1  # 1 normal, 2 disabled
    allocated: int = 0  # centi-MB, every allocation ever
    used: int = 0
    expired: int = 0
    lots: list[Lot] = field(default_factory=list)
    hours: dict[int, int] = field(default_factory=dict)  # UTC hour start -> centi-MB used

    @property
    def surplus(self) -> int:
        return sum(lot.remaining for lot in self.lots)

    @property
    def ex_time(self) -> int:
        """The latest expiry of the traffic still held (NEVER when some never expires)."""
        live = [lot.expires for lot in self.lots if lot.remaining]
        return NEVER if not live or None in live else max(e for e in live if e is not None)

    def serving(self, *, password_gates_traffic: bool) -> bool:
        if self.status != 1:
            return False
        if not password_gates_traffic:
            return True
        return self.client_password == self.password or bool(self.whitelist)

    def add_lot(self, flow_mb: int, day: int, now: int) -> None:
        if flow_mb == 0:
            return
        self.allocated += flow_mb * CENTI_PER_MB
        self.lots.append(Lot(flow_mb * CENTI_PER_MB, now + day * DAY if day else None))
        self.lots.sort(key=lambda lot: (lot.expires is None, lot.expires or 0))

    def settle(self, now: int, *, seed: int, password_gates_traffic: bool) -> None:
        """Consume from `settled_at` to `now` (see the module docstring)."""
        t = self.settled_at
        while t < now:
            self._expire(t)
            if not self.lots or not self.serving(password_gates_traffic=password_gates_traffic):
                break
            hour = t - t % HOUR
            end = min(hour + HOUR, now)
            for lot in self.lots:
                if lot.expires is not None and t < lot.expires < end:
                    end = lot.expires
            full = traffic.hour_centi(seed, self.name, hour)
            take = min(full * (end - hour) // HOUR - full * (t - hour) // HOUR, self.surplus)
            if take:
                self.hours[hour] = self.hours.get(hour, 0) + take
                self.used += take
                self._consume(take)
            t = end
        if now > self.settled_at:
            self._expire(now)
            self.settled_at = now

    def _consume(self, amount: int) -> None:
        for lot in self.lots:  # sorted: the soonest expiry first
            step = min(lot.remaining, amount)
            lot.remaining -= step
            amount -= step
        self.lots = [lot for lot in self.lots if lot.remaining]

    def _expire(self, t: int) -> None:
        kept = []
        for lot in self.lots:
            if lot.expires is not None and lot.expires <= t:
                self.expired += lot.remaining
            else:
                kept.append(lot)
        self.lots = kept


def describe_sub_account(sub: SubAccount) -> dict[str, Any]:
    """The control API's view of a provisioned sub-account (MB strings, two decimals)."""
    mb = traffic.format_centi
    return {
        "owner": sub.owner,
        "status": sub.status,
        "password": sub.password,
        "client_password": sub.client_password,
        "ip_whitelist": list(sub.whitelist),
        "created": traffic.utc_iso(sub.created),
        "allocated_mb": mb(sub.allocated),
        "used_mb": mb(sub.used),
        "surplus_mb": mb(sub.surplus),
        "expired_mb": mb(sub.expired),
        "lots": [
            {
                "remaining_mb": mb(lot.remaining),
                "expires": traffic.utc_iso(lot.expires) if lot.expires is not None else None,
            }
            for lot in sub.lots
        ],
    }
