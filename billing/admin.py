"""Billing admin: plans, subscriptions, invoices. Scoped per reseller by `TenantScopedAdmin`.

Invoices are read-only here: drafts come from the cycle, and status changes are admin actions
that call the invoicing services (which check the transition table and log events): bulk
actions on the list, and one-click buttons on the invoice page (finalize, refresh, mark paid,
void, resend the email, download the PDF). The customer page (extended again here, see
`accounts.admin`) gets "Create or refresh draft invoice" for an ended month. A state that does
not allow an action (finalizing a void invoice, emailing a draft) is refused by the service
and reported as an error message.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.admin import (
    ActionInput,
    ObjectAction,
    Panel,
    ReadOnlyInline,
    ResellerAdmin,
    TenantScopedAdmin,
    TenantScopedInline,
    admin_extend,
)
from accounts.models import Customer, Reseller
from billing.admin_panels import invoice_lines_panel, invoice_parties_panel
from billing.balance.admin import CustomerBalanceActions
from billing.credit_notes import admin as _credit_note_admin  # noqa: F401 (registers it)
from billing.exports import KINDS
from billing.invoicing.cycle import (
    invoice_draft_discard,
    invoice_refresh_draft,
    invoices_generate_for_period,
)
from billing.invoicing.delivery import invoice_email_resend, invoice_pdf_store
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.periods import period_last_closed, period_parse
from billing.invoicing.voiding import invoice_void
from billing.models import (
    Invoice,
    InvoiceEmail,
    InvoiceEvent,
    InvoiceStatus,
    InvoiceUsage,
    Plan,
    PlanTier,
    Subscription,
)
from billing.money import format_money
from billing.overdue_suspension import invoices_overdue
from billing.payments.admin import (
    RECORD_PAYMENT,
    InvoicePaymentInline,
    record_payment_from_request,
)
from billing.payments.services import invoice_mark_paid
from billing.plans import (
    PLAN_FIXED_FIELDS,
    plan_create,
    plan_rules_errors,
    plan_update,
    subscription_create,
    subscription_delete,
    subscription_rules_errors,
    subscription_update,
)
from billing.traffic_policy import customer_exposure
from core.admin import ServiceSaveAdmin
from core.errors import ApplicationError
from usage.admin import CustomerUsageAdmin


def _form_errors(form, errors: dict[str, list[str]]) -> None:
    """Service rule errors onto a form: on the field when the form has it, else on top."""
    for name, messages_ in errors.items():
        field = name if name in form.fields else None
        for message in messages_:
            form.add_error(field, message if field else f"{name}: {message}")


#: The plan's own columns fixed at creation (`tiers` are rows of their own).
PLAN_COLUMNS = tuple(name for name in PLAN_FIXED_FIELDS if name != "tiers")


class PlanForm(forms.ModelForm):
    """The plan fields checked by the same rules as `plan_create` (the tiers are checked by
    `PlanTierFormSet` with the rest, once the plan fields are known). Prices are read by
    `core.money.parse_amount` (the tenant admins' `formfield_overrides`): "1e400" is a form
    error."""

    class Meta:
        model = Plan
        fields = ["reseller", "name", *PLAN_COLUMNS, "is_active"]

    def clean(self):
        data = super().clean()
        if self.instance.pk is None:
            errors = plan_rules_errors(
                pricing_model=data.get("pricing_model"),
                currency=data.get("currency"),
                base_fee=data.get("base_fee", Decimal(0)),
                minimum_charge=data.get("minimum_charge", Decimal(0)),
                package_size=data.get("package_size"),
                package_price=data.get("package_price"),
                tiers=None,
            )
            _form_errors(self, {k: v for k, v in errors.items() if k not in self.errors})
        return data


class PlanTierFormSet(forms.BaseInlineFormSet):
    """Tiers in row order, checked with the plan by `plan_rules_errors`: `tiers[1].up_to`
    lands on the second row's bound, `tiers` above the table. The checked tiers are kept on
    the plan for `PlanAdmin.save_model`, which creates plan and tiers with `plan_create`."""

    def clean(self):
        super().clean()
        plan = self.instance
        if plan.pk is not None or any(form.errors for form in self.forms):
            return
        rows = [
            form for form in self.forms if form.has_changed() and not self._should_delete_form(form)
        ]
        tiers = [
            {name: form.cleaned_data.get(name) for name in ("up_to", "unit_price", "flat_fee")}
            for form in rows
        ]
        errors = plan_rules_errors(
            pricing_model=plan.pricing_model,
            currency=plan.currency,
            base_fee=plan.base_fee,
            minimum_charge=plan.minimum_charge,
            package_size=plan.package_size,
            package_price=plan.package_price,
            tiers=tiers,
        )
        table: list[str] = []
        for path, messages_ in errors.items():
            if path == "tiers":
                table.extend(messages_)
            elif path.startswith("tiers["):
                index, field = path[len("tiers[") :].split("].")
                for message in messages_:
                    rows[int(index)].add_error(field, message)
        if table:
            raise forms.ValidationError(table)
        plan.flowbill_tiers = tiers


class PlanTierInline(TenantScopedInline):
    """Tiers of a new plan, in row order (an existing plan's tiers are shown read-only)."""

    model = PlanTier
    formset = PlanTierFormSet
    extra = 2
    fields = ["up_to", "unit_price", "flat_fee"]

    def has_add_permission(self, request, obj=None):
        return obj is None and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is None and super().has_delete_permission(request, obj)


@admin.register(Plan)
class PlanAdmin(ServiceSaveAdmin, TenantScopedAdmin):
    """New plans are created by `plan_create` (plan and tiers validated together); an
    existing plan's prices, tiers, currency, model, unit and code are read-only, and only its
    name and active flag change, through `plan_update`."""

    form = PlanForm
    list_display = [
        "code",
        "name",
        "currency",
        "pricing_model",
        "base_fee_display",
        "unit_bytes",
        "is_active",
        "reseller",
    ]
    list_filter = ["pricing_model", "currency", "is_active", "reseller"]
    search_fields = ["code", "name"]
    inlines = [PlanTierInline]
    inlines_saved_by_service = True  # `plan_create` writes the tiers
    saved_fields = ("created_at",)

    @admin.display(description="Base fee", ordering="base_fee")
    def base_fee_display(self, plan):
        return format_money(plan.base_fee, plan.currency)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["reseller", *(name for name in PLAN_FIXED_FIELDS if name != "tiers")]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        reseller = self.staff_reseller(request)
        if reseller is not None:
            initial.setdefault("currency", reseller.currency)
        return initial

    def service_update(self, request, obj, form):
        return plan_update(plan=obj, name=obj.name, is_active=obj.is_active)

    def service_create(self, request, obj, form):
        return plan_create(
            reseller=obj.reseller,
            name=obj.name,
            is_active=obj.is_active,
            tiers=getattr(obj, "flowbill_tiers", ()),
            **{name: getattr(obj, name) for name in PLAN_COLUMNS},
        )

    def has_delete_permission(self, request, obj=None):
        return False  # plans are referenced by subscriptions and invoices: deactivate them


class SubscriptionForm(forms.ModelForm):
    """Checked by `subscription_rules_errors`, the rules `subscription_create` and
    `subscription_update` apply (overlap, currency, reseller, end not before start)."""

    class Meta:
        model = Subscription
        fields = ["customer", "plan", "upstream_account", "starts_on", "ends_on"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        instance = self.instance
        candidate = Subscription(
            pk=instance.pk,
            customer=data.get("customer", getattr(instance, "customer", None)),
            plan=data.get("plan", getattr(instance, "plan", None)),
            upstream_account=data.get("upstream_account", instance.upstream_account),
            starts_on=data.get("starts_on", instance.starts_on),
            ends_on=data.get("ends_on"),
        )
        _form_errors(self, subscription_rules_errors(candidate, new=instance.pk is None))
        return data


@admin.register(Subscription)
class SubscriptionAdmin(ServiceSaveAdmin, TenantScopedAdmin):
    """Created by `subscription_create`; afterwards only `ends_on` changes
    (`subscription_update`: equal to the start cancels it). Delete removes one no issued
    invoice used (`subscription_delete`; drafts are re-rated without it)."""

    form = SubscriptionForm
    list_display = ["customer", "plan", "upstream_account", "starts_on", "ends_on"]
    list_filter = ["plan"]
    search_fields = ["customer__name", "plan__code"]
    list_select_related = ["customer", "plan", "upstream_account"]
    autocomplete_fields = ["customer"]
    inlines_saved_by_service = True
    saved_fields = ("created_at",)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["customer", "plan", "upstream_account", "starts_on"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through the service
        return actions

    def service_update(self, request, obj, form):
        return subscription_update(subscription=obj, ends_on=obj.ends_on)

    def service_create(self, request, obj, form):
        return subscription_create(
            customer=obj.customer,
            plan=obj.plan,
            starts_on=obj.starts_on,
            ends_on=obj.ends_on,
            upstream_account=obj.upstream_account,
        )

    def get_deleted_objects(self, objs, request):
        """The service decides (draft lines that name it are re-rated, not "protected")."""
        return [str(obj) for obj in objs], {"subscriptions": len(objs)}, set(), []

    def service_delete(self, request, obj):
        subscription_delete(subscription=obj, actor=self.actor(request), now=timezone.now())


class InvoiceUsageInline(ReadOnlyInline):
    model = InvoiceUsage
    fields = readonly_fields = ["sub_account_label", "upstream_name", "bytes", "subscription"]


class InvoiceEventInline(ReadOnlyInline):
    model = InvoiceEvent
    fields = readonly_fields = ["at", "from_status", "to_status", "actor", "note"]


class InvoiceEmailInline(ReadOnlyInline):
    model = InvoiceEmail
    fields = readonly_fields = [
        "sequence",
        "kind",
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


#: The invoice fields the page shows (read-only); the snapshot is rendered as blocks instead.
INVOICE_FIELDSETS = (
    (None, {"fields": ("customer", "status", "number", "replaces", "currency")}),
    ("Period and dates", {"fields": (("period_start", "period_end"), ("issued_on", "due_on"))}),
    (
        "Status history",
        {"fields": ("created_at", "refreshed_at", "finalized_at", "paid_at", "voided_at")},
    ),
)


class OverdueFilter(admin.SimpleListFilter):
    """Past the due date with a balance due (`billing.overdue_suspension.invoices_overdue`,
    the one definition of overdue)."""

    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        reseller = TenantScopedAdmin.staff_reseller(request)
        resellers = [reseller] if reseller else Reseller.objects.all()
        ids = [
            pk
            for each in resellers
            for pk in invoices_overdue(reseller=each, now=timezone.now(), days=None).values_list(
                "pk", flat=True
            )
        ]
        return (
            queryset.filter(pk__in=ids) if self.value() == "yes" else queryset.exclude(pk__in=ids)
        )


@admin.register(Invoice)
class InvoiceAdmin(TenantScopedAdmin):
    """Every field is read-only (drafts come from the cycle, issued invoices are frozen); the
    page shows the lines as a table with amounts in the currency, the totals with what was
    credited and the balance due, and seller and buyer as the document prints them. Nothing
    is deleted here: a draft is discarded (`invoice_draft_discard`), an issued invoice voided.
    """

    list_display = [
        "__str__",
        "customer",
        "period_start",
        "status",
        "total_display",
        "issued_on",
        "due_on",
        "reseller",
    ]
    list_filter = ["status", OverdueFilter, "period_start", "reseller"]
    search_fields = ["number", "customer__name"]
    list_select_related = ["customer", "reseller"]
    date_hierarchy = "period_start"
    fieldsets = INVOICE_FIELDSETS
    inlines = [InvoicePaymentInline, InvoiceUsageInline, InvoiceEventInline, InvoiceEmailInline]
    actions = ["refresh_drafts", "finalize", "mark_paid", "void", "resend_email"]
    object_actions = (
        ObjectAction("finalize", "Finalize", style="primary", help="Number, PDF and email."),
        ObjectAction("refresh_draft", "Refresh from usage"),
        ObjectAction(
            "discard_draft",
            "Discard draft",
            style="danger",
            help="Deleted with its lines; the next cycle brings it back only if there is "
            "still something to bill.",
        ),
        ObjectAction("download_pdf", "Download PDF"),
        RECORD_PAYMENT,
        ObjectAction(
            "mark_paid",
            "Mark paid",
            style="primary",
            help="Records one payment of the whole balance due, now.",
        ),
        ObjectAction("resend_email", "Resend email"),
        ObjectAction(
            "void",
            "Void",
            style="danger",
            inputs=(ActionInput("reason", "Reason", placeholder="Reason for voiding"),),
            help="The number stays taken and the customer is emailed a void notice; bill "
            "the period again with a new invoice (it names this one).",
        ),
    )
    #: Which buttons each status shows (the services refuse the others anyway).
    visible_actions = {
        InvoiceStatus.DRAFT: {"finalize", "refresh_draft", "discard_draft"},
        InvoiceStatus.FINALIZED: {
            "download_pdf",
            "record_payment",
            "mark_paid",
            "resend_email",
            "void",
        },
        InvoiceStatus.PAID: {"download_pdf", "resend_email"},
        InvoiceStatus.VOID: {"download_pdf"},
    }

    def object_action_visible(self, request, obj, name):
        return name in self.visible_actions.get(obj.status, set())

    @admin.display(description="Total", ordering="total")
    def total_display(self, invoice):
        return format_money(invoice.total, invoice.currency)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only: no save buttons (changes are the actions above).
        no_save = {"show_save": False, "show_save_and_continue": False}
        no_save |= {"show_save_and_add_another": False, "show_delete": False}
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), **no_save}
        )

    def get_change_panels(self, request, obj):
        return [
            *super().get_change_panels(request, obj),
            Panel("Lines and totals", invoice_lines_panel(obj)),
            Panel("Seller and buyer", invoice_parties_panel(obj)),
        ]

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

    def do_discard_draft(self, request, invoice):
        label = str(invoice)
        invoice_draft_discard(invoice=invoice, actor=self.actor(request), now=timezone.now())
        self.message_user(request, f"{label} discarded.", messages.SUCCESS)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:billing_invoice_changelist"))

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

    def do_record_payment(self, request, invoice):
        record_payment_from_request(self, request, invoice)

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
        return False  # drafts: "Discard draft"; issued invoices: "Void"

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
        if not result.invoice_ids:
            (outcome,) = result.skipped or result.failed  # the one customer's
            self.message_user(request, f"No draft: {outcome.message}", messages.WARNING)
            return None
        invoice = Invoice.objects.for_reseller(customer.reseller_id).get(pk=result.invoice_ids[0])
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

    def get_change_panels(self, request, obj):
        panels = super().get_change_panels(request, obj)
        if obj.traffic_policy == Customer.TrafficPolicy.CREDIT_LIMIT:
            panels.insert(0, exposure_panel(customer=obj, now=timezone.now()))
        return panels


def _mb(nbytes: int) -> str:
    mib = 1_048_576
    return f"{nbytes // mib:,} MB" if nbytes % mib == 0 else f"{nbytes:,} bytes"


def exposure_panel(*, customer: Customer, now) -> Panel:
    """The credit-limit customer's exposure, from the one selector the API and the policy use."""
    exposure = customer_exposure(customer=customer, now=now)
    currency = exposure.currency
    rows = [
        ("Unpaid invoices (net of credit notes)", exposure.balance_due),
        ("Last month, not invoiced yet", exposure.unissued),
        ("This month's usage so far", exposure.usage_so_far),
        ("Traffic allocated, not used yet", exposure.unused_traffic),
        ("Customer balance held (prepaid credit)", -exposure.customer_balance),
    ]
    reached = customer.credit_limit_reached_at
    return Panel(
        title="Credit limit and exposure",
        html=render_to_string(
            "admin/flowbill/exposure_panel.html",
            {
                "rows": [(label, format_money(amount, currency)) for label, amount in rows],
                "total": format_money(exposure.total, currency),
                "limit": format_money(customer.credit_limit, currency),
                "over": exposure.total > customer.credit_limit,
                "reached": reached,
            },
        ),
        note=f"Top-ups of {_mb(customer.topup_bytes)} when a sub-account has less than "
        f"{_mb(customer.topup_below_bytes)} left, while the exposure with the next one stays "
        "within the limit.",
    )


class ResellerBillingAdmin(ResellerAdmin):
    """The reseller page with the accounting exports (the API's CSVs)."""

    object_actions = (
        *ResellerAdmin.object_actions,
        ObjectAction(
            "export",
            "Download CSV",
            inputs=(
                ActionInput(
                    "kind",
                    "Export",
                    choices=(
                        ("invoices", "Invoices"),
                        ("credit-notes", "Credit notes"),
                        ("payments", "Payments and refunds"),
                    ),
                ),
                ActionInput("period", "Month", input_type="month"),
            ),
            help="One row per document of the month, totals per currency (for your accountant).",
        ),
    )

    def object_action_visible(self, request, obj, name: str) -> bool:
        return name == "export" or super().object_action_visible(request, obj, name)

    def object_action_initial(self, request, obj):
        last = period_last_closed(tz=obj.tzinfo, now=timezone.now())
        return {**super().object_action_initial(request, obj), "period": last.label}

    def do_export(self, request, reseller):
        from billing.api.export_views import export_response

        kind = request.POST.get("kind", "")
        if kind not in KINDS:
            self.message_user(request, "Refused: choose an export.", messages.ERROR)
            return None
        return export_response(
            reseller=reseller, kind=kind, period_label=request.POST.get("period", "")
        )


class CustomerBalanceAdmin(CustomerBalanceActions, CustomerBillingAdmin):
    """The customer page with its balance, adjustments and top-ups (`billing.balance.admin`)."""

    object_actions = (
        *CustomerBillingAdmin.object_actions,
        *CustomerBalanceActions.balance_actions,
    )


admin_extend(Customer, CustomerBalanceAdmin)
admin_extend(Reseller, ResellerBillingAdmin)
