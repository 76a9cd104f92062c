"""Credit note API serializers: one strict input, one output (unique component names)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import StrictInputSerializer
from billing.api.serializers import MoneyField
from billing.credit_notes.models import CreditNote, CreditNoteLine, CreditNoteReason
from core.money import AmountInputField
from core.query import id_parameter

#: Decimal places of the amount columns; a request narrows it to its invoice's currency
#: (USD 2, JPY 0).
AMOUNT_PLACES = CreditNoteLine._meta.get_field("amount").decimal_places


def _amount(**kwargs) -> AmountInputField:
    """Plain decimal text (`core.money`) with at most the invoice currency's decimals (the
    view passes them as the `amount_places` context); anything else is a 400
    `invalid_amount`. The service checks it is above 0 and within what is left."""
    return AmountInputField(places=AMOUNT_PLACES, **kwargs)


@extend_schema_field(
    {"type": "string", "enum": ["", *CreditNoteReason.values]},
    component_name="CreditNoteReasonEnum",
)
class CreditNoteReasonField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=CreditNoteReason.choices, **kwargs)


class CreditNoteLineInputSerializer(StrictInputSerializer):
    line = id_parameter("Id of a line of this invoice.", required=True)
    amount = _amount(help_text="Net amount of the line to credit (tax is added at its rate).")


class CreditNoteCreateInputSerializer(StrictInputSerializer):
    """`{}`: credit what is left of the invoice; `amount`: a gross amount; `lines`: net
    amounts of invoice lines. Not `amount` and `lines` together: `credit_note_create`'s rule
    (400 `credit_amount_and_lines`)."""

    amount = _amount(
        required=False, help_text='Gross amount to credit (tax included), e.g. "60.00".'
    )
    lines = CreditNoteLineInputSerializer(many=True, required=False, allow_empty=False)
    reason = CreditNoteReasonField(required=False, default="", allow_blank=True)
    memo = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    idempotency_key = serializers.CharField(
        max_length=100,
        required=False,
        default="",
        help_text="Optional; a retry with the same key returns the first credit note.",
    )
    send_email = serializers.BooleanField(
        required=False, default=True, help_text="Email the credit note to the customer."
    )


class CreditNoteLineOutputSerializer(serializers.ModelSerializer):
    amount = MoneyField(currency_from="credit_note.currency", help_text="Net.")
    tax = MoneyField(currency_from="credit_note.currency")
    total = MoneyField(currency_from="credit_note.currency")

    class Meta:
        model = CreditNoteLine
        fields = ["id", "invoice_line", "description", "amount", "tax", "total"]
        extra_kwargs = {
            "invoice_line": {"help_text": "The invoice line credited; null for an amount."}
        }


class CreditNoteOutputSerializer(serializers.ModelSerializer):
    reason = CreditNoteReasonField(read_only=True)
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)
    subtotal = MoneyField()
    tax = MoneyField()
    total = MoneyField()
    lines = CreditNoteLineOutputSerializer(many=True, read_only=True)

    class Meta:
        model = CreditNote
        fields = [
            "id",
            "number",
            "invoice",
            "invoice_number",
            "customer",
            "currency",
            "reason",
            "memo",
            "subtotal",
            "tax_rate",
            "tax",
            "total",
            "issued_on",
            "created_at",
            "lines",
        ]
        extra_kwargs = {"tax_rate": {"help_text": "Percent: the credited invoice's rate."}}
