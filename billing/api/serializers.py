"""Input and output serializers of the billing API, separate and uniquely named.

Input serializers only parse (views hand the data to `billing.plans` and
`billing.invoicing`, where every billing rule lives); they refuse unknown keys.
Money is a decimal string: prices keep their six stored places (`"2.500000"`), invoice
amounts the currency's minor unit (`"147.50"`, JPY `"1475"`). Traffic is an integer of
bytes, with GB as a decimal string where a unit applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import StrictInputSerializer
from accounts.models import Customer, UpstreamAccount
from billing.api.invoice_rows import InvoiceRowsListSerializer, overdue_days
from billing.credit_notes.selectors import invoice_amount_credited, invoice_balance_due
from billing.models import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    Plan,
    PlanTier,
    Subscription,
)
from billing.money import quantize_money
from billing.payments.selectors import invoice_amount_paid
from billing.plans import PLAN_FIXED_FIELDS
from billing.plans.rules import PRICE_INTEGER_DIGITS, PRICE_PLACES
from core.money import AmountInputField
from core.query import count_parameter, id_parameter


def money_text(amount: Decimal, currency: str) -> str:
    """An amount as a decimal string in the currency's minor unit: 147.5000 USD -> "147.50"."""
    return format(quantize_money(amount, currency), "f")


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": r"^-?\d+(\.\d+)?$",
        "example": "147.50",
        "description": "Amount in the invoice currency's minor unit (USD 2 decimals).",
    }
)
class MoneyField(serializers.Field):
    """A read-only amount rendered in its currency's minor unit; `currency_from` is the
    attribute path to the currency (`invoice.currency` for a line)."""

    def __init__(self, *, currency_from: str = "currency", **kwargs):
        self.currency_from = currency_from
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        currency = instance
        for part in self.currency_from.split("."):
            currency = getattr(currency, part)
        return value, currency

    def to_representation(self, value) -> str:
        amount, currency = value
        return money_text(amount, currency)


@extend_schema_field(
    {
        "type": "string",
        "enum": list(InvoiceStatus.values),
        "description": "`draft` (reseller only), `finalized`, `paid` or `void`.",
    },
    component_name="InvoiceStatusEnum",
)
class InvoiceStatusField(serializers.ChoiceField):
    """An invoice status, as its own schema component (other models have a `status` too)."""

    def __init__(self, **kwargs):
        super().__init__(choices=InvoiceStatus.choices, **kwargs)


@extend_schema_field(
    {"type": "string", "enum": list(InvoiceLine.Kind.values)},
    component_name="InvoiceLineKindEnum",
)
class InvoiceLineKindField(serializers.ChoiceField):
    """`base_fee`, `usage`, `minimum` or `adjustment` (a late-usage correction)."""

    def __init__(self, **kwargs):
        super().__init__(choices=InvoiceLine.Kind.choices, **kwargs)


# --- plans ----------------------------------------------------------------------------------


def _number(**kwargs) -> AmountInputField:
    """A plain decimal string that fits the `Decimal(20, 6)` plan columns (`core.money`:
    `"1e400"` or `"1_0"` is a 400 `invalid_amount`); its sign, the minor unit of the plan's
    currency and the rest are the plan rules' (`billing.plans.rules`, `invalid_plan`),
    checked by `plan_create` for the API and the admin alike."""
    return AmountInputField(
        places=PRICE_PLACES, integer_digits=PRICE_INTEGER_DIGITS, allow_negative=True, **kwargs
    )


class PlanTierInputSerializer(StrictInputSerializer):
    up_to = _number(
        allow_null=True,
        required=False,
        help_text="Upper bound of the tier in GB (inclusive), above the previous tier's; "
        "null (or absent) on the last, unlimited tier only.",
    )
    unit_price = _number(help_text="Price per GB in this tier (up to 6 decimals).")
    flat_fee = _number(
        required=False,
        help_text="Charged once when usage reaches the tier; in the currency's minor unit.",
    )


