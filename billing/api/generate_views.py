"""Billing a month on request, previewing an invoice, and a customer's current usage, in
reseller scope: what was shell-only (`generate_invoices`)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts.api.base import ResellerScopedView
from accounts.models import Customer
from billing.api.generate_serializers import (
    InvoiceGenerateInputSerializer,
    InvoiceGenerateOutputSerializer,
    InvoicePreviewOutputSerializer,
    InvoicePreviewQuerySerializer,
)
from billing.api.serializers import CurrentUsageOutputSerializer
from billing.api.views import (
    _actor,
    _parse_query,
    _ResellerInvoicesBase,
    current_usage_response,
)
from billing.invoicing.compute import invoice_preview
from billing.invoicing.engine import Failure, require_ended
from billing.invoicing.generate import invoices_generate, period_require_started
from billing.invoicing.periods import period_parse
from billing.tasks import invoices_generate_task
from core.openapi import ApiErrorSerializer

_NOT_YOURS = OpenApiResponse(ApiErrorSerializer, description="`customer` is not one of yours.")
_BAD_INPUT = OpenApiResponse(
    ApiErrorSerializer, description="A field is missing or invalid: `extra.fields` names it."
)


def _outcomes(failures: list[Failure]) -> list[dict]:
    return [{"customer": f.customer_id, "code": f.code, "message": f.message} for f in failures]


def _customer(view: ResellerScopedView, pk: int) -> Customer:
    return get_object_or_404(
        Customer.objects.for_reseller(view.reseller).select_related("reseller"), pk=pk
    )


@extend_schema(tags=["reseller: invoices"])
class InvoiceGenerateView(_ResellerInvoicesBase):
    @extend_schema(
        operation_id="reseller_invoices_generate",
        summary="Bill an ended month",
        description="Creates the month's drafts (refreshing existing ones), or issues them "
        "with `finalize`, like `manage.py generate_invoices`. With `customer`: runs now and "
        "answers 200 with that customer's invoice. Without: queues the whole reseller's run "
        "and answers 202 (watch `GET reseller/invoices/?period=`). Safe to repeat: issued "
        "invoices are left alone, nothing is billed twice. A voided month is billed again "
        "(next number) only for a named `customer`; the new invoice shows `replaces`. A "
        "customer with nothing billable in the month (no subscription active in it, no usage, "
        "no adjustment) gets no invoice and is listed in `skipped` (`nothing_billable`). An "
        "open month is 409 `period_not_ended` (use `preview/`); a month that ended before "
        "the named customer was created (your timezone), with nothing billable in it, is 409 "
        "`period_before_customer`.",
        request=InvoiceGenerateInputSerializer,
        responses={
            200: InvoiceGenerateOutputSerializer,
            202: InvoiceGenerateOutputSerializer,
            400: _BAD_INPUT,
            404: _NOT_YOURS,
            409: OpenApiResponse(
                ApiErrorSerializer,
                description="`period_not_ended` (the month is still open) or "
                "`period_before_customer` (the month ended before the customer was created).",
            ),
        },
        examples=[
            OpenApiExample(
                "One customer, issued",
                value={"period": "2026-10", "customer": 1, "finalize": True},
                request_only=True,
            ),
            OpenApiExample(
                "Whole reseller, queued",
                value={
                    "period": "2026-10",
                    "queued": True,
                    "finalize": False,
                    "invoices": [],
                    "voided": [],
                    "failed": [],
                    "skipped": [],
                },
                response_only=True,
                status_codes=["202"],
            ),
        ],
    )
    def post(self, request):
        data = self.parse(InvoiceGenerateInputSerializer)
        period = period_parse(data["period"])
        customer = _customer(self, data["customer"]) if "customer" in data else None
        now = timezone.now()
        body = {
            "period": data["period"],
            "finalize": data["finalize"],
            "voided": [],
            "failed": [],
            "skipped": [],
        }
        if customer is None:
            require_ended(period=period, reseller=self.reseller, now=now)
            invoices_generate_task.delay(
                self.reseller.pk, data["period"], data["finalize"], _actor(self)
            )
            return Response({**body, "queued": True, "invoices": []}, status=202)
        result = invoices_generate(
            reseller=self.reseller,
            period=period,
            now=now,
            customer=customer,
            finalize=data["finalize"],
            actor=_actor(self),
        )
        invoices = self.get_queryset().filter(pk__in=result.invoice_ids).order_by("pk")
        return Response(
            InvoiceGenerateOutputSerializer(
                {
                    **body,
                    "queued": False,
                    "invoices": invoices,
                    "voided": result.voided,
                    "failed": _outcomes(result.failed),
                    "skipped": _outcomes(result.skipped),
                }
            ).data
        )


@extend_schema(tags=["reseller: invoices"])
class InvoicePreviewView(_ResellerInvoicesBase):
    @extend_schema(
        operation_id="reseller_invoices_preview",
        summary="Preview a customer's invoice",
        description="The invoice the engine computes now for the customer and month (open or "
        "ended), lines and totals; nothing is written. A future month is 409 "
        "`period_not_started`.",
        parameters=[InvoicePreviewQuerySerializer],
        responses={
            200: InvoicePreviewOutputSerializer,
            400: _BAD_INPUT,
            404: _NOT_YOURS,
            409: OpenApiResponse(ApiErrorSerializer, description="`period_not_started`."),
        },
        examples=[
            OpenApiExample(
                "October so far",
                value={
                    "customer": 1,
                    "period_start": "2026-10-01",
                    "period_end": "2026-11-01",
                    "currency": "USD",
                    "tax_rate": "20.0000",
                    "subtotal": "147.50",
                    "tax": "29.50",
                    "total": "177.00",
                    "lines": [
                        {
                            "kind": "base_fee",
                            "group": "Starter - all upstreams",
                            "description": "Base fee",
                            "sub_account": None,
                            "quantity": "1.000000000000",
                            "unit": "month",
                            "unit_price": "10.000000",
                            "amount": "10.00",
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        query = _parse_query(self, InvoicePreviewQuerySerializer)
        period = period_parse(query["period"])
        customer = _customer(self, query["customer"])
        period_require_started(period=period, reseller=self.reseller, now=timezone.now())
        preview = invoice_preview(customer=customer, period_start=period.start)
        body = {
            "customer": customer.pk,
            "period_start": period.start,
            "period_end": period.end,
            "currency": preview.currency,
            "tax_rate": preview.tax_rate,
            "subtotal": preview.totals.subtotal,
            "tax": preview.totals.tax,
            "total": preview.totals.total,
            "lines": preview.lines,
        }
        context = {"currency": preview.currency}
        return Response(InvoicePreviewOutputSerializer(body, context=context).data)


@extend_schema(tags=["reseller: customers"])
class CustomerUsageCurrentView(ResellerScopedView):
    model = Customer
    serializer_class = CurrentUsageOutputSerializer

    @extend_schema(
        operation_id="reseller_customers_usage_current",
        summary="A customer's current month",
        description="What `GET usage/current/` answers that customer, in reseller scope: the "
        "open month's usage so far and the charge it rates to. Not your customer: 404.",
        responses={200: CurrentUsageOutputSerializer, 404: _NOT_YOURS},
    )
    def get(self, request, pk: int):
        return current_usage_response(_customer(self, pk))
