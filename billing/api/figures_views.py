"""`GET /api/v1/reseller/figures/?period=YYYY-MM`: the month's money per currency and what
customers owe now, from `billing.figures` (the selector the dashboard and the CSV exports
read, so the three agree to the cent)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.base import ResellerScopedView
from billing.api.export_views import ExportQuerySerializer
from billing.figures import money_for_month, receivables_by_currency
from billing.invoicing.periods import period_parse
from core.openapi import ApiErrorSerializer

_MONEY = {"max_digits": 20, "decimal_places": 2, "coerce_to_string": True}


def _amount(help_text: str, **kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(**_MONEY, help_text=help_text, **kwargs)


class CurrencyMonthOutputSerializer(serializers.Serializer):
    currency = serializers.CharField(help_text="ISO 4217 code of every amount in the row.")
    invoice_count = serializers.IntegerField(help_text="Issued invoices (finalized or paid).")
    invoiced_net = _amount("Issued invoices' net (before tax).")
    invoiced_tax = _amount("Issued invoices' tax.")
    invoiced_gross = _amount("Issued invoices' total.")
    draft_net = _amount("Drafts of the month not issued yet, net.")
    credited_net = _amount("Credit notes on the issued invoices, net.")
    credited_tax = _amount("Credit notes' tax.")
    credited_gross = _amount("Credit notes' total.")
    revenue = _amount("invoiced_net + draft_net - credited_net.")
    paid = _amount(
        "Payments on the issued invoices less refunds (without a payment's part "
        "put on the customer's balance)."
    )
    balance_applied = _amount("Customer balance the issued invoices used (after tax).")
    balance_due = _amount("Still owed on them: total - balance_applied - credited - paid.")
    cost = _amount(
        "Upstream cost of the traffic of the customers billed in this currency; null unless it "
        "is the reseller's currency (upstream cost is in the reseller's currency).",
        allow_null=True,
    )
    margin = _amount("revenue - cost; null when cost is.", allow_null=True)


class CurrencyReceivablesOutputSerializer(serializers.Serializer):
    currency = serializers.CharField(help_text="ISO 4217 code of every amount in the row.")
    open_count = serializers.IntegerField(help_text="Issued invoices with a balance due.")
    balance_due = _amount("What customers owe on them now.")
    not_yet_due = _amount("The part whose due date has not passed.")
    overdue_count = serializers.IntegerField(help_text="Invoices past their due date.")
    overdue = _amount("The part past its due date (`overdue` on invoices).")
    customer_balances = _amount(
        "Credit held for customers in this currency (their balances), applied to their next "
        "invoices."
    )


class ResellerFiguresOutputSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="The month, YYYY-MM (reseller's timezone).")
    currencies = CurrencyMonthOutputSerializer(
        many=True, help_text="The month's invoices per currency, the reseller's first."
    )
    receivables = CurrencyReceivablesOutputSerializer(
        many=True, help_text="What customers owe now and the balances held, per currency."
    )


_EXAMPLE = {
    "period": "2026-11",
    "currencies": [
        {
            "currency": "USD",
            "invoice_count": 4,
            "invoiced_net": "1200.00",
            "invoiced_tax": "96.00",
            "invoiced_gross": "1296.00",
            "draft_net": "0.00",
            "credited_net": "150.00",
            "credited_tax": "12.00",
            "credited_gross": "162.00",
            "revenue": "1050.00",
            "paid": "480.00",
            "balance_applied": "20.00",
            "balance_due": "634.00",
            "cost": "391.53",
            "margin": "658.47",
        },
        {
            "currency": "EUR",
            "invoice_count": 1,
            "invoiced_net": "751.00",
            "invoiced_tax": "0.00",
            "invoiced_gross": "751.00",
            "draft_net": "0.00",
            "credited_net": "0.00",
            "credited_tax": "0.00",
            "credited_gross": "0.00",
            "revenue": "751.00",
            "paid": "0.00",
            "balance_applied": "0.00",
            "balance_due": "751.00",
            "cost": None,
            "margin": None,
        },
    ],
    "receivables": [
        {
            "currency": "USD",
            "open_count": 2,
            "balance_due": "634.00",
            "not_yet_due": "200.00",
            "overdue_count": 1,
            "overdue": "434.00",
            "customer_balances": "35.00",
        }
    ],
}


@extend_schema(tags=["reseller: exports"])
class ResellerFiguresView(ResellerScopedView):
    @extend_schema(
        operation_id="reseller_figures_retrieve",
        summary="Money figures of a month, per currency",
        description="The month's invoiced, credited, paid and due amounts, revenue, upstream "
        "cost and margin, one row per currency (never summed across currencies), and what "
        "customers owe now: the figures of the dashboard's 'Money by currency' panel and of "
        "the invoices export's total rows.",
        parameters=[ExportQuerySerializer],
        responses={
            200: OpenApiResponse(
                ResellerFiguresOutputSerializer,
                examples=[OpenApiExample("Two currencies", value=_EXAMPLE)],
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
