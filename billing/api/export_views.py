"""Accounting exports as CSV: `GET /api/v1/reseller/exports/{invoices|credit-notes|payments}.csv
?period=YYYY-MM` (billing.exports builds them; the admin's reseller page has the same)."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from accounts.api.base import ResellerScopedView
from accounts.api.serializers import StrictInputSerializer
from billing.exports import KINDS, export_build, export_csv
from billing.invoicing.periods import period_parse
from core.openapi import ApiErrorSerializer


class ExportQuerySerializer(StrictInputSerializer):
    period = serializers.RegexField(
        r"^[1-9]\d{3}-(0[1-9]|1[0-2])$",
        help_text="The month, YYYY-MM (reseller's timezone).",
        error_messages={"invalid": "Give the period as YYYY-MM."},
    )


def export_response(*, reseller, kind: str, period_label: str) -> HttpResponse:
    """The CSV download of one export (API and admin alike)."""
    export = export_build(reseller=reseller, kind=kind, period=period_parse(period_label))
    response = HttpResponse(export_csv(export), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


@extend_schema(tags=["reseller: exports"])
class ExportView(ResellerScopedView):
    @extend_schema(
        operation_id="reseller_exports_download",
        summary="Download an accounting export (CSV)",
        parameters=[
            OpenApiParameter(
                "kind",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=list(KINDS),
                description="`invoices`, `credit-notes` or `payments`.",
            ),
            ExportQuerySerializer,
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="One row per document of the month, then one `total` row per "
                "currency. Invoices: number, status, customer_id, customer, period, issued_on, "
                "due_on, currency, net, tax, gross, credited, paid, balance_due (void ones "
                "listed, not totalled). Credit notes (issued in the month): number, invoice, "
                "customer_id, customer, issued_on, reason, currency, net, tax, gross. Payments "
                "(received in the month) and refunds (negative): type, id, payment, invoice, "
                "customer_id, customer, date, method, reference, currency, amount.",
            ),
            400: OpenApiResponse(ApiErrorSerializer, description="`period` missing or bad."),
            404: OpenApiResponse(ApiErrorSerializer, description="No such export."),
        },
    )
    def get(self, request, kind: str):
        query = request.query_params.copy()
        query.pop("format", None)
        parsed = ExportQuerySerializer(data=query)
        parsed.is_valid(raise_exception=True)
        if kind not in KINDS:
            raise Http404("No such export.")
        return export_response(
            reseller=self.reseller, kind=kind, period_label=parsed.validated_data["period"]
        )
