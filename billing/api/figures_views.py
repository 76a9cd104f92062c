"""`GET /api/v1/reseller/figures/?period=YYYY-MM`: the month's money per currency and what
customers owe now, from `billing.figures` (the selector the dashboard and the CSV exports
read, so the three agree to the cent)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.base import ResellerScopedView
from billing.api.export_views import ExportQuerySerializer
from billing.figures import money_for_month, receivables_by_currency
from billing.invoicing.periods import period_parse
from core.openapi import ApiErrorSerializer

_MONEY = {"max_digits": 20, "decimal_places": 2, "coerce_to_string": True}


class CurrencyMonthOutputSerializer(serializers.Serializer):
    currency = serializers.CharField()
    invoice_count = serializers.IntegerField(help_text="Issued invoices (finalized or paid).")
    invoiced_net = serializers.DecimalField(**_MONEY, help_text="Issued invoices, before tax.")
    invoiced_tax = serializers.DecimalField(**_MONEY)
    invoiced_gross = serializers.DecimalField(**_MONEY)
    draft_net = serializers.DecimalField(**_MONEY, help_text="Drafts not issued yet.")
    credited_net = serializers.DecimalField(**_MONEY, help_text="Credit notes on those invoices.")
    credited_tax = serializers.DecimalField(**_MONEY)
    credited_gross = serializers.DecimalField(**_MONEY)
    revenue = serializers.DecimalField(
        **_MONEY, help_text="invoiced_net + draft_net - credited_net."
    )
    paid = serializers.DecimalField(**_MONEY, help_text="Payments less refunds.")
    balance_due = serializers.DecimalField(**_MONEY, help_text="Still owed on them.")
    cost = serializers.DecimalField(
        **_MONEY,
        allow_null=True,
        help_text="Upstream cost of these customers' traffic; null unless the currency is "
        "the reseller's (upstream cost is in the reseller's currency).",
    )
    margin = serializers.DecimalField(**_MONEY, allow_null=True, help_text="revenue - cost.")


class CurrencyReceivablesOutputSerializer(serializers.Serializer):
    currency = serializers.CharField()
    open_count = serializers.IntegerField()
    balance_due = serializers.DecimalField(**_MONEY)
    not_yet_due = serializers.DecimalField(**_MONEY)
    overdue_count = serializers.IntegerField()
    overdue = serializers.DecimalField(**_MONEY)


class ResellerFiguresOutputSerializer(serializers.Serializer):
    period = serializers.CharField()
    currencies = CurrencyMonthOutputSerializer(many=True)
    receivables = CurrencyReceivablesOutputSerializer(many=True)


@extend_schema(tags=["reseller: exports"])
class ResellerFiguresView(ResellerScopedView):
    @extend_schema(
        operation_id="reseller_figures_retrieve",
        summary="Money figures of a month, per currency",
        parameters=[ExportQuerySerializer],
        responses={
            200: OpenApiResponse(
                ResellerFiguresOutputSerializer,
                description="`currencies`: the month's invoices (by service period) per "
                "currency, never summed across currencies; `receivables`: what customers owe "
                "now on issued invoices, per currency, and the overdue part.",
            ),
            400: OpenApiResponse(ApiErrorSerializer, description="`period` missing or bad."),
        },
    )
    def get(self, request):
        query = request.query_params.copy()
        query.pop("format", None)
        parsed = ExportQuerySerializer(data=query)
        parsed.is_valid(raise_exception=True)
        period = period_parse(parsed.validated_data["period"])
        body = {
            "period": period.label,
            "currencies": money_for_month(reseller=self.reseller, period_start=period.start),
            "receivables": receivables_by_currency(reseller=self.reseller, now=timezone.now()),
        }
        return Response(ResellerFiguresOutputSerializer(body).data)
