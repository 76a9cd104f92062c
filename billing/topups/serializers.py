"""Top-up API serializers."""

from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import StrictInputSerializer
from accounts.models import SubAccount
from billing.api.serializers import MoneyField
from billing.topups.models import TopUp
from core.openapi import describe_fields


class TopUpCreateInputSerializer(StrictInputSerializer):
    tenant_scoped_fields = {"sub_account": SubAccount}

    amount = serializers.CharField(
        max_length=40,
        required=False,
        help_text='Money to put on the balance, in the customer\'s currency (e.g. "100.00"). '
        "Give `amount` or `bytes`.",
    )
    bytes = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="A traffic pack of this many bytes, priced at the customer's plan usage price.",
    )
    sub_account = serializers.PrimaryKeyRelatedField(
        queryset=SubAccount.objects.none(),
        required=False,
        help_text="With `bytes`: the IPFoxy sub-account the pack is allocated to once paid "
        "(a whole number of its MB).",
    )


class TopUpOutputSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(
        choices=TopUp.Status.choices,
        read_only=True,
        help_text="`open` (invoice unpaid), `credited` (on the balance), `void`.",
    )
    amount = MoneyField(help_text="What goes on the balance once paid (the invoice total).")
    invoice_number = serializers.CharField(
        source="invoice.number", read_only=True, help_text="The top-up invoice's number."
    )

    class Meta:
        model = TopUp
        fields = [
            "id",
            "customer",
            "invoice",
            "invoice_number",
            "currency",
            "amount",
            "bytes",
            "sub_account",
            "status",
            "automatic",
            "allocation",
            "allocation_error",
            "created_by",
            "created_at",
            "credited_at",
        ]
        read_only_fields = fields


describe_fields(
    TopUpOutputSerializer,
    {
        "id": "The top-up's id.",
        "customer": "The customer's id.",
        "invoice": "The top-up invoice's id (`invoices/{id}/`).",
        "currency": "ISO 4217 code: the customer's.",
        "bytes": "A traffic pack's bytes; null for money.",
        "sub_account": "The IPFoxy sub-account a pack is allocated to once paid; else null.",
        "automatic": "Issued by the automatic top-up rule.",
        "allocation": "The allocation made when it was paid (a pack with a sub-account).",
        "allocation_error": "Why the pack's allocation could not be made (the money stays "
        "on the balance).",
        "created_by": "Who issued it (`system`: the automatic rule).",
        "created_at": "When it was issued (UTC).",
        "credited_at": "When its amount went on the balance (its invoice paid); null before.",
    },
)
