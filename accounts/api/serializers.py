"""Input and output serializers of the accounts API, separate and uniquely named.

Input serializers only parse and validate (they never `.save()`: views hand the validated
data to a service). They reject unknown keys, and name fields that exist but cannot be
changed after creation. Output serializers never include credentials: an object says
only whether it has some (`has_credentials`); a sub-account's proxy login (`proxy_password`)
is not one, it is what the reseller hands its customer. Money and rates are decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.email_identity import sender_email_verified
from accounts.models import ApiKey, Customer, Provider, Reseller, SubAccount, UpstreamAccount
from accounts.selectors import sub_account_periods
from accounts.services import SUB_ACCOUNT, UPSTREAM, InvalidCredentials, credentials_check
from core.money import AmountInputField
from core.query import id_parameter

# --- shared ---------------------------------------------------------------------------------


class StrictInputSerializer(serializers.Serializer):
    """Rejects keys it does not know (a typo must not be silently ignored)."""

    #: Keys that exist on the resource but cannot be changed through this serializer.
    immutable_fields: tuple[str, ...] = ()
    #: Related-object fields -> their model: with a `tenant` in the context, each field takes
    #: only the caller's rows (`Model.objects.for_reseller`), so a foreign id reads exactly
    #: like a missing one.
    tenant_scoped_fields: Mapping[str, type] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tenant = self.context.get("tenant")
        if tenant is None:
            return
        for name, model in self.tenant_scoped_fields.items():
            if name in self.fields:
                self.fields[name].queryset = model.objects.for_reseller(tenant.reseller)

    def to_internal_value(self, data):
        errors: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            for key in sorted(set(data) - set(self.fields)):
                if key in self.immutable_fields:
                    errors[key] = ["This field cannot be changed."]
                else:
                    errors[key] = ["Unknown field."]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not errors:
                raise
            detail = exc.detail
            if not isinstance(detail, dict):
                detail = {"non_field_errors": detail}
            raise serializers.ValidationError({**detail, **errors}) from exc
        if errors:
            raise serializers.ValidationError(errors)
        return value


class StrictModelInputSerializer(StrictInputSerializer, serializers.ModelSerializer):
    """Field definitions taken from the model; validation only, never `.save()`. A decimal
    column (a tax rate, a cost per GB, a GB quota) is read by `core.money.parse_amount`,
    bounded by the column's digits and the model's min/max validators (`invalid_amount`)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: AmountInputField,
    }


def validate_credentials(kind: str, provider: str, value: Mapping[str, str]) -> dict[str, str]:
    """The services' rule of which credentials `provider` needs (`credentials_check`), as a
    400 naming each key under `credentials`. Messages never echo the values."""
    try:
        return credentials_check(kind=kind, provider=provider, credentials=value)
    except InvalidCredentials as exc:
        raise serializers.ValidationError({"credentials": exc.problems}) from exc


def _credentials_field(help_text: str) -> serializers.DictField:
    return serializers.DictField(
        child=serializers.CharField(max_length=2000, trim_whitespace=False),
        write_only=True,
        required=False,
        help_text=help_text,
    )


# --- upstream accounts ----------------------------------------------------------------------

_UPSTREAM_CREDENTIALS_HELP = (
    'Write-only. IPFoxy: {"api_id": ..., "api_token": ...}. BytesFlows: {} (the tokens sit '
    "on the sub-accounts). Replaces the stored credentials when given."
)


_GATEWAY_PORT_HELP = {
    "gateway_port": {
        "help_text": "Port of the proxy gateway (1-65535); with `gateway_host` it makes the "
        "ready-to-paste `proxy` string of sub-accounts. null: none."
    }
}


class UpstreamAccountCreateInputSerializer(StrictModelInputSerializer):
    credentials = _credentials_field(_UPSTREAM_CREDENTIALS_HELP)

    class Meta:
        model = UpstreamAccount
        fields = [
            "name",
            "provider",
            "base_url",
            "credentials",
            "cost_per_gb",
            "mb_bytes",
            "requests_per_minute",
            "gateway_host",
            "gateway_port",
            "proxy_username_format",
            "is_active",
        ]
        extra_kwargs = _GATEWAY_PORT_HELP

    def validate(self, attrs):
        attrs["credentials"] = validate_credentials(
            UPSTREAM, attrs["provider"], attrs.get("credentials", {})
        )
        return attrs


