"""Usage services: sync (writes) and the upstream reseller operations. Split by sub-domain:

- `history`: IPFoxy hourly buckets -> UsageHour (replace) -> UsageDay;
- `ledger`: BytesFlows snapshots -> usage from the grant ledger -> UsageHour (add);
- `discovery`: the IPFoxy sub-account list;
- `allocations`: the allocation ledger (IPFoxy traffic allocated exactly once);
- `traffic`: IPFoxy sub-accounts' traffic counters, stored: all of an upstream account's
  from its sub-account list (periodic refresh), or one on request;
- `fanout`: many sub-accounts at once (thread pool, one httpx client per thread);
- `storage`, `runs`, `connectors`: shared plumbing.
"""

from usage.services.discovery import usage_discover_sub_accounts
from usage.services.fanout import SyncSummary, usage_sync_sub_accounts, usage_sync_upstream_account
from usage.services.history import usage_sync_sub_account
from usage.services.ledger import usage_snapshot_bytesflows

__all__ = [
    "SyncSummary",
    "usage_discover_sub_accounts",
    "usage_snapshot_bytesflows",
    "usage_sync_sub_account",
    "usage_sync_sub_accounts",
    "usage_sync_upstream_account",
]
