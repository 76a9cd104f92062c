"""Admin views of usage: read-only records of what sync stored and did, scoped per reseller.

Every view inherits `TenantScopedAdmin`: reseller staff see only their own rows, another
reseller's row is a 404, and related filters list only sub-accounts present in the scoped
queryset (`RelatedOnlyFieldListFilter`). Usage is written by sync alone, so these views do not
add, change or delete; anomalies can be marked resolved.

The customer, sub-account and upstream account pages of accounts are extended here (usage
sits above accounts): a 90-day daily usage chart (server-rendered SVG), sync status, "Sync
now" buttons and the customer's usage alert rules. `admin_extend` re-registers them.
"""

import datetime as dt

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.admin import (
    CustomerAdmin,
    ObjectAction,
    Panel,
    SubAccountAdmin,
    TenantScopedAdmin,
    TenantScopedInline,
    UpstreamAccountAdmin,
    admin_extend,
)
from accounts.models import Customer, Provider, SubAccount, UpstreamAccount
from config.admin.charts import daily_bar_chart
from config.admin.formatting import gb, gb_text
from usage.alerts import alert_period, usage_alerts_list
from usage.models import (
    LedgerSnapshot,
    SyncRun,
    UpstreamSubAccount,
    UsageAlert,
    UsageAlertRule,
    UsageAnomaly,
    UsageDay,
)
from usage.selectors import ledger_latest_snapshot, sync_runs_recent, usage_daily_series
from usage.services import usage_snapshot_bytesflows, usage_sync_sub_account
from usage.services.alert_rules import RULE_FIELDS

# Imported for its side effect too: registers the usage tasks with Celery in every process
# that loads the admin (FLOWBILL_AFTER_SYNC_TASKS resolves them by name).
from usage.tasks import TRAILING_HOURS, usage_sync_upstream_account_task

CHART_DAYS = 90


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


class UsageAlertRuleInline(TenantScopedInline):
    model = UsageAlertRule
    extra = 0
    fields = list(RULE_FIELDS)
    verbose_name = "usage alert rule"
    verbose_name_plural = (
        "Usage alerts (once per threshold per month: e.g. 80% and 100% of a quota)"
    )


def _local_today(reseller) -> dt.date:
    return timezone.now().astimezone(reseller.tzinfo).date()


def usage_chart_panel(*, reseller, sub_account_ids: list[int], title: str) -> Panel:
    """Daily traffic of the given sub-accounts (summed) over the last 90 reseller-local days."""
    today = _local_today(reseller)
    first = today - dt.timedelta(days=CHART_DAYS - 1)
    totals: dict[dt.date, int] = {}
    series = usage_daily_series(
        reseller=reseller,
        start_day=first,
        end_day=today + dt.timedelta(days=1),
        sub_account_ids=sub_account_ids,
    )
    for points in series.values():
        for day, nbytes in points:
            totals[day] = totals.get(day, 0) + nbytes
    days = [first + dt.timedelta(days=i) for i in range(CHART_DAYS)]
    month_start = today.replace(day=1)
    svg = daily_bar_chart(
        days=[(day, gb(totals.get(day, 0))) for day in days],
        unit="GB",
        label=f"{title}: daily traffic, last {CHART_DAYS} days",
        value_text=lambda value: f"{value:,.2f} GB",
    )
    total = sum(totals.values())
    this_month = sum(v for d, v in totals.items() if d >= month_start)
    note = (
        f"{gb_text(total)} in {CHART_DAYS} days, {gb_text(this_month)} this month so far. "
        f"Days in {reseller.timezone}; 1 GB = 1,073,741,824 bytes."
    )
    return Panel(title=f"Daily usage, last {CHART_DAYS} days", html=svg, note=note)


class CustomerUsageAdmin(CustomerAdmin):
    """The customer page with its usage chart, alert rules and this month's alerts."""

    inlines = [*CustomerAdmin.inlines, UsageAlertRuleInline]

    def get_inlines(self, request, obj):
        # Alert rules are set on an existing customer (the add form stays the plain one).
        inlines = super().get_inlines(request, obj)
        return inlines if obj is not None else [i for i in inlines if i is not UsageAlertRuleInline]

    def get_change_panels(self, request, obj):
        panels = super().get_change_panels(request, obj)
        ids = list(SubAccount.objects.filter(customer=obj).values_list("pk", flat=True))
        panels.insert(
            0, usage_chart_panel(reseller=obj.reseller, sub_account_ids=ids, title=str(obj))
        )
        start, _ = alert_period(reseller=obj.reseller, now=timezone.now())
        alerts = [
            a
            for a in usage_alerts_list(reseller=obj.reseller, period_start=start)
            if a.rule.customer_id == obj.pk
        ]
        if alerts:
            panels.append(
                Panel(
                    title="Usage alerts this month",
                    html=render_to_string("admin/flowbill/alerts_panel.html", {"alerts": alerts}),
                )
            )
        return panels


