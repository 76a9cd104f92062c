"""Serializers of `reseller/invoices/generate/` and `reseller/invoices/preview/`."""

from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import StrictInputSerializer
from billing.api.serializers import CurrentMoneyField, ResellerInvoiceOutputSerializer
from core.query import id_parameter

PERIOD_RE = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"


def _period(**kwargs) -> serializers.RegexField:
    return serializers.RegexField(
        PERIOD_RE, error_messages={"invalid": "Give the period as YYYY-MM."}, **kwargs
    )


class InvoiceGenerateInputSerializer(StrictInputSerializer):
    period = _period(
        help_text="The month to bill, YYYY-MM; it must have ended (reseller's timezone)."
    )
    customer = id_parameter(
        "Only this customer (run at once, the invoice answered); without it every billable "
        "customer of yours, queued (202). Not one of yours: 404."
    )
    finalize = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Issue the invoices (number, PDF, email) instead of leaving drafts.",
    )


class GenerateFailureSerializer(serializers.Serializer):
    customer = serializers.IntegerField(help_text="The customer that could not be billed.")
    code = serializers.CharField(help_text="The error code, e.g. `unrated_usage`.")
    message = serializers.CharField()


class GenerateSkippedSerializer(serializers.Serializer):
    customer = serializers.IntegerField(help_text="The customer that got no invoice.")
    code = serializers.CharField(
        help_text="`nothing_billable`: no subscription active in the month, no usage and no "
        "adjustment, so no invoice (never a numbered zero invoice)."
    )
    message = serializers.CharField()


class InvoiceGenerateOutputSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="The month, YYYY-MM.")
    queued = serializers.BooleanField(
        help_text="True: the whole reseller's run was queued (202); its invoices appear in "
        "`GET reseller/invoices/?period=`. False: it ran now (200)."
    )
    finalize = serializers.BooleanField()
    invoices = ResellerInvoiceOutputSerializer(
        many=True, help_text="The customer's invoice of the period (empty when queued)."
    )
    voided = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Customers whose invoice of the period was voided and not billed again.",
    )
    failed = GenerateFailureSerializer(many=True)
    skipped = GenerateSkippedSerializer(
        many=True,
        help_text="Customers with nothing billable in the month: no invoice was created or "
        "issued (an existing draft of theirs was discarded).",
    )


class InvoicePreviewQuerySerializer(StrictInputSerializer):
    period = _period(help_text="The month, YYYY-MM (open or ended; not a future one).")
    customer = id_parameter("One of your customers (else 404).", required=True)


class InvoicePreviewLineSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="`base_fee`, `usage`, `minimum` or `adjustment`.")
    group = serializers.CharField(help_text="The subscription the line belongs to.")
    description = serializers.CharField()
    sub_account = serializers.IntegerField(source="sub_account_id", allow_null=True)
    quantity = serializers.DecimalField(
        max_digits=32, decimal_places=12, allow_null=True, help_text="In `unit`."
    )
    unit = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    amount = CurrentMoneyField(help_text="Decimal string in the invoice currency.")


class InvoicePreviewOutputSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    period_start = serializers.DateField()
    period_end = serializers.DateField(help_text="First day after the period (exclusive).")
    currency = serializers.CharField()
    tax_rate = serializers.DecimalField(
        max_digits=7, decimal_places=4, help_text="A percent: 20.0000 = 20 %."
    )
    subtotal = CurrentMoneyField()
    tax = CurrentMoneyField()
    total = CurrentMoneyField()
    lines = InvoicePreviewLineSerializer(many=True)
