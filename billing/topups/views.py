"""Top-up endpoints: `GET, POST /api/v1/reseller/customers/{id}/top-ups/` (list, issue one)
and the customer's own list (`GET /api/v1/top-ups/`)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.response import Response

from accounts.api.base import CustomerScopedView, ResellerScopedView
from accounts.models import Customer
from billing.api.serializers import InvoicePaginationQuerySerializer
from billing.api.views import _parse_query
from billing.topups.models import TopUp
from billing.topups.serializers import TopUpCreateInputSerializer, TopUpOutputSerializer
from billing.topups.services import top_up_create
from core.openapi import ApiErrorSerializer

TOP_UP = {
    "id": 5,
    "customer": 42,
    "invoice": 31,
    "invoice_number": "DEMO-2026-00031",
    "currency": "USD",
    "amount": "25.00",
    "bytes": 10737418240,
    "sub_account": 3,
    "status": "open",
    "automatic": False,
    "allocation": None,
    "allocation_error": "",
    "created_by": "key k7x2m9qa",
    "created_at": "2026-11-20T09:30:00Z",
    "credited_at": None,
}
_PAGED = {400: OpenApiResponse(ApiErrorSerializer, description="An unknown query parameter.")}


class _TopUps:
    model = TopUp

    def scope_queryset(self, queryset):
        return queryset.select_related("invoice").order_by("-created_at", "-pk")

    def paged(self, request):
        _parse_query(self, InvoicePaginationQuerySerializer)
        return self.list(request)


@extend_schema(tags=["reseller: customers"])
class ResellerCustomerTopUpsView(_TopUps, mixins.ListModelMixin, ResellerScopedView):
    serializer_class = TopUpOutputSerializer

    def customer(self) -> Customer:
        return get_object_or_404(
            Customer.objects.for_reseller(self.reseller).select_related("reseller"),
            pk=self.kwargs["pk"],
        )

    def scope_queryset(self, queryset):
        if getattr(self, "swagger_fake_view", False):
            return queryset
        return super().scope_queryset(queryset.filter(customer=self.customer()))

    @extend_schema(
        operation_id="reseller_customers_top_ups_list",
        summary="List a customer's top-ups",
        description="The customer's top-ups, newest first, with their invoices and status.",
        parameters=[InvoicePaginationQuerySerializer],
        responses={200: TopUpOutputSerializer(many=True), **_PAGED},
        examples=[OpenApiExample("Top-ups", response_only=True, value=TOP_UP)],
    )
    def get(self, request, pk: int):
        return self.paged(request)

    @extend_schema(
        operation_id="reseller_customers_top_ups_create",
        summary="Issue a top-up",
        description="Issues a top-up invoice now (numbered in your invoice series, PDF, "
        "emailed): `amount` of money, or a traffic pack of `bytes` priced at the customer's "
        "plan usage price (with `sub_account`: allocated to that IPFoxy sub-account once "
        "paid). A top-up is a prepayment: its invoice carries no tax (tax is charged on the "
        "invoices the balance pays). Paying the invoice puts the amount on the customer's "
        "balance, once.",
        request=TopUpCreateInputSerializer,
        responses={
            201: TopUpOutputSerializer,
            400: OpenApiResponse(
                ApiErrorSerializer, description="`invalid_amount`, `validation_error`."
            ),
            404: OpenApiResponse(ApiErrorSerializer, description="Not one of your customers."),
            409: OpenApiResponse(
                ApiErrorSerializer,
                description="`no_plan_price`, `top_up_free`, `sub_account_not_ipfoxy`.",
            ),
        },
        examples=[
            OpenApiExample(
                "Traffic pack",
                request_only=True,
                value={"bytes": 10737418240, "sub_account": 3},
            ),
            OpenApiExample("Issued", response_only=True, status_codes=["201"], value=TOP_UP),
        ],
    )
    def post(self, request, pk: int):
        customer = self.customer()
        data = self.parse(TopUpCreateInputSerializer)
        top_up = top_up_create(customer=customer, now=timezone.now(), actor=self.actor, **data)
        return Response(TopUpOutputSerializer(top_up).data, status=201)


@extend_schema(tags=["customer"])
class TopUpListView(_TopUps, mixins.ListModelMixin, CustomerScopedView):
    serializer_class = TopUpOutputSerializer

    @extend_schema(
        operation_id="top_ups_list",
        summary="List my top-ups",
        description="The customer's top-ups, newest first.",
        parameters=[InvoicePaginationQuerySerializer],
        responses={200: TopUpOutputSerializer(many=True), **_PAGED},
        examples=[OpenApiExample("Top-ups", response_only=True, value=TOP_UP)],
    )
    def get(self, request):
        return self.paged(request)