class PlanCreateInputSerializer(StrictInputSerializer):
    """Parses a plan; `plan_create` checks the rules (`invalid_plan` naming field paths such
    as `tiers[1].up_to`)."""

    code = serializers.SlugField(max_length=40, help_text="Unique per reseller, e.g. `pro-2026`.")
    name = serializers.CharField(max_length=200)
    currency = serializers.CharField(
        required=False,
        help_text="ISO 4217; absent: the reseller's. Customers are billed only by plans in "
        "their own currency.",
    )
    base_fee = _number(
        required=False,
        help_text="Monthly, prorated by active days; in the currency's minor unit (JPY: none).",
    )
    pricing_model = serializers.ChoiceField(choices=Plan.PricingModel.choices)
    tiers = PlanTierInputSerializer(
        many=True,
        required=False,
        help_text="Graduated and volume plans (at least one): ascending tiers, the last one "
        "unlimited. Not for package plans.",
    )
    package_size = _number(required=False, help_text="Package plans: GB per package (> 0).")
    package_price = _number(
        required=False, help_text="Package plans: price per started package (minor unit)."
    )
    minimum_charge = _number(
        required=False,
        help_text="Monthly minimum of base fee + usage; prorated; in the currency's minor unit.",
    )
    unit_bytes = serializers.ChoiceField(
        choices=Plan.Unit.choices,
        required=False,
        help_text="Bytes per billed GB: 1073741824 (default) or 1000000000.",
    )


class PlanUpdateInputSerializer(StrictInputSerializer):
    """Only the name and the active flag change. Prices and the rest (`PLAN_FIXED_FIELDS`)
    are passed on as given, for `plan_update` to refuse with `plan_price_immutable`."""

    name = serializers.CharField(max_length=200, required=False)
    is_active = serializers.BooleanField(
        required=False, help_text="An inactive plan takes no new subscriptions."
    )

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        fixed = {key: data[key] for key in PLAN_FIXED_FIELDS if key in data}
        value = super().to_internal_value(
            {key: data[key] for key in data if key not in PLAN_FIXED_FIELDS}
        )
        return {**value, **fixed}


class PlanTierOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PlanTier
        fields = ["up_to", "unit_price", "flat_fee"]


class PlanOutputSerializer(serializers.ModelSerializer):
    tiers = PlanTierOutputSerializer(many=True, read_only=True)
    unit_bytes = serializers.IntegerField(read_only=True, help_text="Bytes per billed GB.")

    class Meta:
        model = Plan
        fields = [
            "id",
            "code",
            "name",
            "currency",
            "base_fee",
            "pricing_model",
            "tiers",
            "package_size",
            "package_price",
            "minimum_charge",
            "unit_bytes",
            "is_active",
            "created_at",
        ]


# --- subscriptions --------------------------------------------------------------------------


class SubscriptionCreateInputSerializer(StrictInputSerializer):
    """`customer`, `plan` and `upstream_account` are looked up among the caller's own rows:
    a foreign id reads exactly like a missing one ("does not exist")."""

    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.none())
    starts_on = serializers.DateField(help_text="First day covered (reseller's timezone).")
    ends_on = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="First day no longer covered (exclusive); null or absent: open-ended; "
        "equal to `starts_on`: never active.",
    )
    upstream_account = serializers.PrimaryKeyRelatedField(
        queryset=UpstreamAccount.objects.none(),
        required=False,
        allow_null=True,
        help_text="Bill only this upstream account's sub-accounts; null or absent: all.",
    )

    tenant_scoped_fields = {
        "customer": Customer,
        "plan": Plan,
        "upstream_account": UpstreamAccount,
    }


