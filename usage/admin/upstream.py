"""Admin lists of what Flowbill wrote upstream: allocations (the ledger), provisionings and
access changes (cut off / restored). Rows are written by the services only (the buttons on
the customer and sub-account pages, the API, the traffic policy, suspension), so these lists
never add, change or delete; they show every attempt and its outcome."""

from django.contrib import admin

from accounts.admin import ReadOnlyInline
from core.formatting import gb_text
from usage.admin.records import ReadOnlyTenantAdmin
from usage.models import AccessChange, Allocation, Provisioning

_WRITE_STATE = ["status", "attempts", "error_code", "created_by", "created_at", "settled_at"]


def _amount(obj) -> str:
    return f"{gb_text(obj.bytes)} ({obj.flow_mb:,} MB)"


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "created_at", "sub_account", "amount", "reason", "status", "attempts", "error_code",
        "created_by", "settled_at",
    ]  # fmt: skip
    list_filter = ["status", "reason"]
    search_fields = ["sub_account__upstream_id", "sub_account__label", "idempotency_key"]
    list_select_related = ["sub_account"]
    date_hierarchy = "created_at"

    @admin.display(description="amount", ordering="bytes")
    def amount(self, obj):
        return _amount(obj)


@admin.register(Provisioning)
class ProvisioningAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "account", "customer", "upstream_account", *_WRITE_STATE[:3]]
    list_filter = ["status"]
    search_fields = ["account", "customer__name", "label"]
    list_select_related = ["customer", "upstream_account"]
    exclude = ["secret"]


@admin.register(AccessChange)
class AccessChangeAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "sub_account", "action", "reason", *_WRITE_STATE[:3]]
    list_filter = ["action", "status", "reason"]
    search_fields = ["sub_account__upstream_id", "sub_account__label"]
    list_select_related = ["sub_account"]
    exclude = ["secret"]


class AllocationInline(ReadOnlyInline):
    """The sub-account's allocation ledger, newest first."""

    model = Allocation
    fields = ["created_at", "amount", "expires_in_days", "reason", *_WRITE_STATE[:3]]
    readonly_fields = fields
    ordering = ["-created_at", "-pk"]
    verbose_name_plural = "Allocations (traffic sent upstream, exactly once each)"

    @admin.display(description="amount")
    def amount(self, obj):
        return _amount(obj)
