"""Billing admin: plans, subscriptions, invoices. Scoped per reseller by `TenantScopedAdmin`.

Invoices are read-only here: drafts come from the cycle, and status changes are admin actions
that call the invoicing services (which check the transition table and log events): bulk
actions on the list, and one-click buttons on the invoice page (finalize, refresh, mark paid,
void, resend the email, download the PDF). The customer page (extended again here, see
`accounts.admin`) gets "Create or refresh draft invoice" for an ended month. A state that does
not allow an action (finalizing a void invoice, emailing a draft) is refused by the service
and reported as an error message.
"""

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from accounts.admin import ActionInput, ObjectAction, TenantScopedAdmin, admin_extend
from accounts.models import Customer
from billing.invoicing import (
    invoice_email_resend,
    invoice_finalize,
    invoice_mark_paid,
    invoice_pdf_store,
    invoice_refresh_draft,
    invoice_void,
    invoices_generate_for_period,
    period_last_closed,
    period_parse,
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
from billing.money import format_money
from config.errors import ApplicationError
from usage.admin import CustomerUsageAdmin


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
    object_actions = (
        ObjectAction("finalize", "Finalize", style="primary", help="Number, PDF and email."),
        ObjectAction("refresh_draft", "Refresh from usage"),
        ObjectAction("download_pdf", "Download PDF"),
        ObjectAction("mark_paid", "Mark paid", style="primary"),
        ObjectAction("resend_email", "Resend email"),
        ObjectAction(
            "void",
            "Void",
            style="danger",
            inputs=(ActionInput("reason", "Reason", placeholder="Reason for voiding"),),
            help="The number stays taken; bill the period again with a new invoice.",
        ),
    )
    #: Which buttons each status shows (the services refuse the others anyway).
    visible_actions = {
        InvoiceStatus.DRAFT: {"finalize", "refresh_draft"},
        InvoiceStatus.FINALIZED: {"download_pdf", "mark_paid", "resend_email", "void"},
        InvoiceStatus.PAID: {"download_pdf", "resend_email"},
        InvoiceStatus.VOID: {"download_pdf"},
    }

    def object_action_visible(self, request, obj, name):
        return name in self.visible_actions.get(obj.status, set())

    def do_finalize(self, request, invoice):
        done = invoice_finalize(invoice=invoice, now=timezone.now(), actor=self.actor(request))
        self.message_user(
            request,
            f"Finalized as {done.number}: total {format_money(done.total, done.currency)}, "
            f"due {done.due_on:%Y-%m-%d}; the email is queued.",
            messages.SUCCESS,
        )

    def do_refresh_draft(self, request, invoice):
        done = invoice_refresh_draft(invoice=invoice, now=timezone.now())
        self.message_user(
            request,
            f"Draft refreshed from current usage: total {format_money(done.total, done.currency)}.",
            messages.SUCCESS,
        )

    def do_download_pdf(self, request, invoice):
        stored = invoice_pdf_store(invoice=invoice, now=timezone.now())
        with stored.pdf.open("rb") as fh:
            data = fh.read()
        response = HttpResponse(data, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{stored.number}.pdf"'
        response["Cache-Control"] = "no-store"
        return response

    def do_mark_paid(self, request, invoice):
        done = invoice_mark_paid(invoice=invoice, now=timezone.now(), actor=self.actor(request))
        self.message_user(request, f"{done} marked paid.", messages.SUCCESS)

    def do_void(self, request, invoice):
        reason = request.POST.get("reason", "").strip()
        done = invoice_void(
            invoice=invoice, now=timezone.now(), actor=self.actor(request), reason=reason
        )
        self.message_user(request, f"{done} voided; its number stays taken.", messages.SUCCESS)

    def do_resend_email(self, request, invoice):
        delivery = invoice_email_resend(
            invoice=invoice, now=timezone.now(), requested_by=self.actor(request)
        )
        self.message_user(
            request,
            f"Email #{delivery.sequence} of {invoice} queued to {', '.join(delivery.recipients)}.",
            messages.SUCCESS,
        )

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


class CustomerBillingAdmin(CustomerUsageAdmin):
    """The customer page with "Create or refresh draft invoice" for an ended month."""

    object_actions = (
        ObjectAction(
            "create_draft",
            "Create or refresh draft invoice",
            style="primary",
            inputs=(ActionInput("period", "Month", placeholder="YYYY-MM", input_type="month"),),
            help="For an ended month (default: last month). Issued invoices are left alone.",
        ),
        *CustomerUsageAdmin.object_actions,
    )

    def object_action_initial(self, request, obj):
        last = period_last_closed(tz=obj.reseller.tzinfo, now=timezone.now())
        return {**super().object_action_initial(request, obj), "period": last.label}

    def do_create_draft(self, request, customer):
        now = timezone.now()
        text = request.POST.get("period", "").strip()
        period = (
            period_parse(text) if text else period_last_closed(tz=customer.reseller.tzinfo, now=now)
        )
        result = invoices_generate_for_period(
            reseller=customer.reseller, period_start=period.start, now=now, customer=customer
        )
        invoice_id = (result.created or result.refreshed or result.unchanged)[0]
        invoice = Invoice.objects.get(pk=invoice_id)
        if result.created:
            text, level = f"Draft for {period.label} created", messages.SUCCESS
        elif result.refreshed:
            text, level = f"Draft for {period.label} refreshed", messages.SUCCESS
        else:
            text = f"{invoice} for {period.label} is already {invoice.status}; nothing changed"
            level = messages.WARNING
        total = format_money(invoice.total, invoice.currency)
        self.message_user(request, f"{text}: total {total}.", level)
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:billing_invoice_change", args=[invoice.pk])
        )


admin_extend(Customer, CustomerBillingAdmin)
