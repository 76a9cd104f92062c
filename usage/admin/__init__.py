"""Admin views of usage: read-only records of what sync stored and did, scoped per reseller.

Every view inherits `TenantScopedAdmin`: reseller staff see only their own rows, another
reseller's row is a 404, and related filters list only sub-accounts present in the scoped
queryset (`RelatedOnlyFieldListFilter`). Usage is written by sync alone, so these views do not
add, change or delete; anomalies can be marked resolved.

The customer, sub-account and upstream account pages of accounts are extended here (usage
sits above accounts): a 90-day daily usage chart (server-rendered SVG), sync status, "Sync
now" buttons and the customer's usage alert rules. `admin_extend` re-registers them.
"""

from usage.admin import pages, records, upstream  # noqa: F401 (registers the admin classes)
from usage.admin.pages import CustomerUsageAdmin  # noqa: F401 (billing extends it)
