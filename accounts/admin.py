"""Django admin, scoped per reseller.

`TenantScopedAdmin` is the base of every admin class for a tenant-owned model. For reseller
staff it narrows the change list, change pages (another reseller's object is a 404), search,
autocomplete and foreign-key choices to the staff user's reseller, and fills in the
`reseller` of new rows. Superusers see everything.

Change pages also get two extension points, so the apps above accounts can add to them
without accounts importing them (imports flow accounts <- usage <- billing):
- object actions (`object_actions` + a `do_<name>` method): one-click buttons posting to
  `<id>/do/<name>/` (CSRF-protected POST only). The object is fetched through the scoped
  queryset, so another reseller's id is a 404; the action calls one service, and an
  `ApplicationError` (a state that does not allow it) becomes an error message;
- panels (`get_change_panels`): read-only blocks above the form, e.g. usage charts.
usage/admin.py and billing/admin.py subclass these admin classes and re-register them with
`admin_extend`, so the Customer page ends up as accounts' form + usage's chart and alert
rules + billing's invoice actions.

Upstream accounts and sub-accounts take their credentials in write-only inputs
(`SecretFieldsForm`) and save through the accounts services, with the API's rules. Staff
logins of a reseller are made by `staff_user_create`: "Create staff login" on the reseller's
page (the superuser's; a one-time password shown once) or "Add user" with a reseller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import NotRelationField, get_fields_from_path, unquote
from django.contrib.admin.widgets import AdminFileWidget
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import (
    FieldDoesNotExist,
    ImproperlyConfigured,
    PermissionDenied,
    ValidationError,
)
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from accounts.api_keys import api_key_create, api_key_revoke
from accounts.models import (
    ApiKey,
    Customer,
    Provider,
    Reseller,
    SubAccount,
    UpstreamAccount,
    User,
)
from accounts.services import (
    CREDENTIAL_KEYS,
    CUSTOMER_UPDATABLE_FIELDS,
    RESELLER_PLATFORM_FIELDS,
    SUB_ACCOUNT,
    SUB_ACCOUNT_UPDATABLE_FIELDS,
    UPSTREAM,
    UPSTREAM_ACCOUNT_UPDATABLE_FIELDS,
    InvalidCredentials,
    credential_keys,
    credentials_check,
    credentials_entered,
    credentials_resolve,
    customer_check_currency_change,
    customer_create,
    customer_update,
    reseller_create,
    reseller_logo_delete,
    reseller_logo_set,
    reseller_logo_validate,
    reseller_settings_check,
    reseller_settings_update,
    staff_user_check,
    staff_user_check_new,
    staff_user_create,
    sub_account_create,
    sub_account_update,
    upstream_account_check,
    upstream_account_create,
    upstream_account_update,
)
from accounts.sub_accounts import (
    reseller_today,
    sub_account_close,
    sub_account_delete,
    sub_account_move,
)
from accounts.tenancy import (
    is_platform_admin,
    reseller_for_user,
)
from core.admin import ServiceSaveAdmin
from core.errors import (
    ApplicationError,
    log_unavailable,
    service_unavailable_body,
    unavailable_service,
)
from core.money import ADMIN_FORMFIELD_OVERRIDES


@dataclass(frozen=True)
class ActionInput:
    """A small input posted with an object action (a key name, a month, a reason)."""

    name: str
    label: str
    placeholder: str = ""
    input_type: str = "text"
    value: str = ""
    #: (value, label) pairs: the input is a drop-down of these (`object_action_choices`).
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ObjectAction:
    """A button on a change page; `do_<name>(request, obj)` on the admin performs it."""

    name: str
    label: str
    style: str = ""  # "", "primary" or "danger"
    inputs: tuple[ActionInput, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class BoundObjectAction:
    action: ObjectAction
    url: str
    inputs: tuple[ActionInput, ...] = ()


@dataclass(frozen=True)
class Panel:
    """A read-only block shown above a change form (chart, status, figures)."""

    title: str
    html: SafeString
    note: str = ""


def admin_extend(model, admin_class, site=None) -> None:
    """Replace `model`'s registered admin by `admin_class`, which must extend it."""
    site = site or admin.site
    current = site._registry.get(model)
    if current is not None and not issubclass(admin_class, type(current)):
        raise ImproperlyConfigured(
            f"{admin_class.__name__} must extend {type(current).__name__} to replace it"
        )
    if current is not None:
        site.unregister(model)
    site.register(model, admin_class)


class TenantRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-object filter whose choices, for reseller staff, are only their reseller's
    objects: tenant-owned models through `for_reseller`, any other related model (a login,
    say) only as far as the staff's own rows refer to it."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        if hasattr(related, "tenant_path"):
            allowed = admin_rows(related, request).values("pk")
        elif TenantScopedAdmin.staff_reseller(request) is None:
            return super().field_choices(field, request, model_admin)
        else:
            allowed = (
                model_admin.get_queryset(request)
                .exclude(**{f"{self.field_path}__isnull": True})
                .values(f"{self.field_path}__pk")
            )
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, limit_choices_to={"pk__in": allowed}, ordering=ordering
        )


