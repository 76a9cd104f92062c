"""Billing admin: plans, subscriptions, invoices. Scoped per reseller by `TenantScopedAdmin`.

Invoices are read-only here: drafts come from the cycle, and status changes are admin actions
that call the invoicing services (which check the transition table and log events).
"""

from django.contrib import admin, messages
from django.utils import timezone

from accounts.admin import TenantScopedAdmin
from billing.invoicing import (
    invoice_email_resend,
    invoice_finalize,
    invoice_mark_paid,
    invoice_refresh_draft,
    invoice_void,
)
from billing.models import (
    Invoice,
    InvoiceEmail,
    InvoiceEvent,
    InvoiceLine,
    InvoiceStatus,
    InvoiceUsage,
    Plan,
    PlanTier,
    Subscription,
)
from config.errors import ApplicationError


class PlanTierInline(admin.TabularInline):
    model = PlanTier
    extra = 1
    fields = ["position", "up_to", "unit_price", "flat_fee"]


@admin.register(Plan)
class PlanAdmin(TenantScopedAdmin):
    list_display = [
        "code",
        "name",
        "currency",
        "pricing_model",
        "base_fee",
        "unit_bytes",
        "reseller",
    ]
    list_filter = ["pricing_model", "currency", "is_active", "reseller"]
    search_fields = ["code", "name"]
    inlines = [PlanTierInline]


@admin.register(Subscription)
class SubscriptionAdmin(TenantScopedAdmin):
    list_display = ["customer", "plan", "upstream_account", "starts_on", "ends_on"]
    list_filter = ["plan"]
    search_fields = ["customer__name", "plan__code"]
    list_select_related = ["customer", "plan", "upstream_account"]
    autocomplete_fields = ["customer"]


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class InvoiceLineInline(_ReadOnlyInline):
    model = InvoiceLine
    fk_name = "invoice"
    fields = ["position", "group", "kind", "description", "quantity", "unit", "unit_price"]
    fields += ["amount", "adjusts_invoice"]
    readonly_fields = fields


class InvoiceUsageInline(_ReadOnlyInline):
    model = InvoiceUsage
    fields = readonly_fields = ["sub_account_label", "upstream_name", "bytes", "subscription"]


class InvoiceEventInline(_ReadOnlyInline):
    model = InvoiceEvent
    fields = readonly_fields = ["at", "from_status", "to_status", "actor", "note"]


class InvoiceEmailInline(_ReadOnlyInline):
    model = InvoiceEmail
    fields = readonly_fields = [
        "sequence",
        "status",
        "recipients",
        "attempts",
        "sent_at",
        "last_error",
        "requested_by",
    ]


def _run(modeladmin, request, queryset, label, service):
    done = 0
    for invoice in queryset:
        try:
            service(invoice)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{label}: {done} invoice(s).", messages.SUCCESS)


@admin.register(Invoice)
class InvoiceAdmin(TenantScopedAdmin):
    list_display = [
        "__str__",
        "customer",
        "period_start",
        "status",
        "total",
        "currency",
        "issued_on",
        "due_on",
        "reseller",
    ]
    list_filter = ["status", "period_start", "reseller"]
    search_fields = ["number", "customer__name"]
    list_select_related = ["customer", "reseller"]
    date_hierarchy = "period_start"
    inlines = [InvoiceLineInline, InvoiceUsageInline, InvoiceEventInline, InvoiceEmailInline]
    actions = ["refresh_drafts", "finalize", "mark_paid", "void", "resend_email"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invoice._meta.concrete_fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status == InvoiceStatus.DRAFT)

    def _actor(self, request) -> str:
        return request.user.get_username()

    @admin.action(description="Refresh selected drafts from current usage")
    def refresh_drafts(self, request, queryset):
        now = timezone.now()
        _run(
            self,
            request,
            queryset,
            "Refreshed",
            lambda i: invoice_refresh_draft(invoice=i, now=now),
        )

    @admin.action(description="Finalize selected drafts (number, PDF, email)")
    def finalize(self, request, queryset):
        now, actor = timezone.now(), self._actor(request)
        _run(
            self,
            request,
            queryset.order_by("period_start", "customer_id"),
            "Finalized",
            lambda i: invoice_finalize(invoice=i, now=now, actor=actor),
        )

    @admin.action(description="Mark selected invoices paid")
    def mark_paid(self, request, queryset):
        now, actor = timezone.now(), self._actor(request)
        _run(
            self,
            request,
            queryset,
            "Paid",
            lambda i: invoice_mark_paid(invoice=i, now=now, actor=actor),
        )

    @admin.action(description="Void selected invoices (numbers are kept)")
    def void(self, request, queryset):
        now, actor = timezone.now(), self._actor(request)
        _run(
            self,
            request,
            queryset,
            "Voided",
            lambda i: invoice_void(invoice=i, now=now, actor=actor),
        )

    @admin.action(description="Email selected invoices again")
    def resend_email(self, request, queryset):
        now, actor = timezone.now(), self._actor(request)
        _run(
            self,
            request,
            queryset,
            "Queued for email",
            lambda i: invoice_email_resend(invoice=i, now=now, requested_by=actor),
        )
