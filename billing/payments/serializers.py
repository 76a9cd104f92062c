"""Payment API serializers: strict inputs, outputs for reseller and customer (unique names)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import StrictInputSerializer
from billing.api.serializers import MoneyField, money_text
from billing.payments.models import Payment, PaymentMethod, Refund
from billing.payments.selectors import payment_amount_refunded
from core.money import AmountInputField
from core.query import id_parameter

#: Decimal places of the amount columns; a request narrows it to its invoice's currency.
AMOUNT_PLACES = Payment._meta.get_field("amount").decimal_places
METHODS_TEXT = ", ".join(f"`{value}`" for value in PaymentMethod.values)


@extend_schema_field(
    {
        "type": "string",
        "enum": list(PaymentMethod.values),
        "description": f"How the money came in: {METHODS_TEXT}. Details (the bank, the "
        "wallet, the network) go in `method_detail`.",
    },
    component_name="PaymentMethodEnum",
)
class PaymentMethodField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=PaymentMethod.choices, **kwargs)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 moment with its offset (`2026-11-19T10:00:00Z`); without one it is
    refused instead of being read in the server's timezone."""

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            raise serializers.ValidationError(
                "Give a timezone offset, e.g. 2026-11-19T10:00:00Z.", code="naive_datetime"
            )
        return super().enforce_timezone(value)


def _amount(**kwargs) -> AmountInputField:
    """Plain decimal text (`core.money`) with at most the invoice currency's decimals (the
    view passes them as `amount_places`); the service checks it is above 0 and within
    what is due or left."""
    return AmountInputField(places=AMOUNT_PLACES, **kwargs)


class PaymentCreateInputSerializer(StrictInputSerializer):
    amount = _amount(
        help_text='Received, in the invoice currency (e.g. "100.00"; JPY no decimals), above '
        "0 and at most the balance due."
    )
    paid_at = AwareDateTimeField(
        required=False,
        help_text="When the money was received, with its offset; absent: now. Not in the "
        "future (5 minutes of clock skew allowed).",
    )
    method = PaymentMethodField(help_text=f"One of {METHODS_TEXT}.")
    method_detail = serializers.CharField(
        max_length=100,
        required=False,
        default="",
        allow_blank=True,
        help_text="Free text about the method: bank, wallet, card brand, network.",
    )
    reference = serializers.CharField(
        max_length=200,
        required=False,
        default="",
        allow_blank=True,
        help_text="The payer's or the bank's reference (a wire reference, a transaction id).",
    )
    note = serializers.CharField(
        max_length=500, required=False, default="", allow_blank=True, help_text="Internal."
    )
    currency = serializers.CharField(
        required=False,
        help_text="Optional: when given it must be the invoice's currency (else 400 "
        "`payment_currency_mismatch`). A payment is always in its invoice's currency.",
    )


class RefundCreateInputSerializer(StrictInputSerializer):
    amount = _amount(
        required=False,
        help_text="Given back, at most what is left of the payment; absent: all of it.",
    )
    refunded_at = AwareDateTimeField(
        required=False, help_text="When the money was given back; absent: now."
    )
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    reference = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class PaymentListQuerySerializer(StrictInputSerializer):
    """Filters of the reseller payments list (plus `limit`/`offset`)."""

    customer = id_parameter("Only this customer's payments (not yours: 404).")
    invoice = id_parameter("Only this invoice's payments (not yours: 404).")
    method = PaymentMethodField(required=False, help_text="Only payments by this method.")
    paid_from = serializers.DateField(
        required=False,
        help_text="Received on or after this day (YYYY-MM-DD, your billing timezone).",
    )
    paid_to = serializers.DateField(
        required=False,
        help_text="Received on or before this day (inclusive, your billing timezone).",
    )

    def validate(self, attrs):
        if "paid_from" in attrs and "paid_to" in attrs and attrs["paid_to"] < attrs["paid_from"]:
            raise serializers.ValidationError({"paid_to": ["Give a day on or after paid_from."]})
        return attrs


class RefundOutputSerializer(serializers.ModelSerializer):
    amount = MoneyField(currency_from="payment.currency")

    class Meta:
        model = Refund
        fields = ["id", "payment", "amount", "refunded_at", "reason", "reference", "created_at"]


class _RefundedField(serializers.Field):
    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        kwargs["source"] = "*"
        super().__init__(**kwargs)

    def to_representation(self, payment) -> str:
        return money_text(payment_amount_refunded(payment=payment), payment.currency)


AmountRefundedField = extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": r"^-?\d+(\.\d+)?$", "example": "30.00"}
)(_RefundedField)


class CustomerPaymentOutputSerializer(serializers.ModelSerializer):
    """A payment as its customer sees it (no internal note, no author)."""

    method = PaymentMethodField(read_only=True)
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)
    amount = MoneyField()
    amount_refunded = AmountRefundedField(help_text="Given back of it by its refunds.")
    refunds = RefundOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "invoice",
            "invoice_number",
            "currency",
            "amount",
            "amount_refunded",
            "paid_at",
            "method",
            "method_detail",
            "reference",
            "refunds",
        ]
        extra_kwargs = {"currency": {"help_text": "Always the invoice's."}}


class PaymentOutputSerializer(CustomerPaymentOutputSerializer):
    """A payment as the reseller sees it."""

    class Meta(CustomerPaymentOutputSerializer.Meta):
        fields = [
            "id",
            "invoice",
            "invoice_number",
            "customer",
            *CustomerPaymentOutputSerializer.Meta.fields[3:],
            "note",
            "created_by",
            "created_at",
        ]
        extra_kwargs = {
            **CustomerPaymentOutputSerializer.Meta.extra_kwargs,
            "created_by": {"help_text": "Who recorded it: an API key by prefix, or a user."},
        }
