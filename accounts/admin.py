"""Django admin, scoped per reseller.

`TenantScopedAdmin` is the base of every admin class for a tenant-owned model. For reseller
staff it narrows the change list, change pages (another reseller's object is a 404), search,
autocomplete and foreign-key choices to the staff user's reseller, and fills in the
`reseller` of new rows. Superusers see everything.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.http import Http404

from accounts.models import Customer, Provider, Reseller, SubAccount, UpstreamAccount, User
from accounts.tenancy import is_platform_admin, reseller_for_user


class TenantScopedAdmin(admin.ModelAdmin):
    """ModelAdmin for models with a `tenant_path`; staff of reseller R see only R's rows."""

    #: Fields hidden from reseller staff (they belong to their own reseller implicitly).
    tenant_field = "reseller"

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
        queryset = super().get_queryset(request)
        reseller = self.staff_reseller(request)
        if reseller is None and not is_platform_admin(request.user):
            return queryset.none()
        return queryset if reseller is None else queryset.for_reseller(reseller)

    def _get_visible_or_404(self, request, object_id):
        """Another reseller's object (or a made-up id) is a plain 404, never a hint."""
        if object_id is not None and self.get_object(request, unquote(object_id)) is None:
            raise Http404("No such object.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._get_visible_or_404(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._get_visible_or_404(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._get_visible_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if self.staff_reseller(request) is not None:
            return [f for f in filters if f != self.tenant_field]
        return filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        reseller = self.staff_reseller(request)
        related = db_field.related_model
        if reseller is not None and hasattr(related, "tenant_path"):
            kwargs["queryset"] = related.objects.for_reseller(reseller)
            if db_field.name == self.tenant_field:
                # Staff work for exactly one reseller: shown, fixed, and still validated
                # (so unique constraints that include it are checked by the form).
                kwargs["initial"] = reseller.pk
                kwargs["disabled"] = True
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ResellerAdmin(TenantScopedAdmin):
    list_display = ["name", "slug", "currency", "timezone", "invoice_prefix"]
    search_fields = ["name", "slug", "tax_id"]
    prepopulated_fields = {"slug": ["name"]}

    def has_add_permission(self, request):
        return is_platform_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_platform_admin(request.user)


class CustomerAdmin(TenantScopedAdmin):
    list_display = ["name", "email", "currency", "tax_rate", "status", "reseller"]
    list_filter = ["status", "reseller"]
    search_fields = ["name", "email", "tax_id"]


class SecretFieldsForm(forms.ModelForm):
    """A form with write-only secret inputs that merge into the model's `credentials`.

    Inputs are never pre-filled (the stored values are not sent to the browser); leaving one
    empty keeps the stored value.
    """

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.credentials if self.instance.pk else {}
        for name in self.secret_fields:
            help_text = "Stored; leave empty to keep it." if stored.get(name) else "Not set."
            self.fields[name] = forms.CharField(
                required=False,
                strip=True,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                help_text=help_text,
            )

    def save(self, commit=True):
        credentials = dict(self.instance.credentials or {})
        for name in self.secret_fields:
            if self.cleaned_data.get(name):
                credentials[name] = self.cleaned_data[name]
        self.instance.credentials = credentials
        return super().save(commit)


class UpstreamAccountForm(SecretFieldsForm):
    secret_fields = ("api_id", "api_token")

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
            "is_active",
        ]

    def clean(self):
        cleaned = super().clean()
        has_stored = bool(self.instance.pk and self.instance.credentials.get("api_token"))
        if (
            cleaned.get("provider") == Provider.IPFOXY
            and not has_stored
            and not (cleaned.get("api_id") and cleaned.get("api_token"))
        ):
            raise forms.ValidationError("IPFoxy needs both the api-id and the api-token.")
        return cleaned


class UpstreamAccountAdmin(TenantScopedAdmin):
    form = UpstreamAccountForm
    list_display = ["name", "provider", "base_url", "cost_per_gb", "is_active", "reseller"]
    list_filter = ["provider", "is_active", "reseller"]
    search_fields = ["name"]


class SubAccountForm(SecretFieldsForm):
    secret_fields = ("token",)

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


class SubAccountAdmin(TenantScopedAdmin):
    form = SubAccountForm
    list_display = ["upstream_id", "label", "customer", "upstream_account", "status"]
    list_filter = ["status", "upstream_account__provider"]
    search_fields = ["upstream_id", "label", "customer__name"]
    list_select_related = ["customer", "upstream_account"]
    autocomplete_fields = ["customer"]


class FlowbillUserAdmin(UserAdmin):
    """Logins are managed by platform superusers only."""

    list_display = [*UserAdmin.list_display, "reseller"]
    list_filter = [*UserAdmin.list_filter, "reseller"]
    fieldsets = [*UserAdmin.fieldsets, ("Reseller", {"fields": ["reseller"]})]
    add_fieldsets = [*UserAdmin.add_fieldsets, ("Reseller", {"fields": ["reseller"]})]


admin.site.register(Reseller, ResellerAdmin)
admin.site.register(Customer, CustomerAdmin)
admin.site.register(UpstreamAccount, UpstreamAccountAdmin)
admin.site.register(SubAccount, SubAccountAdmin)
admin.site.register(User, FlowbillUserAdmin)
admin.site.site_header = "Flowbill"
admin.site.site_title = "Flowbill"
admin.site.index_title = "Billing administration"
