"""`SimulatorConfig`: everything a simulator starts with (all of it changeable at runtime
except the seed, the credentials' defaults and the account list)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from usage.simulator.faults import FaultSettings

DEFAULT_API_ID = "demo-api-id"
DEFAULT_API_TOKEN = "demo-api-token"  # noqa: S105 - a public simulator default, not a secret
DEFAULT_TOKEN_PREFIX = "bf-"  # noqa: S105


@dataclass(frozen=True)
class SimulatorConfig:
    """How a simulator behaves. Defaults need no setup: the demo credentials work, any IPFoxy
    account name has traffic, and any BytesFlows token "bf-<name>" is account <name>."""

    seed: int = 0
    # IPFoxy: accepted api-id -> api-token pairs (each api-id has its own rate-limit window).
    ipfoxy_keys: dict[str, str] = field(default_factory=lambda: {DEFAULT_API_ID: DEFAULT_API_TOKEN})
    ipfoxy_main_account: str = "SIMMAIN"
    # Listed sub-accounts: explicit names, else `count` names "SIM00001", "SIM00002", ...
    ipfoxy_sub_accounts: tuple[str, ...] = ()
    ipfoxy_sub_account_count: int = 20
    ipfoxy_sub_account_prefix: str = "SIM"
    ipfoxy_lookback_days: int = 90
    # Whether hours with no traffic are left out of the flow list (default: sent as "0").
    ipfoxy_omit_zero_buckets: bool = False
    # Reseller writes: each api-id's main account starts with this traffic pool (MB) to
    # allocate from (`create-sub-account`, `allocate-flow-sub-account`); beyond it, 60300.
    ipfoxy_pool_mb: int = 10 * 1024 * 1024  # 10 TiB
    # `get-sub-account-flow` answers from a per-account cache this old at most (upstream: 1 min).
    ipfoxy_flow_cache_seconds: int = 60
    # False: a provisioned sub-account's traffic keeps flowing with the new password after
    # `update-pass` (the customer is handed it at once). True: it stops until the client logs in
    # with the current password (`/_sim/reseller/login`) or the IP whitelist is not empty.
    ipfoxy_password_gates_traffic: bool = False
    rate_limit_enabled: bool = True
    rate_limit_per_minute: int = 60
    # BytesFlows: explicit token -> account, plus (when set) any "<prefix><account>" token.
    bytesflows_tokens: dict[str, str] = field(default_factory=dict)
    bytesflows_token_prefix: str | None = DEFAULT_TOKEN_PREFIX
    # Clock: frozen at `now` when given, else real time shifted by `clock_offset_seconds`.
    now: dt.datetime | None = None
    clock_offset_seconds: float = 0.0
    # The day synthetic history hangs from (sub-account creation, BytesFlows grants);
    # default: the simulator clock's day at start.
    anchor: dt.datetime | None = None
    faults: FaultSettings = field(default_factory=FaultSettings)

    def sub_account_names(self) -> tuple[str, ...]:
        if self.ipfoxy_sub_accounts:
            return tuple(self.ipfoxy_sub_accounts)
        width = max(5, len(str(self.ipfoxy_sub_account_count)))
        prefix = self.ipfoxy_sub_account_prefix
        return tuple(f"{prefix}{i:0{width}d}" for i in range(1, self.ipfoxy_sub_account_count + 1))
