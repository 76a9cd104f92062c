"""The simulator's synthetic traffic: deterministic, integer-only, cheap to evaluate.

Every value is a pure function of `(seed, account, time)`, so two simulators with the same
seed agree byte for byte whatever windows or pages a client asks for, and a test can compute
the expected usage without talking to the server.

IPFoxy. An account's usage is modelled per local (+08:00) day: one hash gives the day's total
in hundredths of a MB ("centi-MB"), and 24 hashed weights shaped like a real day (quiet nights,
busy evenings, ~15% of hours idle) split it into hours *exactly* (largest remainder), so the
day totals equal the sum of their hours. A day costs one hash for its total and 24 for its
hours, and a cumulative counter (the sub-account list's `use_flow`) costs one hash per day.

BytesFlows. An account holds 1-3 grants (a purchase `order` or a check-in reward `sign`)
created shortly before the simulator's anchor day. Each grant is consumed linearly from its
creation at its own rate until it is exhausted or expires, so `trafficUsed` is monotone in
the clock and capped at `traffic`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

HOUR = 3600
DAY = 86400
LOCAL_OFFSET = 8 * HOUR  # IPFoxy labels buckets in +08:00
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8))
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# Relative activity per local hour of day (00..23): quiet nights, a working day, busy evenings.
DAY_SHAPE = (3, 2, 2, 1, 1, 2, 3, 5, 7, 8, 9, 9, 8, 8, 9, 9, 10, 11, 12, 13, 13, 11, 8, 5)


def mix(seed: int, *parts: object) -> int:
    """A stable 64-bit hash of the seed and parts (not Python's randomised `hash`)."""
    key = "|".join([str(seed), *(str(p) for p in parts)]).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


# --------------------------------------------------------------------------- formatting


def format_centi(centi: int) -> str:
    """Hundredths of a unit as IPFoxy prints them: "11", "1453.1", "1453.16"."""
    sign = "-" if centi < 0 else ""
    whole, frac = divmod(abs(centi), 100)
    if frac == 0:
        return f"{sign}{whole}"
    if frac % 10 == 0:
        return f"{sign}{whole}.{frac // 10}"
    return f"{sign}{whole}.{frac:02d}"


def parse_centi(text: str) -> int:
    """Parse a non-negative MB string with at most two decimals into centi-MB."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {text!r}") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a non-negative number: {text!r}")
    centi = value * 100
    if centi != centi.to_integral_value():
        raise ValueError(f"more than two decimals: {text!r}")
    return int(centi)


def centi_mb_to_kb(centi: int) -> str:
    """Centi-MB as a KB string (1 MB = 1024 KB), exact, trailing zeros trimmed."""
    kb = Decimal(centi * 1024) / Decimal(100)  # at most two decimals
    text = format(kb.quantize(Decimal("0.01")), "f").rstrip("0").rstrip(".")
    return text or "0"


@lru_cache(maxsize=65_536)
def local_label(epoch: int, *, with_minutes: bool = False) -> str:
    """An epoch second as IPFoxy's +08:00 label ("2025-06-26 13:00:00")."""
    moment = dt.datetime.fromtimestamp(epoch, LOCAL_TZ)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_minutes else "%Y-%m-%d %H:00:00")


def utc_label(epoch: int) -> str:
    """An epoch second as BytesFlows prints times (UTC, "2026-02-21 20:00:00")."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def utc_iso(epoch: int) -> str:
    """An epoch second as ISO-8601 UTC ("2026-02-21T20:00:00Z"), for the control API."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_day(epoch: int) -> int:
    """Index of the +08:00 calendar day containing `epoch` (days since 1970-01-01 local)."""
    return (epoch + LOCAL_OFFSET) // DAY


def local_day_start(day: int) -> int:
    """Epoch second at which +08:00 day `day` starts."""
    return day * DAY - LOCAL_OFFSET


# --------------------------------------------------------------------------- IPFoxy


def _account_daily_base(seed: int, account: str) -> int:
    """The account's typical day in centi-MB: 200 MB .. 20 GB, skewed towards small."""
    h = mix(seed, "base", account)
    base_mb = (200, 500, 1000, 2000, 5000, 10000, 20000)[h % 7]
    return base_mb * (80 + (h >> 8) % 41)  # centi-MB: base_mb * 100 * (80..120)%


@lru_cache(maxsize=200_000)
def day_total_centi(seed: int, account: str, day: int) -> int:
    """Centi-MB used by `account` on local day `day` (5% of days are idle)."""
    h = mix(seed, "day", account, day)
    if h % 20 == 0:
        return 0
    weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    pct = 50 + (h >> 8) % 101 - (25 if weekend else 0)
    return _account_daily_base(seed, account) * pct // 100 + (h >> 24) % 100