class SubAccountUsageAdmin(SubAccountAdmin):
    """The sub-account page with its chart, sync status and a "Sync now" button."""

    object_actions = (
        *SubAccountAdmin.object_actions,
        ObjectAction(
            "sync_now",
            "Sync now",
            style="primary",
            help="IPFoxy: the last 72 hours again. BytesFlows: a ledger snapshot now.",
        ),
    )

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Sync needs the upstream account and its reseller (timezone) in hand.
            obj = SubAccount.objects.select_related("upstream_account__reseller", "customer").get(
                pk=obj.pk
            )
        return obj

    def do_sync_now(self, request, sub):
        now = timezone.now()
        if sub.upstream_account.provider == Provider.BYTESFLOWS:
            run = usage_snapshot_bytesflows(sub_account=sub, now=now)
        else:
            run = usage_sync_sub_account(
                sub_account=sub, start=now - dt.timedelta(hours=TRAILING_HOURS), end=now, now=now
            )
        if run.status == SyncRun.Status.SUCCEEDED:
            self.message_user(
                request,
                f"Synced {sub}: {run.rows_written} rows changed, {run.requests} upstream requests.",
                messages.SUCCESS,
            )
        elif run.status == SyncRun.Status.SKIPPED:
            self.message_user(
                request, f"Not synced: {run.error} Try again in a minute.", messages.WARNING
            )
        else:
            self.message_user(
                request, f"Sync of {sub} failed ({run.error_code}): {run.error}", messages.ERROR
            )

    def get_change_panels(self, request, obj):
        panels = super().get_change_panels(request, obj)
        reseller = obj.customer.reseller
        panels.append(
            usage_chart_panel(reseller=reseller, sub_account_ids=[obj.pk], title=str(obj))
        )
        runs = sync_runs_recent(reseller=reseller, sub_account_id=obj.pk, limit=5)
        snapshot = ledger_latest_snapshot(reseller=reseller, sub_account_id=obj.pk)
        panels.append(
            Panel(
                title="Sync status",
                html=render_to_string(
                    "admin/flowbill/sync_panel.html",
                    {
                        "runs": runs,
                        "snapshot": snapshot,
                        "remaining": gb_text(snapshot.available_traffic) if snapshot else "",
                        "total": gb_text(snapshot.total_traffic) if snapshot else "",
                    },
                ),
            )
        )
        return panels


class UpstreamAccountUsageAdmin(UpstreamAccountAdmin):
    """The upstream account page with a "Sync now" button for all its sub-accounts."""

    object_actions = (
        *UpstreamAccountAdmin.object_actions,
        ObjectAction(
            "sync_now",
            "Sync now",
            style="primary",
            help="Queue a sync of every active sub-account (and the IPFoxy sub-account list).",
        ),
    )

    def do_sync_now(self, request, upstream):
        active = SubAccount.objects.filter(
            upstream_account=upstream, status=SubAccount.Status.ACTIVE
        ).count()
        usage_sync_upstream_account_task.delay_on_commit(upstream.pk)
        self.message_user(
            request,
            f"Sync of {upstream.name} queued: {active} active sub-accounts"
            + (" and the sub-account list" if upstream.provider == Provider.IPFOXY else "")
            + ". Results appear under Sync runs and on the dashboard.",
            messages.SUCCESS,
        )

    def get_change_panels(self, request, obj):
        panels = super().get_change_panels(request, obj)
        runs = list(
            SyncRun.objects.for_reseller(obj.reseller)
            .filter(upstream_account=obj)
            .select_related("sub_account")
            .order_by("-started_at", "-pk")[:8]
        )
        panels.append(
            Panel(
                title="Latest syncs",
                html=render_to_string("admin/flowbill/sync_panel.html", {"runs": runs}),
            )
        )
        return panels


admin_extend(Customer, CustomerUsageAdmin)
admin_extend(SubAccount, SubAccountUsageAdmin)
admin_extend(UpstreamAccount, UpstreamAccountUsageAdmin)