class SubscriptionUpdateInputSerializer(StrictInputSerializer):
    """A subscription only ends: to change plan, end it and subscribe again from that day."""

    immutable_fields = ("customer", "plan", "starts_on", "upstream_account")
    ends_on = serializers.DateField(
        allow_null=True,
        help_text="First day no longer covered (exclusive), not before `starts_on`; equal to "
        "`starts_on`: cancelled (never active, billed nothing); null: open-ended again.",
    )


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subscription
        fields = [
            "id",
            "customer",
            "plan",
            "starts_on",
            "ends_on",
            "upstream_account",
            "created_at",
        ]
        extra_kwargs = {
            "ends_on": {"help_text": "First day no longer covered (exclusive); null: open."},
            "upstream_account": {"help_text": "Only this upstream account; null: all of them."},
        }


# --- invoices -------------------------------------------------------------------------------


class InvoiceLineOutputSerializer(serializers.ModelSerializer):
    kind = InvoiceLineKindField(read_only=True)
    amount = MoneyField(currency_from="invoice.currency")
    quantity = serializers.DecimalField(
        max_digits=32,
        decimal_places=12,
        read_only=True,
        allow_null=True,
        help_text="In `unit` (GB, package, month...); null where it does not apply.",
    )

    class Meta:
        model = InvoiceLine
        fields = [
            "id",
            "kind",
            "group",
            "description",
            "sub_account",
            "quantity",
            "unit",
            "unit_price",
            "amount",
        ]
        extra_kwargs = {
            "id": {
                "help_text": "The line's id: a credit note credits a line by it "
                "(`lines[].line`). Fixed once the invoice is issued; a draft's lines get new "
                "ids when it is re-rated."
            },
            "group": {"help_text": "The subscription the line belongs to (plan - scope)."},
        }


class CreditTotalField(MoneyField):
    """`amount_credited`, `amount_paid` or `balance_due`: annotated on list querysets
    (`invoices_with_credit_totals`, one query per page), computed for a lone invoice."""

    def get_attribute(self, instance):
        if not hasattr(instance, self.source):
            credited = invoice_amount_credited(invoice=instance)
            paid = invoice_amount_paid(invoice=instance)
            instance.amount_credited = credited
            instance.amount_paid = paid
            instance.balance_due = invoice_balance_due(
                invoice=instance, amount_credited=credited, amount_paid=paid
            )
        return super().get_attribute(instance)


@extend_schema_field(
    {"type": "string", "enum": list(InvoiceKind.values)}, component_name="InvoiceKindEnum"
)
class InvoiceKindField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=InvoiceKind.choices, **kwargs)


