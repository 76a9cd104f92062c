"""Admin lists of what usage stores: sync runs, usage days, the upstream sub-account list,
ledger snapshots, anomalies, alert rules and alerts; read-only unless staff can act on them."""

from django.contrib import admin

from accounts.admin import (
    TenantScopedAdmin,
)
from usage.models import (
    LedgerSnapshot,
    SyncRun,
    UpstreamSubAccount,
    UsageAlert,
    UsageAlertRule,
    UsageAnomaly,
    UsageDay,
)

# Imported for its side effect too: registers the usage tasks with Celery in every process
# that loads the admin (FLOWBILL_AFTER_SYNC_TASKS resolves them by name).


class ReadOnlyTenantAdmin(TenantScopedAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "started_at",
        "queued_at",  # set on runs queued by a sync request; `started_at` is empty until run
        "kind",
        "status",
        "upstream_account",
        "sub_account",
        "requests",
        "rows_written",
        "duration_ms",
        "error_code",
    ]
    list_filter = ["status", "kind", ("upstream_account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["sub_account__upstream_id", "sub_account__label", "error_code"]
    date_hierarchy = "started_at"
    list_select_related = ["upstream_account", "sub_account"]


@admin.register(UsageDay)
class UsageDayAdmin(ReadOnlyTenantAdmin):
    list_display = ["day", "sub_account", "bytes", "revision", "updated_at"]
    list_filter = [("sub_account", admin.RelatedOnlyFieldListFilter), "day"]
    search_fields = ["sub_account__upstream_id", "sub_account__label"]
    date_hierarchy = "day"
    list_select_related = ["sub_account"]


@admin.register(UpstreamSubAccount)
class UpstreamSubAccountAdmin(ReadOnlyTenantAdmin):
    """The upstream's sub-account list; rows without a sub-account are not sold yet."""

    list_display = [
        "upstream_id",
        "upstream_account",
        "sub_account",
        "enabled",
        "is_main",
        "used_bytes",
        "remaining_bytes",
        "seen_at",
    ]
    list_filter = [
        ("upstream_account", admin.RelatedOnlyFieldListFilter),
        ("sub_account", admin.EmptyFieldListFilter),
        "enabled",
    ]
    search_fields = ["upstream_id"]
    list_select_related = ["upstream_account", "sub_account"]


@admin.register(LedgerSnapshot)
class LedgerSnapshotAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "taken_at",
        "sub_account",
        "total_traffic",
        "available_traffic",
        "balance",
        "usage_bytes",
        "forfeited_bytes",
        "is_baseline",
    ]
    list_filter = [("sub_account", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "taken_at"
    list_select_related = ["sub_account"]


@admin.register(UsageAnomaly)
class UsageAnomalyAdmin(TenantScopedAdmin):
    list_display = ["detected_at", "kind", "sub_account", "record_id", "resolved"]
    list_filter = ["kind", "resolved"]
    readonly_fields = [
        "sub_account",
        "kind",
        "record_id",
        "previous_value",
        "current_value",
        "detected_at",
        "snapshot",
    ]
    fields = [*readonly_fields, "resolved", "note"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(UsageAlertRule)
class UsageAlertRuleAdmin(TenantScopedAdmin):
    list_display = ["customer", "__str__", "kind", "sub_account", "notify_customer", "is_active"]
    list_filter = ["kind", "is_active", "notify_customer"]
    search_fields = ["customer__name"]
    list_select_related = ["customer", "sub_account"]
    autocomplete_fields = ["customer"]


@admin.register(UsageAlert)
class UsageAlertAdmin(ReadOnlyTenantAdmin):
    list_display = ["fired_at", "rule", "customer", "period_start", "message", "email_status"]
    list_filter = ["email_status", "period_start"]
    search_fields = ["rule__customer__name", "message"]
    list_select_related = ["rule__customer"]
    date_hierarchy = "fired_at"

    @admin.display(description="customer", ordering="rule__customer__name")
    def customer(self, obj):
        return obj.rule.customer