class TenantAllValuesFieldListFilter(admin.AllValuesFieldListFilter):
    """A filter by the values of a plain field across a relation (`event__type`): its
    choices are the values in the rows the admin lists, where Django's would read every row
    of the related model (every reseller's)."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = (
            model_admin.get_queryset(request)
            .order_by(field_path)
            .values_list(field_path, flat=True)
            .distinct()
        )


def _scope_related_filter(model, entry):
    """`entry` of `list_filter`, with a plain related-field filter made tenant-scoped."""
    if isinstance(entry, str):
        path_, filter_class = entry, admin.RelatedFieldListFilter
    elif isinstance(entry, tuple | list) and isinstance(entry[0], str):
        path_, filter_class = entry[0], entry[1]
    else:
        return entry  # a SimpleListFilter subclass: it chooses its own lookups
    if filter_class not in (admin.RelatedFieldListFilter, admin.RelatedOnlyFieldListFilter):
        return entry
    try:
        field = get_fields_from_path(model, path_)[-1]
    except (FieldDoesNotExist, NotRelationField):
        return entry
    if field.is_relation:
        return (path_, TenantRelatedFieldListFilter)
    if "__" in path_ and filter_class is admin.RelatedFieldListFilter and _all_values(field):
        return (path_, TenantAllValuesFieldListFilter)
    return entry


def _all_values(field) -> bool:
    """Whether Django lists a plain field's choices by reading its values
    (`AllValuesFieldListFilter`, its last resort: not a boolean, a field with choices or a
    date, the filters it registers before it)."""
    return not field.choices and not isinstance(field, models.BooleanField | models.DateField)


def admin_rows(model, request) -> QuerySet:
    """The rows of tenant model `model` the admin user may see: their reseller's for
    reseller staff, every reseller's for the platform operator (`unscoped`: the admin's one
    global path), none for anyone else."""
    if is_platform_admin(request.user):
        return model.unscoped.all()
    reseller = reseller_for_user(request.user)
    if reseller is None:
        return model.objects.none()
    return model.objects.for_reseller(reseller)


class TenantScopedAdmin(admin.ModelAdmin):
    """ModelAdmin for models with a `tenant_path`; staff of reseller R see only R's rows."""

    #: Fields hidden from reseller staff (they belong to their own reseller implicitly).
    tenant_field = "reseller"
    #: One-click actions of the change page (see the module docstring).
    object_actions: tuple[ObjectAction, ...] = ()
    change_form_template = "admin/flowbill/change_form.html"
    #: Every decimal input (prices, tax rates, costs, quotas) through the one money parser.
    formfield_overrides = ADMIN_FORMFIELD_OVERRIDES

    @staticmethod
    def staff_reseller(request):
        return None if is_platform_admin(request.user) else reseller_for_user(request.user)

    def _is_tenant_staff(self, request) -> bool:
        return bool(request.user.is_active and request.user.is_staff and request.user.reseller_id)

    # Reseller staff manage their own reseller's data without per-model permissions.
    def has_module_permission(self, request):
        return self._is_tenant_staff(request) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._is_tenant_staff(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self._is_tenant_staff(request) or super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._is_tenant_staff(request) or super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._is_tenant_staff(request) or super().has_delete_permission(request, obj)

    def get_queryset(self, request):
        queryset = admin_rows(self.model, request)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def _get_visible_or_404(self, request, object_id):
        """Another reseller's object (or a made-up id) is a plain 404, never a hint."""
        if object_id is None:
            return None
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such object.")
        return obj

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self._get_visible_or_404(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None:
            extra["flowbill_actions"] = [
                self._bind_action(request, action, obj)
                for action in self.object_actions
                if self.object_action_visible(request, obj, action.name)
            ]
            extra["flowbill_panels"] = self.get_change_panels(request, obj)
        return super().change_view(request, object_id, form_url, extra)

    # -- object actions and panels ----------------------------------------------------------

    def get_change_panels(self, request, obj) -> list[Panel]:
        """Read-only blocks above the change form; subclasses add theirs to super()'s."""
        return []

    def object_action_visible(self, request, obj, name: str) -> bool:
        """Whether to show the button now (the action itself still checks the state)."""
        return True

    def object_action_initial(self, request, obj) -> dict[str, str]:
        """Initial values of action inputs, by input name (e.g. last month for a period)."""
        return {}

    def object_action_choices(self, request, obj) -> dict[str, tuple[tuple[str, str], ...]]:
        """Drop-down choices of action inputs, by input name (e.g. the reseller's customers)."""
        return {}

    def _bind_action(self, request, action: ObjectAction, obj) -> BoundObjectAction:
        url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_action",
            args=[obj.pk, action.name],
        )
        initial = self.object_action_initial(request, obj)
        choices = self.object_action_choices(request, obj) if action.inputs else {}
        inputs = tuple(
            replace(
                field,
                value=initial.get(field.name, field.value),
                choices=choices.get(field.name, field.choices),
            )
            for field in action.inputs
        )
        return BoundObjectAction(action=action, url=url, inputs=inputs)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_action"
        return [
            path(
                "<path:object_id>/do/<slug:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=name,
            ),
            *super().get_urls(),
        ]

    def object_action_view(self, request, object_id, action):
        """POST only (CSRF-checked by `admin_view`): run `do_<action>` on a visible object."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self._get_visible_or_404(request, object_id)
        if action not in {a.name for a in self.object_actions}:
            raise Http404("No such action.")
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        try:
            response = getattr(self, f"do_{action}")(request, obj)
        except ApplicationError as exc:
            self.message_user(request, f"Refused: {exc.message}", messages.ERROR)
            response = None
        except Exception as exc:
            # The broker (or Redis, the database) down: the API's 503 detection and message.
            service = unavailable_service(exc)
            if service is None:
                raise
            log_unavailable(service, exc, request.path)
            body = service_unavailable_body(service)
            self.message_user(request, f"Not done: {body['message']}", messages.ERROR)
            response = None
        return response or HttpResponseRedirect(self.change_url(obj))

    def change_url(self, obj) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[obj.pk],
        )

    def actor(self, request) -> str:
        return request.user.get_username()

    def delete_view(self, request, object_id, extra_context=None):
        self._get_visible_or_404(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._get_visible_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def get_list_filter(self, request):
        """For reseller staff: no reseller filter, and every related-object filter lists
        only their reseller's objects (a plain `list_filter = ["plan"]` would list every
        reseller's plans)."""
        filters = super().get_list_filter(request)
        staff = self.staff_reseller(request) is not None
        return [
            _scope_related_filter(self.model, entry)
            for entry in filters
            if not (staff and entry == self.tenant_field)
        ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        reseller = self.staff_reseller(request)
        related = db_field.related_model
        if hasattr(related, "tenant_path"):
            kwargs["queryset"] = admin_rows(related, request)
            if reseller is not None and db_field.name == self.tenant_field:
                # Staff work for exactly one reseller: shown, fixed, and still validated
                # (so unique constraints that include it are checked by the form).
                kwargs["initial"] = reseller.pk
                kwargs["disabled"] = True
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ResellerForm(forms.ModelForm):
    """The same rules as the settings API (accounts.services): the logo checks, and
    `reseller_settings_check` (grace days, platform-owned fields, a unique invoice prefix).
    `ResellerAdmin` saves it through the services too."""

    #: Whether the user is the platform operator (set by `ResellerAdmin.get_form`).
    platform_admin = False
    #: A plain file field, so the one logo check (`clean_logo`: `reseller_logo_validate`,
    #: which refuses a decompression bomb before decoding) is the only one to read the file.
    logo = forms.FileField(required=False, widget=AdminFileWidget)

    class Meta:
        model = Reseller
        fields = [
            "name", "slug", "address", "tax_id", "currency", "timezone", "invoice_prefix",
            "payment_terms_days", "reminder_offsets", "grace_period_days",
            "suspend_after_overdue_days",
            "sender_email", "verified_sender_domain",
            "payment_instructions", "logo",
        ]  # fmt: skip

    def clean_logo(self):
        logo = self.cleaned_data.get("logo")
        if logo and "logo" in self.changed_data and hasattr(logo, "content_type"):
            try:
                reseller_logo_validate(logo)
            except ValidationError as exc:
                raise forms.ValidationError(exc.message_dict["logo"]) from exc
        return logo

    def settings_changes(self) -> dict:
        """The fields to save: the changed ones (a new reseller: all of them), no logo."""
        names = self.changed_data if self.instance.pk else self.cleaned_data
        return {n: self.cleaned_data[n] for n in names if n in self.cleaned_data and n != "logo"}

    def clean(self):
        cleaned = super().clean()
        try:
            reseller_settings_check(
                reseller=self.instance,
                fields=self.settings_changes(),
                platform_admin=self.platform_admin,
            )
        except ValidationError as exc:
            self.add_error(None, exc)
        return cleaned


class ResellerAdmin(ServiceSaveAdmin, TenantScopedAdmin):
    """Reseller staff edit their own reseller's settings; the platform-owned fields (name,
    slug, currency, timezone, invoice prefix, verified sender domain) are read-only to them
    (not even part of their form, so a forged POST cannot set them) and editable by the
    superuser. Saved through the same services as the settings API."""

    form = ResellerForm
    list_display = ["name", "slug", "currency", "timezone", "invoice_prefix"]
    search_fields = ["name", "slug", "tax_id"]
    prepopulated_fields = {"slug": ["name"]}
    object_actions = (
        ObjectAction(
            "create_staff_user",
            "Create staff login",
            inputs=(
                ActionInput("username", "Username", placeholder="Username"),
                ActionInput("email", "Email", placeholder="Email", input_type="email"),
            ),
            help="A login for this reseller's staff; its one-time password is shown once.",
        ),
    )

    def object_action_visible(self, request, obj, name: str) -> bool:
        return is_platform_admin(request.user)  # staff never create logins

    def do_create_staff_user(self, request, reseller):
        """`staff_user_create` (the superuser only): the generated password is on this
        response only (never in messages or the session, never cached)."""
        if not is_platform_admin(request.user):
            raise PermissionDenied
        try:
            created = staff_user_create(
                reseller=reseller,
                username=request.POST.get("username", ""),
                email=request.POST.get("email", ""),
            )
        except ValidationError as exc:
            self.message_user(request, f"Refused: {' '.join(exc.messages)}", messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Staff login created",
            "opts": self.opts,
            "original": reseller,
            "staff_user": created.user,
            "password": created.password,
            "login_url": request.build_absolute_uri(reverse(f"{self.admin_site.name}:login")),
            "back_url": self.change_url(reseller),
        }
        response = TemplateResponse(request, "admin/flowbill/staff_user_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def has_add_permission(self, request):
        return is_platform_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_platform_admin(request.user)

    def get_readonly_fields(self, request, obj=None):
        if is_platform_admin(request.user):
            return super().get_readonly_fields(request, obj)
        return [name for name in ResellerForm.Meta.fields if name in RESELLER_PLATFORM_FIELDS]

    def get_prepopulated_fields(self, request, obj=None):
        if is_platform_admin(request.user):
            return super().get_prepopulated_fields(request, obj)
        return {}  # the slug is read-only to staff

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.platform_admin = is_platform_admin(request.user)
        return form

    saved_fields = ("logo",)

    def service_update(self, request, obj, form):
        saved = reseller_settings_update(
            reseller=Reseller.objects.get(pk=obj.pk),
            platform_admin=is_platform_admin(request.user),
            **form.settings_changes(),
        )
        return self._logo_save(saved, form)

    def service_create(self, request, obj, form):
        return self._logo_save(reseller_create(**form.settings_changes()), form)

    def service_delete(self, request, obj):
        obj.delete()  # the platform operator's only (`has_delete_permission`)

    @staticmethod
    def _logo_save(saved: Reseller, form) -> Reseller:
        """Then the logo services, when the logo input changed."""
        if "logo" not in form.changed_data:
            return saved
        upload = form.cleaned_data.get("logo")
        if upload:
            return reseller_logo_set(reseller=saved, upload=upload)
        return reseller_logo_delete(reseller=saved)


class TenantScopedInline(admin.TabularInline):
    """An inline of a tenant-owned model: reseller staff may use it without per-model
    permissions, and its foreign-key choices are scoped to their reseller."""

    formfield_overrides = ADMIN_FORMFIELD_OVERRIDES

    def _is_tenant_staff(self, request) -> bool:
        return bool(request.user.is_active and request.user.is_staff and request.user.reseller_id)

    def has_view_permission(self, request, obj=None):
        return self._is_tenant_staff(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._is_tenant_staff(request) or super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._is_tenant_staff(request) or super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._is_tenant_staff(request) or super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if hasattr(db_field.related_model, "tenant_path"):
            kwargs["queryset"] = admin_rows(db_field.related_model, request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyInline(TenantScopedInline):
    """A log or a frozen part of its parent (lines, events, deliveries): shown, never edited."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CustomerForm(forms.ModelForm):
    """The customer form; a currency change goes through the same rule as the API."""

    class Meta:
        model = Customer
        fields = [
            "reseller", "name", "email", "cc_emails", "address_line1", "address_line2",
            "city", "postal_code", "country", "tax_id", "tax_rate", "currency",
            "payment_terms_days", "traffic_policy", "credit_limit", "topup_bytes",
            "topup_below_bytes",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["traffic_policy"].required = False  # empty: manual
        currency = self.fields["currency"]
        currency.required = False  # empty: the reseller's, stored by the services
        currency.help_text = "ISO 4217; empty: the reseller's (stored on the customer)."

    def clean_traffic_policy(self):
        return self.cleaned_data.get("traffic_policy") or Customer.TrafficPolicy.MANUAL

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and "currency" in self.changed_data:
            try:
                customer_check_currency_change(
                    customer=self.instance, currency=cleaned.get("currency") or ""
                )
            except ApplicationError as exc:
                self.add_error("currency", exc.message)
        return cleaned


class CustomerAdmin(ServiceSaveAdmin, TenantScopedAdmin):
    """Saved through `customer_create` / `customer_update` (the API's rules). The status
    changes only by the Suspend / Reinstate buttons (usage's admin adds them: they act
    upstream)."""

    form = CustomerForm
    list_display = [
        "name", "email", "currency", "tax_rate", "status", "traffic_policy", "reseller",
    ]  # fmt: skip
    list_filter = ["status", "traffic_policy", "reseller"]
    search_fields = ["name", "email", "tax_id"]
    object_actions = (
        ObjectAction(
            "create_api_key",
            "Create API key",
            inputs=(ActionInput("name", "Key name", placeholder="Key name, e.g. dashboard"),),
            help="A customer key reads only this customer's usage and invoices.",
        ),
    )

    def do_create_api_key(self, request, customer):
        """Create a customer API key and show it once, on this response only (never stored in
        messages or the session, never cached)."""
        name = request.POST.get("name", "").strip() or f"{customer.name} key"
        api_key, raw_key = api_key_create(
            reseller=customer.reseller,
            name=name[:100],
            customer=customer,
            created_by_user=request.user,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "original": customer,
            "api_key": api_key,
            "raw_key": raw_key,
            "back_url": self.change_url(customer),
        }
        response = TemplateResponse(request, "admin/flowbill/api_key_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def get_readonly_fields(self, request, obj=None):
        state = (
            [
                "status",
                "suspended_at",
                "suspended_by",
                "suspension_reason",
                "credit_limit_reached_at",
            ]
            if obj is not None
            else []
        )
        return [*super().get_readonly_fields(request, obj), *state]

    def service_update(self, request, obj, form):
        changed = {
            n: form.cleaned_data[n] for n in form.changed_data if n in CUSTOMER_UPDATABLE_FIELDS
        }
        return customer_update(customer=Customer.objects.row_of(obj).get(), **changed)

    def service_create(self, request, obj, form):
        return customer_create(**self.form_data(form))

    def service_delete(self, request, obj):
        obj.delete()

    def get_change_panels(self, request, obj):
        panels = super().get_change_panels(request, obj)
        keys = list(ApiKey.objects.filter(customer=obj).order_by("-created_at")[:10])
        if keys:
            panels.append(
                Panel(
                    title="API keys",
                    html=render_to_string("admin/flowbill/api_keys_panel.html", {"keys": keys}),
                )
            )
        return panels


def secret_input(label: str, help_text: str) -> forms.CharField:
    """A write-only credential input: never pre-filled (`render_value=False`), never echoed."""
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text,
    )


def credentials_state(*, kind: str, provider: str, credentials) -> str:
    """`set`, `missing` (the provider needs some that are not stored) or `not needed`."""
    required = CREDENTIAL_KEYS.get((kind, provider), ())
    if not required:
        return "not needed"
    return "set" if all(credentials.get(key) for key in required) else "missing"


class SecretFieldsForm(forms.ModelForm):
    """A form with write-only inputs for the model's `credentials`, one per key some provider
    takes for `credential_kind` (accounts.services.CREDENTIAL_KEYS; subclasses declare them).

    Inputs are never pre-filled (the stored values are not sent to the browser) and each
    says whether a value is stored; on a change, an input left empty keeps its stored value.
    The rule of which keys a provider needs is the services' (`credentials_check`,
    `credentials_resolve`), applied here to show field errors and again when the admin saves
    through the services."""

    credential_kind = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.credentials if self.instance.pk else {}
        for name in credential_keys(kind=self.credential_kind):
            if name in self.fields:
                state = "Stored; leave empty to keep it." if stored.get(name) else "Not set."
                self.fields[name].help_text = f"{state} {self.fields[name].help_text}"

    def credentials_entered(self) -> dict[str, str]:
        """The credential inputs typed in (the others keep their stored values)."""
        return credentials_entered(
            {
                name: self.cleaned_data.get(name) or ""
                for name in credential_keys(kind=self.credential_kind)
            }
        )

    def check_credentials(self, provider: str) -> None:
        """The services' rule for `provider` over what was typed in (a new object) or the
        stored credentials with it (a change), as errors on the inputs."""
        if provider not in Provider.values:
            return  # the provider's own field error says why
        try:
            if self.instance.pk is None:
                credentials_check(
                    kind=self.credential_kind,
                    provider=provider,
                    credentials=self.credentials_entered(),
                )
            else:
                credentials_resolve(
                    kind=self.credential_kind,
                    provider=provider,
                    stored=self.instance.credentials,
                    given=self.credentials_entered(),
                    keep_stored=True,
                )
        except InvalidCredentials as exc:
            self.add_credential_errors(exc)

    def add_credential_errors(self, exc: InvalidCredentials) -> None:
        for key, errors in exc.problems.items():
            if key in self.fields:
                self.add_error(key, errors)
            else:
                self.add_error(None, [f"{key}: {error}" for error in errors])

    def changes(self, updatable: frozenset[str]) -> dict:
        """The changed fields an update service takes (secret inputs go as credentials)."""
        return {n: self.cleaned_data[n] for n in self.changed_data if n in updatable}


_CREDENTIAL_HELP = "Write-only: never shown again."


class UpstreamAccountForm(SecretFieldsForm):
    """IPFoxy needs the api-id and api-token (BytesFlows none: its tokens sit on the
    sub-accounts); moving an IPFoxy account's base URL needs both typed in again."""

    credential_kind = UPSTREAM
    api_id = secret_input("IPFoxy API id", f"Required for IPFoxy. {_CREDENTIAL_HELP}")
    api_token = secret_input("IPFoxy API token", f"Required for IPFoxy. {_CREDENTIAL_HELP}")

    class Meta:
        model = UpstreamAccount
        fields = [
            "reseller",
            "provider",
            "name",
            "base_url",
            "cost_per_gb",
            "mb_bytes",
            "requests_per_minute",
            "gateway_host",
            "gateway_port",
            "proxy_username_format",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["proxy_username_format"].required = False  # empty: the default

    def clean_proxy_username_format(self):
        given = self.cleaned_data.get("proxy_username_format") or ""
        return given or UpstreamAccount._meta.get_field("proxy_username_format").default

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            self.check_credentials(cleaned.get("provider") or "")
            return cleaned
        fields = {"credentials": self.credentials_entered()}
        if "base_url" in self.changed_data:
            fields["base_url"] = cleaned.get("base_url") or ""
        try:
            upstream_account_check(
                upstream_account=self.instance, fields=fields, keep_stored_credentials=True
            )
        except InvalidCredentials as exc:
            self.add_credential_errors(exc)
        except ValidationError as exc:
            self.add_error("base_url", exc.messages)  # the base URL moved without them
        return cleaned


class UpstreamAccountAdmin(ServiceSaveAdmin, TenantScopedAdmin):
    """Saved through `upstream_account_create` / `upstream_account_update`, with the same
    credential rules as the API; the provider is fixed once created (as in the API)."""

    form = UpstreamAccountForm
    list_display = [
        "name", "provider", "base_url", "credentials_status", "cost_per_gb", "is_active",
        "reseller",
    ]  # fmt: skip
    list_filter = ["provider", "is_active", "reseller"]
    search_fields = ["name"]

    @admin.display(description="credentials")
    def credentials_status(self, obj):
        return credentials_state(kind=UPSTREAM, provider=obj.provider, credentials=obj.credentials)

    def get_readonly_fields(self, request, obj=None):
        fixed = ["provider"] if obj is not None else []
        return [*super().get_readonly_fields(request, obj), *fixed]

    saved_fields = ("credentials",)

    def service_update(self, request, obj, form):
        return upstream_account_update(
            upstream_account=UpstreamAccount.objects.row_of(obj).get(),
            keep_stored_credentials=True,
            credentials=form.credentials_entered(),
            **form.changes(UPSTREAM_ACCOUNT_UPDATABLE_FIELDS),
        )

    def service_create(self, request, obj, form):
        return upstream_account_create(
            credentials=form.credentials_entered(), **self.form_data(form)
        )

    def service_delete(self, request, obj):
        obj.delete()


class SubAccountForm(SecretFieldsForm):
    """A BytesFlows sub-account needs its own token (IPFoxy ones none)."""

    credential_kind = SUB_ACCOUNT
    token = secret_input("BytesFlows token", f"Required for BytesFlows. {_CREDENTIAL_HELP}")

    class Meta:
        model = SubAccount
        fields = [
            "customer",
            "upstream_account",
            "upstream_id",
            "label",
            "status",
            "active_from",
            "active_to",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        status = self.fields.get("status")
        if status is not None:  # closing is the "Close" action (it sets the last day)
            status.choices = [c for c in status.choices if c[0] != SubAccount.Status.CLOSED]

    def clean(self):
        cleaned = super().clean()
        upstream = self.instance.upstream_account if self.instance.pk else None
        upstream = upstream or cleaned.get("upstream_account")
        if upstream is not None:
            self.check_credentials(upstream.provider)
        return cleaned


class SubAccountAdmin(ServiceSaveAdmin, TenantScopedAdmin):
    """Saved through `sub_account_create` / `sub_account_update`, with the API's token rule;
    the upstream account and upstream id are fixed once created (as in the API). The holder
    and dates change through the "Move to another customer" and "Close" actions, and "Delete"
    removes one never billed: `accounts.sub_accounts`, as the API's move, close and delete."""

    form = SubAccountForm
    list_display = [
        "upstream_id", "label", "customer", "upstream_account", "status", "credentials_status",
    ]  # fmt: skip
    list_filter = ["status", "upstream_account__provider"]
    search_fields = ["upstream_id", "label", "customer__name"]
    list_select_related = ["customer", "upstream_account"]
    autocomplete_fields = ["customer"]

    @admin.display(description="credentials")
    def credentials_status(self, obj):
        return credentials_state(
            kind=SUB_ACCOUNT, provider=obj.upstream_account.provider, credentials=obj.credentials
        )

    object_actions = (
        ObjectAction(
            "move",
            "Move to another customer",
            inputs=(
                ActionInput("customer", "New customer", placeholder="New customer"),
                ActionInput("from", "From (first day)", input_type="date"),
            ),
            help="Its usage from this day on is billed to the new customer; earlier days "
            "stay with whoever held it then.",
        ),
        ObjectAction(
            "close",
            "Close",
            inputs=(ActionInput("on", "Last day", input_type="date"),),
            help="Its usage through this day is billed; it is synced until the day ends and "
            "its upstream id can be attached again from the next day.",
        ),
        ObjectAction(
            "delete",
            "Delete",
            style="danger",
            help="Only one never billed and without usage (a typo'd upstream id); otherwise "
            "close it.",
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        fixed = ["customer", "upstream_account", "upstream_id"] if obj is not None else []
        dates = ["active_from", "active_to"] if obj is not None else ["active_to"]
        closed = ["status"] if obj is not None and obj.status == SubAccount.Status.CLOSED else []
        return [*super().get_readonly_fields(request, obj), *fixed, *dates, *closed]

    def has_delete_permission(self, request, obj=None):
        return False  # the "Delete" action, through `sub_account_delete`

    def object_action_visible(self, request, obj, name: str) -> bool:
        return name == "delete" or obj.status != SubAccount.Status.CLOSED

    def object_action_initial(self, request, obj) -> dict[str, str]:
        today = reseller_today(reseller=obj.customer.reseller, now=timezone.now())
        return {"from": today.isoformat(), "on": today.isoformat()}

    def object_action_choices(self, request, obj) -> dict[str, tuple[tuple[str, str], ...]]:
        others = Customer.objects.for_reseller(obj.customer.reseller).exclude(pk=obj.customer_id)
        return {"customer": tuple((str(c.pk), str(c)) for c in others.order_by("name", "pk"))}

    def do_move(self, request, sub_account):
        """`sub_account_move` to one of the reseller's customers (another id: refused)."""
        customers = Customer.objects.for_reseller(sub_account.customer.reseller)
        customer = customers.filter(pk=_int_or_none(request.POST.get("customer"))).first()
        day = _date_or_none(request.POST.get("from"))
        if customer is None or day is None:
            self.message_user(request, "Refused: choose a customer and a day.", messages.ERROR)
            return None
        if self._refused(
            request,
            sub_account_move,
            sub_account=sub_account,
            to_customer=customer,
            on_day=day,
            actor=self.actor(request),
        ):
            return None
        self.message_user(
            request, f"{sub_account} is held by {customer} from {day}.", messages.SUCCESS
        )
        return None

    def do_close(self, request, sub_account):
        day = _date_or_none(request.POST.get("on"))
        if day is None:
            self.message_user(request, "Refused: give its last day.", messages.ERROR)
            return None
        if not self._refused(request, sub_account_close, sub_account=sub_account, on_day=day):
            self.message_user(
                request, f"{sub_account} is closed; its last day is {day}.", messages.SUCCESS
            )
        return None

    def do_delete(self, request, sub_account):
        if self._refused(request, sub_account_delete, sub_account=sub_account):
            return None
        self.message_user(request, f"Sub-account {sub_account} deleted.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
            )
        )

    def _refused(self, request, service, **kwargs) -> bool:
        """Run `service`; a model validation error is shown like a refused state."""
        try:
            service(**kwargs)
        except ValidationError as exc:
            self.message_user(request, f"Refused: {' '.join(exc.messages)}", messages.ERROR)
            return True
        return False

    saved_fields = ("credentials",)

    def service_update(self, request, obj, form):
        return sub_account_update(
            sub_account=SubAccount.objects.select_related("upstream_account").row_of(obj).get(),
            keep_stored_credentials=True,
            credentials=form.credentials_entered(),
            **form.changes(SUB_ACCOUNT_UPDATABLE_FIELDS),
        )

    def service_create(self, request, obj, form):
        return sub_account_create(credentials=form.credentials_entered(), **self.form_data(form))


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None


def _date_or_none(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        return None


class ApiKeyAdmin(TenantScopedAdmin):
    """Every key of the reseller (its own and its customers'): listed with who created it,
    never shown, revoked at once (with the customer keys it minted). Keys are created from a
    customer's page (customer keys), the API or `manage.py create_api_key` (reseller keys);
    rows are kept after revocation."""

    list_display = [
        "name", "prefix", "scope", "customer", "created_at", "created_by", "last_used_at",
        "revoked_at", "reseller",
    ]  # fmt: skip
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter), "customer", "reseller"]
    search_fields = ["name", "prefix"]
    list_select_related = ["customer", "reseller", "created_by_user", "created_by_key"]
    fields = readonly_fields = [
        "reseller", "customer", "scope", "name", "prefix", "created_at", "created_by_user",
        "created_by_key", "last_used_at", "revoked_at",
    ]  # fmt: skip
    actions = ["revoke_selected"]
    object_actions = (
        ObjectAction(
            "revoke", "Revoke now", style="danger",
            help="The key, and the customer keys it created, stop working with their next "
            "request. This cannot be undone.",
        ),
    )  # fmt: skip

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never deleted: the row shows who had access when

    def object_action_visible(self, request, obj, name: str) -> bool:
        return obj.revoked_at is None

    def do_revoke(self, request, api_key):
        done = api_key_revoke(api_key=api_key, now=timezone.now())
        minted = done.minted_keys_revoked
        note = f", and the {minted} customer key(s) it had created" if minted else ""
        self.message_user(request, f"API key {api_key.prefix} revoked{note}.", messages.SUCCESS)

    @admin.action(description="Revoke selected API keys (and the keys they created)")
    def revoke_selected(self, request, queryset):
        now = timezone.now()
        done = [
            api_key_revoke(api_key=api_key, now=now)
            for api_key in queryset.filter(revoked_at__isnull=True)
        ]
        own = sum(d.revoked_now for d in done)  # a selected key a cascade took counts there
        minted = sum(d.minted_keys_revoked for d in done)
        note = f", and the {minted} customer key(s) they had created" if minted else ""
        self.message_user(request, f"{own} API key(s) revoked{note}.", messages.SUCCESS)


class FlowbillUserCreationForm(AdminUserCreationForm):
    """The superuser's "Add user": a login with a reseller is made by `staff_user_create`
    (staff, never superuser; its email required), so it can log in to the admin at once."""

    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ["username", "email", "reseller"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reseller") is not None:
            try:
                staff_user_check_new(
                    username=cleaned.get("username") or "", email=cleaned.get("email") or ""
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    if field not in self.errors:
                        self.add_error(field, errors)
            if cleaned.get("set_usable_password") is False:
                self.add_error(
                    None,
                    "A reseller's login needs a password: enable password-based "
                    "authentication, or use Create staff login on the reseller's page for "
                    "a generated one.",
                )
        return cleaned


class FlowbillUserChangeForm(UserChangeForm):
    """A login linked to a reseller stays staff and never becomes a superuser
    (`staff_user_check`): the admin would otherwise turn it away at login without a word."""

    def clean(self):
        cleaned = super().clean()
        try:
            staff_user_check(
                reseller=cleaned.get("reseller"),
                is_staff=bool(cleaned.get("is_staff")),
                is_superuser=bool(cleaned.get("is_superuser")),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


class FlowbillUserAdmin(UserAdmin):
    """Logins are managed by platform superusers only. A reseller's staff login is created
    by `staff_user_create`: from "Add user" with a reseller, from Create staff login on the
    reseller's page (a generated one-time password), or `manage.py create_staff_user`."""

    form = FlowbillUserChangeForm
    add_form = FlowbillUserCreationForm
    list_display = [*UserAdmin.list_display, "reseller"]
    list_filter = [*UserAdmin.list_filter, "reseller"]
    fieldsets = [*UserAdmin.fieldsets, ("Reseller", {"fields": ["reseller"]})]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["username", "email", "usable_password",
                                                 "password1", "password2"]}),
        ("Reseller", {"fields": ["reseller"],
                      "description": "A login with a reseller is that reseller's staff."}),
    ]  # fmt: skip

    def save_model(self, request, obj, form, change):
        reseller = form.cleaned_data.get("reseller")
        if change or reseller is None:
            return super().save_model(request, obj, form, change)
        created = staff_user_create(
            reseller=reseller,
            username=form.cleaned_data["username"],
            email=form.cleaned_data.get("email") or "",
            password=form.cleaned_data["password1"],
        )
        obj.pk, obj.password, obj.is_staff = created.user.pk, created.user.password, True
        obj._state.adding = False
        return None


admin.site.register(Reseller, ResellerAdmin)
admin.site.register(Customer, CustomerAdmin)
admin.site.register(UpstreamAccount, UpstreamAccountAdmin)
admin.site.register(SubAccount, SubAccountAdmin)
admin.site.register(ApiKey, ApiKeyAdmin)
admin.site.register(User, FlowbillUserAdmin)
admin.site.site_header = "Flowbill"
admin.site.site_title = "Flowbill"
admin.site.index_title = "Billing administration"