class InvoiceOutputSerializer(serializers.ModelSerializer):
    """An invoice as customers see it. `period_end` is exclusive (the first day after)."""

    status = InvoiceStatusField(read_only=True)
    subtotal = MoneyField()
    tax = MoneyField()
    total = MoneyField()
    balance_applied = MoneyField(
        help_text="The customer balance applied when it was issued, after tax (never more "
        "than the total; printed 'Balance applied' then 'Amount due' on the PDF)."
    )
    kind = InvoiceKindField(
        read_only=True,
        help_text="`period` (the month's invoice) or `top_up` (a prepaid top-up, `top-ups/`).",
    )
    amount_credited = CreditTotalField(help_text="Gross total of the invoice's credit notes.")
    amount_paid = CreditTotalField(
        help_text="Received against the invoice: its payments minus their refunds (`payments/`)."
    )
    balance_due = CreditTotalField(
        help_text="Still owed: `total - balance_applied - amount_credited - amount_paid` "
        "(never below 0) while "
        "finalized (or a draft); 0 once paid or void. The payment that brings it to 0 makes "
        "the invoice paid."
    )
    overdue = serializers.SerializerMethodField(
        help_text="Past its due date (the reseller's timezone) with a balance due: the one "
        "definition the dashboard, reminders and automatic suspension use. False for drafts, "
        "paid and void invoices."
    )
    days_overdue = serializers.SerializerMethodField(
        help_text="Days since the due date while overdue; 0 otherwise."
    )
    lines = InvoiceLineOutputSerializer(many=True, read_only=True)
    replaces = serializers.SerializerMethodField(
        help_text="The number of the voided invoice this one bills again (a reissue; printed "
        "'Replaces <number>' on the PDF); null otherwise."
    )

    class Meta:
        model = Invoice
        # A page of rows (the customer list) renders without model instances.
        list_serializer_class = InvoiceRowsListSerializer
        fields = [
            "id",
            "number",
            "kind",
            "replaces",
            "status",
            "period_start",
            "period_end",
            "currency",
            "subtotal",
            "tax_rate",
            "tax",
            "total",
            "balance_applied",
            "amount_credited",
            "amount_paid",
            "balance_due",
            "issued_on",
            "due_on",
            "overdue",
            "days_overdue",
            "finalized_at",
            "paid_at",
            "voided_at",
            "lines",
        ]
        extra_kwargs = {
            "number": {"help_text": "Null while a draft."},
            "period_end": {"help_text": "First day after the period (exclusive)."},
            "tax_rate": {"help_text": "Percent."},
        }

    def _today(self, obj: Invoice):
        """The reseller's today (one reseller per response; cached on the serializer)."""
        cache = self.__dict__.setdefault("_todays", {})
        if obj.reseller_id not in cache:
            cache[obj.reseller_id] = timezone.now().astimezone(obj.reseller.tzinfo).date()
        return cache[obj.reseller_id]

    def get_overdue(self, obj: Invoice) -> bool:
        return self.get_days_overdue(obj) > 0

    def get_days_overdue(self, obj: Invoice) -> int:
        if obj.status != InvoiceStatus.FINALIZED or obj.due_on is None:
            return 0
        balance = getattr(obj, "balance_due", None)  # annotated, or set by `balance_due`
        if balance is None:
            balance = invoice_balance_due(
                invoice=obj, amount_credited=invoice_amount_credited(invoice=obj)
            )
        return overdue_days(
            status=obj.status, due_on=obj.due_on, balance_due=balance, today=self._today(obj)
        )

    def get_replaces(self, obj: Invoice) -> str | None:
        if not obj.replaces_id:
            return None
        # annotated on list querysets (`invoices_with_lines`), read for a lone invoice
        return getattr(obj, "replaces_number", None) or obj.replaces.number


class ResellerInvoiceOutputSerializer(InvoiceOutputSerializer):
    stale = serializers.SerializerMethodField(
        help_text="Drafts, on `GET reseller/invoices/{id}/`: true when finalizing now would "
        "issue other figures than the draft shows (`preview/` has them; `generate/` for the "
        "customer refreshes it). Drafts are re-rated when the customer's usage or "
        "subscriptions change, so this is rare. False once issued; null for drafts in lists."
    )

    class Meta(InvoiceOutputSerializer.Meta):
        fields = ["id", "customer", *InvoiceOutputSerializer.Meta.fields[1:], "stale"]

    def get_stale(self, obj: Invoice) -> bool | None:
        if obj.status != InvoiceStatus.DRAFT:
            return False
        return getattr(obj, "stale", None)  # set by the detail view


class InvoiceListQuerySerializer(StrictInputSerializer):
    """Filters of the reseller invoice list (plus `limit`/`offset`); others are refused."""

    period = serializers.RegexField(
        r"^[1-9]\d{3}-(0[1-9]|1[0-2])$",
        required=False,
        help_text="The month, YYYY-MM: invoices of the period starting that month.",
        error_messages={"invalid": "Give the period as YYYY-MM."},
    )
    status = InvoiceStatusField(required=False)
    overdue = serializers.ChoiceField(
        choices=["true", "false"],
        required=False,
        help_text="`true`: only overdue invoices (past due with a balance due); `false`: the "
        "others.",
    )
    customer = id_parameter(
        "Only this customer's invoices; another reseller's or a missing customer answers 404, "
        "like a missing object."
    )
    limit = count_parameter("Items per page (more than 500 is capped).")
    offset = count_parameter("Items to skip.")


class InvoicePaginationQuerySerializer(StrictInputSerializer):
    limit = count_parameter("Items per page (more than 500 is capped).")
    offset = count_parameter("Items to skip.")