@lru_cache(maxsize=100_000)
def day_hours_centi(seed: int, account: str, day: int) -> tuple[int, ...]:
    """The day's total split over its 24 local hours, summing exactly to the total."""
    total = day_total_centi(seed, account, day)
    if total == 0:
        return (0,) * 24
    weights = []
    for hour in range(24):
        h = mix(seed, "hour", account, day, hour)
        weights.append(0 if h % 100 < 15 else DAY_SHAPE[hour] * (50 + (h >> 8) % 101))
    weight_sum = sum(weights)
    if weight_sum == 0:
        weights[19], weight_sum = 1, 1
    shares = [total * w // weight_sum for w in weights]
    remainders = sorted(
        range(24), key=lambda i: (-(total * weights[i] % weight_sum), -weights[i], i)
    )
    for i in remainders[: total - sum(shares)]:
        shares[i] += 1
    return tuple(shares)


def hour_centi(seed: int, account: str, hour_start: int) -> int:
    """Centi-MB used in the (complete) hour starting at epoch `hour_start`."""
    day = local_day(hour_start)
    return day_hours_centi(seed, account, day)[(hour_start - local_day_start(day)) // HOUR]


def hour_flow(seed: int, account: str, hour: dt.datetime) -> str:
    """The MB string the simulator reports for a complete hour (no revisions): for tests."""
    return format_centi(hour_centi(seed, account, int(hour.timestamp())))


@dataclass(frozen=True)
class SubAccountProfile:
    """Static facts of one IPFoxy sub-account, derived from its name."""

    account: str
    enabled: bool
    created: int  # epoch, a local midnight
    expires: int  # epoch
    package_centi: int  # purchased traffic, centi-MB


def sub_account_profile(
    seed: int, account: str, *, anchor_day: int, is_main: bool
) -> SubAccountProfile:
    """Created 30-119 days before the anchor day, 10% disabled, a package sized to its pace."""
    h = mix(seed, "sub", account)
    created = local_day_start(anchor_day - 30 - h % 90)
    valid_days = (180, 365, 730)[(h >> 8) % 3]
    expires = created + valid_days * DAY
    # Bought for 40%..250% of the validity at the account's typical pace, in 100 GB steps.
    expected = _account_daily_base(seed, account) * valid_days * (40 + (h >> 16) % 211) // 100
    step = 100 * 1024 * 100  # 100 GB in centi-MB
    package = max(step, -(-expected // step) * step)
    enabled = is_main or (h >> 24) % 10 != 0
    return SubAccountProfile(account, enabled, created, expires, package)


# --------------------------------------------------------------------------- BytesFlows


@dataclass(frozen=True)
class Grant:
    """One BytesFlows traffic record: consumed linearly from `created` at its own pace."""

    record_id: str
    order_id: str
    source_type: str  # "order" | "sign"
    traffic: int  # bytes
    created: int  # epoch
    expires: int  # epoch
    exhaust_seconds: int  # seconds of consumption that use the whole grant

    def used_at(self, now: int) -> int:
        """Bytes used at `now`: monotone in `now`, frozen at expiry, capped at `traffic`."""
        elapsed = max(0, min(now, self.expires) - self.created)
        return min(self.traffic, self.traffic * elapsed // self.exhaust_seconds)

    def active_at(self, now: int) -> bool:
        return now < self.expires


@lru_cache(maxsize=50_000)
def account_grants(seed: int, account: str, anchor: int) -> tuple[Grant, ...]:
    """1-3 grants created 0-40 days before `anchor` (epoch), newest first."""
    count = 1 + mix(seed, "grants", account) % 3
    grants = []
    for i in range(count):
        h = mix(seed, "grant", account, i)
        source = "order" if i == 0 or h % 3 else "sign"
        if source == "order":
            traffic = (1, 5, 10, 50, 100)[(h >> 8) % 5] * GIB
            span_days = (30, 60, 90, 365)[(h >> 16) % 4]
            order_id = f"ORD-{(h >> 24) % 1_000_000:06d}"
        else:
            traffic = (100, 200, 500)[(h >> 8) % 3] * MIB
            span_days = 7
            order_id = f"SIGN-{(h >> 24) % 1_000_000:06d}"
        created = anchor - ((h >> 32) % 41) * DAY - (h >> 40) % DAY
        span = span_days * DAY
        exhaust = span * (40 + (h >> 48) % 121) // 100  # 40%..160% of the validity
        grants.append(
            Grant(
                record_id=str((h % 10**8) * 10 + i),
                order_id=order_id,
                source_type=source,
                traffic=traffic,
                created=created,
                expires=created + span,
                exhaust_seconds=max(exhaust, 1),
            )
        )
    grants.sort(key=lambda g: (-g.created, g.record_id))
    return tuple(grants)


def account_balance(seed: int, account: str) -> Decimal:
    """A balance in USD with two decimals; a third of the accounts have none."""
    h = mix(seed, "balance", account)
    if h % 3 == 0:
        return Decimal("0.00")
    return Decimal((h >> 8) % 100_000) / Decimal(100)
