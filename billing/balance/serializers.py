"""Balance API serializers: the balance per currency with the ledger, and the adjustment and
automatic top-up rule inputs (amounts are read by the services' money parser)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import StrictInputSerializer
from billing.api.serializers import MoneyField, money_text
from billing.balance.models import BalanceEntry, BalanceEntryKind
from core.openapi import describe_fields

KINDS_TEXT = ", ".join(f"`{value}`" for value in BalanceEntryKind.values)


@extend_schema_field({"type": "string", "nullable": True})
class _OptionalMoney(serializers.Field):
    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return super().get_attribute(instance), instance.currency

    def to_representation(self, value) -> str | None:
        amount, currency = value
        return None if amount is None else money_text(amount, currency)


class BalanceFigureOutputSerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True, help_text="ISO 4217 code.")
    amount = MoneyField(help_text="The balance: the sum of the ledger's entries (never < 0).")
    auto_top_up_threshold = _OptionalMoney(
        allow_null=True,
        help_text="Automatic top-up: a top-up invoice is issued when the balance falls below "
        "this; null: no rule.",
    )
    auto_top_up_amount = _OptionalMoney(
        allow_null=True, help_text="The automatic top-up's amount; null: no rule."
    )


@extend_schema_field(
    {"type": "string", "enum": list(BalanceEntryKind.values)},
    component_name="BalanceEntryKindEnum",
)
class BalanceEntryKindField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=BalanceEntryKind.choices, **kwargs)


class BalanceEntryOutputSerializer(serializers.ModelSerializer):
    kind = BalanceEntryKindField(read_only=True, help_text=f"One of {KINDS_TEXT}.")
    amount = MoneyField(help_text="Signed: + money in, - money out.")
    invoice_number = serializers.CharField(
        source="invoice.number",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The invoice's number (applied, given back, overpaid, credited, top-up).",
    )
    credit_note_number = serializers.CharField(
        source="credit_note.number",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The credit note's number (kind `credit_note`).",
    )

    class Meta:
        model = BalanceEntry
        fields = [
            "id",
            "kind",
            "currency",
            "amount",
            "invoice",
            "invoice_number",
            "credit_note",
            "credit_note_number",
            "payment",
            "refund",
            "top_up",
            "reason",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class CustomerBalanceOutputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(read_only=True, help_text="The customer's id.")
    balances = BalanceFigureOutputSerializer(
        many=True, read_only=True, help_text="One per currency, the customer's currency first."
    )
    entries = BalanceEntryOutputSerializer(
        many=True, read_only=True, help_text="The latest 100 ledger entries, newest first."
    )


class BalanceAdjustmentInputSerializer(StrictInputSerializer):
    amount = serializers.CharField(
        max_length=40,
        help_text='Signed decimal text in the currency: "25.00" adds, "-25.00" takes away '
        "(never below 0: 409 `balance_insufficient`).",
    )
    currency = serializers.CharField(
        max_length=3, required=False, help_text="ISO 4217; absent: the customer's currency."
    )
    reason = serializers.CharField(
        max_length=500, help_text="Why (kept on the entry, shown to the customer)."
    )


class AutoTopUpInputSerializer(StrictInputSerializer):
    threshold = serializers.CharField(
        max_length=40,
        allow_null=True,
        help_text="Below this balance a top-up invoice is issued; null (with amount null) "
        "removes the rule.",
    )
    amount = serializers.CharField(
        max_length=40, allow_null=True, help_text="The top-up's amount (> 0), or null."
    )
    currency = serializers.CharField(
        max_length=3, required=False, help_text="ISO 4217; absent: the customer's currency."
    )


describe_fields(
    BalanceEntryOutputSerializer,
    {
        "id": "The entry's id.",
        "currency": "ISO 4217 code of the balance it moved.",
        "invoice": "The invoice it came from or was applied to (null for adjustments).",
        "credit_note": "The credit note (kind `credit_note`), else null.",
        "payment": "The payment (kind `overpayment`), else null.",
        "refund": "The refund (kind `refund`), else null.",
        "top_up": "The top-up (kind `top_up`), else null.",
        "reason": "Why: an adjustment's reason, or what gave it back.",
        "created_by": "Who or what recorded it (`system` for automatic entries).",
        "created_at": "When it was recorded (UTC).",
    },
)