class InvoiceFinalizeInputSerializer(StrictInputSerializer):
    send_email = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Email the invoice to the customer (default true).",
    )


class InvoiceVoidInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(
        max_length=500, required=False, default="", allow_blank=True, help_text="Logged."
    )
    send_email = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Email the customer that the invoice is void and not owed (default true).",
    )


class InvoiceMarkPaidInputSerializer(StrictInputSerializer):
    note = serializers.CharField(
        max_length=500,
        required=False,
        default="",
        allow_blank=True,
        help_text="Logged, e.g. a payment reference.",
    )


# --- current usage --------------------------------------------------------------------------


class _CurrencyFromContextMoney(serializers.Field):
    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value) -> str:
        return money_text(value, self.context["currency"])


CurrentMoneyField = extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": r"^-?\d+(\.\d+)?$",
        "example": "12.34",
    }
)(_CurrencyFromContextMoney)


class CurrentUsageLineOutputSerializer(serializers.Serializer):
    kind = InvoiceLineKindField(read_only=True)
    description = serializers.CharField(read_only=True)
    quantity = serializers.DecimalField(
        max_digits=32, decimal_places=12, read_only=True, allow_null=True
    )
    unit = serializers.CharField(read_only=True)
    unit_price = serializers.DecimalField(
        max_digits=20, decimal_places=6, read_only=True, allow_null=True
    )
    amount = CurrentMoneyField()


class CurrentUsageSubscriptionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="subscription_id", read_only=True)
    plan_code = serializers.CharField(read_only=True)
    plan_name = serializers.CharField(read_only=True)
    active_start = serializers.DateField(
        read_only=True, help_text="First day of the period this subscription covers."
    )
    active_end = serializers.DateField(
        read_only=True, help_text="First day after its covered days (exclusive)."
    )
    unit_bytes = serializers.IntegerField(read_only=True, help_text="Bytes per billed GB.")
    bytes = serializers.IntegerField(source="usage_bytes", read_only=True)
    gb = serializers.SerializerMethodField(help_text="`bytes` in the plan's GB, 3 decimals.")
    estimated_charge = CurrentMoneyField(
        help_text="Base fee, usage and minimum of this subscription for the period."
    )
    lines = CurrentUsageLineOutputSerializer(many=True, read_only=True)

    def get_gb(self, obj) -> str:
        return format(obj.usage_gb.quantize(Decimal("0.001")), "f")


class CurrentUsageSubAccountOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="sub_account_id", read_only=True)
    label = serializers.CharField(read_only=True)
    upstream_id = serializers.CharField(read_only=True)
    bytes = serializers.IntegerField(
        source="usage_bytes", read_only=True, help_text="Period to date."
    )
    remaining_bytes = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="Traffic left upstream (BytesFlows); null where the provider does not say.",
    )
    total_bytes = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Traffic granted upstream (BytesFlows)."
    )
    remaining_as_of = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the upstream last reported it."
    )


class CurrentUsageOutputSerializer(serializers.Serializer):
    timezone = serializers.CharField(read_only=True, help_text="The reseller's billing timezone.")
    period_start = serializers.DateField(read_only=True)
    period_end = serializers.DateField(read_only=True, help_text="Exclusive.")
    as_of = serializers.DateTimeField(read_only=True)
    currency = serializers.CharField(read_only=True)
    subscriptions = CurrentUsageSubscriptionOutputSerializer(many=True, read_only=True)
    sub_accounts = CurrentUsageSubAccountOutputSerializer(many=True, read_only=True)
    unbilled_bytes = serializers.IntegerField(
        read_only=True, help_text="Usage on days no subscription covers (not charged)."
    )
    adjustments = CurrentMoneyField(
        help_text="Late-usage corrections of earlier invoices the next invoice would carry."
    )
    estimated_subtotal = CurrentMoneyField(source="subtotal")
    estimated_tax = CurrentMoneyField(source="tax")
    estimated_total = CurrentMoneyField(source="total")