class UpstreamAccountUpdateInputSerializer(StrictModelInputSerializer):
    immutable_fields = ("provider",)
    credentials = _credentials_field(_UPSTREAM_CREDENTIALS_HELP)

    class Meta:
        model = UpstreamAccount
        fields = [
            "name",
            "base_url",
            "credentials",
            "cost_per_gb",
            "mb_bytes",
            "requests_per_minute",
            "gateway_host",
            "gateway_port",
            "proxy_username_format",
            "is_active",
        ]
        extra_kwargs = _GATEWAY_PORT_HELP

    def validate(self, attrs):
        if "credentials" in attrs:
            provider = self.context["upstream_account"].provider
            attrs["credentials"] = validate_credentials(UPSTREAM, provider, attrs["credentials"])
        return attrs


class UpstreamAccountOutputSerializer(serializers.ModelSerializer):
    # A plain string: empty means the provider's default URL (a blank-or-URI `oneOf` would be
    # ambiguous for "", which is both).
    base_url = serializers.CharField(read_only=True, help_text="Empty: the provider's.")
    has_credentials = serializers.SerializerMethodField()

    class Meta:
        model = UpstreamAccount
        fields = [
            "id",
            "name",
            "provider",
            "base_url",
            "has_credentials",
            "cost_per_gb",
            "mb_bytes",
            "requests_per_minute",
            "gateway_host",
            "gateway_port",
            "proxy_username_format",
            "is_active",
            "created_at",
        ]
        extra_kwargs = _GATEWAY_PORT_HELP

    def get_has_credentials(self, obj: UpstreamAccount) -> bool:
        return bool(obj.credentials)


# --- customers ------------------------------------------------------------------------------

_CUSTOMER_FIELDS = [
    "name",
    "email",
    "cc_emails",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "country",
    "tax_id",
    "tax_rate",
    "currency",
    "status",
    "traffic_policy",
    "credit_limit",
    "topup_bytes",
    "topup_below_bytes",
    "payment_terms_days",
]


class CustomerCreateInputSerializer(StrictModelInputSerializer):
    class Meta:
        model = Customer
        fields = _CUSTOMER_FIELDS
        extra_kwargs = {
            "currency": {
                "required": False,
                "allow_blank": True,
                "help_text": "ISO 4217; empty or absent: the reseller's (stored on the customer).",
            }
        }


class CustomerUpdateInputSerializer(CustomerCreateInputSerializer):
    class Meta(CustomerCreateInputSerializer.Meta):
        pass


class CustomerOutputSerializer(serializers.ModelSerializer):
    suspended_by = serializers.CharField(
        read_only=True,
        help_text="Who suspended it: `staff` (staff or the reseller API) or `overdue` "
        "(automatically, an invoice overdue); empty while active.",
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            *_CUSTOMER_FIELDS,
            "suspended_at",
            "suspension_reason",
            "suspended_by",
            "credit_limit_reached_at",
            "created_at",
        ]
        extra_kwargs = {
            "suspended_at": {"help_text": "When it was suspended; null while active."},
            "suspension_reason": {
                "help_text": "Why it was suspended (staff's reason, or the overdue invoices); "
                "empty while active."
            },
            "credit_limit_reached_at": {
                "help_text": "When an automatic top-up was last refused by `credit_limit` (the "
                "webhook and email went out then); null when the last top-up fitted."
            },
        }


# --- API keys -------------------------------------------------------------------------------


class ApiKeyCreateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=100)


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scope",
            "customer",
            "created_at",
            "created_by_key",
            "last_used_at",
            "revoked_at",
        ]


class ApiKeyRevokedOutputSerializer(ApiKeyOutputSerializer):
    customer_keys_revoked = serializers.SerializerMethodField(
        help_text="How many live customer keys this key had created (`created_by_key`) were "
        "revoked with it by this request; 0 for a key that created none, or on a repeat."
    )

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "customer_keys_revoked"]

    def get_customer_keys_revoked(self, obj: ApiKey) -> int:
        return self.context["customer_keys_revoked"]


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = serializers.SerializerMethodField(
        help_text="The full key. Shown only in this response (and, to the same caller, in an "
        "`Idempotency-Key` replay of it within 24 h, kept encrypted until then); Flowbill "
        "keeps only its hash."
    )

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "key"]

    def get_key(self, obj: ApiKey) -> str:
        return self.context["raw_key"]


# --- sub-accounts ---------------------------------------------------------------------------

_SUB_ACCOUNT_CREDENTIALS_HELP = (
    'Write-only. BytesFlows: {"token": ...} (the account\'s own token). IPFoxy: {}.'
)


class SubAccountCreateInputSerializer(StrictModelInputSerializer):
    """`customer` and `upstream_account` are looked up among the caller's own rows only: a
    foreign id reads exactly like a missing one ("does not exist")."""

    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())
    upstream_account = serializers.PrimaryKeyRelatedField(queryset=UpstreamAccount.objects.none())
    credentials = _credentials_field(_SUB_ACCOUNT_CREDENTIALS_HELP)

    class Meta:
        model = SubAccount
        fields = [
            "customer",
            "upstream_account",
            "upstream_id",
            "label",
            "credentials",
            "status",
            "active_from",
            "active_to",
        ]
        validators = []  # uniqueness is checked by the service, within the caller's data

    tenant_scoped_fields = {"customer": Customer, "upstream_account": UpstreamAccount}

    def validate(self, attrs):
        attrs["credentials"] = validate_credentials(
            SUB_ACCOUNT, attrs["upstream_account"].provider, attrs.get("credentials", {})
        )
        return attrs


class SubAccountUpdateInputSerializer(StrictModelInputSerializer):
    """The customer and dates change by moving or closing it (their own endpoints)."""

    immutable_fields = ("customer", "upstream_account", "upstream_id", "active_from", "active_to")
    credentials = _credentials_field(_SUB_ACCOUNT_CREDENTIALS_HELP)

    class Meta:
        model = SubAccount
        fields = ["label", "credentials", "status"]

    def validate(self, attrs):
        if "credentials" in attrs:
            provider = self.context["sub_account"].upstream_account.provider
            attrs["credentials"] = validate_credentials(SUB_ACCOUNT, provider, attrs["credentials"])
        return attrs


class SubAccountOutputSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="upstream_account.provider", read_only=True)
    has_credentials = serializers.SerializerMethodField()
    proxy_username = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The proxy login (IPFoxy: the upstream account's `proxy_username_format`, "
        "`customer-<upstream_id>` by default); null for BytesFlows.",
    )
    proxy_password = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The proxy password, when Flowbill knows it (it created the sub-account, "
        "read it from the upstream's list when it was added, or set it on reinstatement); "
        "null otherwise, for BytesFlows, and while its access is blocked.",
    )
    proxy = serializers.CharField(
        source="proxy_url",
        read_only=True,
        allow_null=True,
        help_text="`http://<proxy_username>:<proxy_password>@<gateway_host>:<gateway_port>`, "
        "ready to paste, when the upstream account has a gateway host and port and the "
        "password is known; else null.",
    )

    class Meta:
        model = SubAccount
        fields = [
            "id",
            "customer",
            "upstream_account",
            "provider",
            "upstream_id",
            "label",
            "has_credentials",
            "proxy_username",
            "proxy_password",
            "proxy",
            "status",
            "active_from",
            "active_to",
            "created_at",
        ]

    def get_has_credentials(self, obj: SubAccount) -> bool:
        return bool(obj.credentials)


class SubAccountAssignmentOutputSerializer(serializers.Serializer):
    """One customer's period `[starts_on, ends_on)` (`accounts.selectors.HoldingPeriod`)."""

    customer = serializers.IntegerField(
        source="customer_id", help_text="The id of the customer that held it."
    )
    starts_on = serializers.DateField(
        allow_null=True,
        help_text="Its first day held (reseller's timezone); null: since its first usage.",
    )
    ends_on = serializers.DateField(
        allow_null=True,
        help_text="The first day no longer held (exclusive, like a subscription's `ends_on`); "
        "null: held now, open-ended. A closed sub-account's last period ends the day after its "
        "`active_to`.",
    )


class SubAccountDetailOutputSerializer(SubAccountOutputSerializer):
    """A sub-account with every customer that held it (`assignments`, oldest first)."""

    assignments = serializers.SerializerMethodField(
        help_text="Every customer that held it, oldest first; the last is the current one. "
        "Its usage of a day is billed to the customer holding it that day."
    )

    class Meta(SubAccountOutputSerializer.Meta):
        fields = [*SubAccountOutputSerializer.Meta.fields, "assignments"]

    @extend_schema_field(SubAccountAssignmentOutputSerializer(many=True))
    def get_assignments(self, obj: SubAccount) -> list[dict]:
        periods = sub_account_periods(sub_account=obj)
        return SubAccountAssignmentOutputSerializer(periods, many=True).data


class SubAccountMoveInputSerializer(StrictInputSerializer):
    """`customer` is looked up among the caller's own customers only: another reseller's id
    reads exactly like a missing one. `from` is a Python keyword, so it is added by name."""

    customer = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.none(),
        help_text="The id of the customer that holds it from `from` on (one of yours, not the "
        "current one).",
    )

    tenant_scoped_fields = {"customer": Customer}

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(
            help_text="YYYY-MM-DD, the new customer's first day (reseller's timezone): its "
            "usage from this day on is billed to `customer`, earlier days stay with whoever "
            "held it then."
        )
        return fields


class SubAccountCloseInputSerializer(StrictInputSerializer):
    on = serializers.DateField(
        required=False,
        help_text="YYYY-MM-DD, its last day (inclusive, reseller's timezone): its usage through "
        "this day is billed, and it is synced until this day ends. Default: today.",
    )


# --- reseller settings ----------------------------------------------------------------------

_SETTINGS_HELP = {
    "address": "Postal address printed on invoices; one line per line.",
    "tax_id": "The reseller's tax/VAT id printed on invoices (up to 64 characters).",
    "payment_instructions": "Free text printed under the invoice total (bank, reference).",
    "sender_email": "Reply-To of the reseller's invoice, credit note and alert emails, and "
    "their From when its domain is verified by the platform operator; otherwise they come from "
    "the platform's address under the reseller's name. Empty: no Reply-To.",
    "grace_period_days": "Days drafts stay open after the period ends, for late usage.",
    "payment_terms_days": "Net days: invoices are due this many days after issue (0-365), "
    "unless a customer has its own `payment_terms_days`. Printed on the invoice.",
    "reminder_offsets": "Payment reminders, in days relative to the due date (-30..365, at "
    "most 8, each once), e.g. [-3, 0, 7, 14]; each is emailed once per unpaid invoice and "
    "stops when it is paid or voided. []: none.",
    "suspend_after_overdue_days": "Suspend a customer automatically (its IPFoxy sub-accounts "
    "cut off upstream) once a finalized invoice is this many days overdue; reinstated when its "
    "overdue invoices are paid. null: never.",
}


def _sender_email_output() -> serializers.CharField:
    """A CharField, not an EmailField: the stored value may be empty, which a
    `format: email` schema would reject."""
    return serializers.CharField(
        read_only=True, help_text="An email address, or empty. " + _SETTINGS_HELP["sender_email"]
    )


class MeResellerOutputSerializer(serializers.ModelSerializer):
    sender_email = _sender_email_output()

    class Meta:
        model = Reseller
        fields = ["name", "currency", "timezone", "sender_email"]


class MeOutputSerializer(serializers.ModelSerializer):
    reseller = MeResellerOutputSerializer(read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "email",
            "cc_emails",
            "address_line1",
            "address_line2",
            "city",
            "postal_code",
            "country",
            "tax_id",
            "tax_rate",
            "currency",
            "status",
            "reseller",
        ]


#: Shown by the settings API, changed only by the platform operator.
_RESELLER_FIXED_FIELDS = ("id", "name", "slug", "currency", "timezone", "invoice_prefix")


class ResellerSettingsUpdateInputSerializer(StrictInputSerializer):
    immutable_fields = (
        *_RESELLER_FIXED_FIELDS,
        "logo",
        "sender_email_verified",
        "verified_sender_domain",
    )

    address = serializers.CharField(
        allow_blank=True, required=False, help_text=_SETTINGS_HELP["address"]
    )
    tax_id = serializers.CharField(
        allow_blank=True, max_length=64, required=False, help_text=_SETTINGS_HELP["tax_id"]
    )
    payment_instructions = serializers.CharField(
        allow_blank=True, required=False, help_text=_SETTINGS_HELP["payment_instructions"]
    )
    sender_email = serializers.EmailField(
        allow_blank=True, required=False, help_text=_SETTINGS_HELP["sender_email"]
    )
    grace_period_days = serializers.IntegerField(
        min_value=0, required=False, help_text=_SETTINGS_HELP["grace_period_days"] + " 0-60."
    )
    payment_terms_days = serializers.IntegerField(
        min_value=0, max_value=365, required=False, help_text=_SETTINGS_HELP["payment_terms_days"]
    )
    reminder_offsets = serializers.ListField(
        child=serializers.IntegerField(min_value=-30, max_value=365),
        max_length=8,
        required=False,
        help_text=_SETTINGS_HELP["reminder_offsets"],
    )
    suspend_after_overdue_days = serializers.IntegerField(
        min_value=0,
        max_value=365,
        allow_null=True,
        required=False,
        help_text=_SETTINGS_HELP["suspend_after_overdue_days"] + " 0-365.",
    )


class ResellerSettingsOutputSerializer(serializers.ModelSerializer):
    sender_email = _sender_email_output()
    logo = serializers.SerializerMethodField(
        help_text="Path of the current logo under the media storage; null when none."
    )
    sender_email_verified = serializers.SerializerMethodField(
        help_text="Whether `sender_email` is the From of your emails: its domain is one the "
        "platform operator verified. False: they are from the platform's address under your "
        "name, with Reply-To `sender_email`."
    )

    class Meta:
        model = Reseller
        fields = [*_RESELLER_FIXED_FIELDS, *_SETTINGS_HELP, "sender_email_verified", "logo"]
        read_only_fields = fields
        extra_kwargs = {
            "id": {"help_text": "The reseller's id."},
            "name": {"help_text": "Legal name (changed by the platform admin)."},
            "slug": {"help_text": "Short unique name (changed by the platform admin)."},
            "currency": {"help_text": "ISO 4217 default currency of new customers."},
            "timezone": {
                "help_text": "IANA billing timezone; periods are cut in it, so only the "
                "platform admin changes it."
            },
            "invoice_prefix": {"help_text": "Prefix of invoice numbers, e.g. INV."},
            **{name: {"help_text": text} for name, text in _SETTINGS_HELP.items()},
        }

    def get_logo(self, obj: Reseller) -> str | None:
        return obj.logo.name if obj.logo else None

    def get_sender_email_verified(self, obj: Reseller) -> bool:
        return sender_email_verified(reseller=obj)


class ResellerLogoInputSerializer(serializers.Serializer):
    logo = serializers.FileField(
        help_text="A PNG or JPEG image, at most 1 MiB and 4000 pixels a side (multipart/form-data)."
    )


# --- list filters (core.query.StrictQueryMixin) -------------------------------------------


def _owned_id(what: str) -> serializers.IntegerField:
    return id_parameter(f"A {what} id of yours (404 if not).")


class UpstreamAccountQuerySerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    is_active = serializers.BooleanField(required=False, help_text="`true` or `false`.")


class CustomerQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Customer.Status.choices, required=False)


class ApiKeyQuerySerializer(serializers.Serializer):
    revoked = serializers.BooleanField(
        required=False, help_text="`true`: only revoked keys; `false`: only live ones."
    )


class SubAccountQuerySerializer(serializers.Serializer):
    customer = _owned_id("customer")
    upstream_account = _owned_id("upstream account")
    status = serializers.ChoiceField(choices=SubAccount.Status.choices, required=False)


class CustomerSubAccountQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SubAccount.Status.choices, required=False)
