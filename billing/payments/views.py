"""Payment endpoints: record and list an invoice's payments, refund one, list them all
(reseller scope); an invoice's payments and the customer's payments (customer scope).

Views parse, call `payment_create`, `payment_refund` or a selector, and render. Rows come
through the tenancy base, so another tenant's invoice or payment is a 404 like a missing
one. Amounts are read by `core.money` with the invoice currency's decimals. Refusals of
input answer 400 naming the field (`invalid_amount`, `payment_currency_mismatch`,
`paid_at_in_future`); refusals because of the invoice's state
answer 409 (`invoice_not_payable`, `refund_exceeds_payment`). POSTs honour
`Idempotency-Key` like every POST of the API.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.response import Response

from accounts.api.base import CustomerScopedView, ResellerScopedView
from accounts.models import Customer
from billing.api.serializers import InvoicePaginationQuerySerializer
from billing.api.views import _actor, _parse_query
from billing.models import Invoice
from billing.money import currency_exponent
from billing.payments.models import Payment, Refund
from billing.payments.selectors import payments_filter
from billing.payments.serializers import (
    CustomerPaymentOutputSerializer,
    PaymentCreateInputSerializer,
    PaymentListQuerySerializer,
    PaymentOutputSerializer,
    RefundCreateInputSerializer,
    RefundOutputSerializer,
)
from billing.payments.services import payment_create, payment_refund
from billing.selectors import CUSTOMER_VISIBLE_STATUSES
from core.openapi import ApiErrorSerializer
from core.query import StrictQueryMixin, query_error_responses

_BAD_INPUT = OpenApiResponse(
    ApiErrorSerializer,
    description="Invalid input, `extra.fields` naming the field: `invalid_amount`, "
    "`payment_currency_mismatch`, `paid_at_in_future`, `validation_error`.",
)
_PAGED_ERRORS = {
    400: OpenApiResponse(ApiErrorSerializer, description="An unknown query parameter."),
}


class _PaymentsMixin:
    model = Payment

    def scope_queryset(self, queryset):
        return queryset.select_related("invoice").prefetch_related(
            Prefetch("refunds", queryset=Refund.objects.order_by("refunded_at", "pk"))
        )

    def paged(self, request):
        _parse_query(self, InvoicePaginationQuerySerializer)
        return self.list(request)


# --- reseller scope -------------------------------------------------------------------------


@extend_schema(tags=["reseller: payments"])
class ResellerInvoicePaymentsView(_PaymentsMixin, mixins.ListModelMixin, ResellerScopedView):
    serializer_class = PaymentOutputSerializer

    def invoice(self) -> Invoice:
        return get_object_or_404(Invoice.objects.for_reseller(self.reseller), pk=self.kwargs["pk"])

    def scope_queryset(self, queryset):
        if getattr(self, "swagger_fake_view", False):
            return queryset
        return super().scope_queryset(queryset.filter(invoice=self.invoice()))

    @extend_schema(
        operation_id="reseller_invoice_payments_list",
        parameters=[InvoicePaginationQuerySerializer],
        responses={200: PaymentOutputSerializer(many=True), **_PAGED_ERRORS},
    )
    def get(self, request, pk: int):
        return self.paged(request)

    @extend_schema(
        operation_id="reseller_invoice_payments_create",
        request=PaymentCreateInputSerializer,
        responses={
            201: PaymentOutputSerializer,
            400: _BAD_INPUT,
            409: OpenApiResponse(
                ApiErrorSerializer,
                description="`invoice_not_payable`: a draft or void invoice (`extra.status`).",
            ),
        },
    )
    def post(self, request, pk: int):
        invoice = self.invoice()
        data = self.parse(
            PaymentCreateInputSerializer, amount_places=currency_exponent(invoice.currency)
        )
        payment = payment_create(invoice=invoice, now=timezone.now(), actor=_actor(self), **data)
        payment = self.get_queryset().get(pk=payment.pk)
        return Response(PaymentOutputSerializer(payment).data, status=201)


@extend_schema(tags=["reseller: payments"])
class ResellerPaymentListView(
    StrictQueryMixin, _PaymentsMixin, mixins.ListModelMixin, ResellerScopedView
):
    serializer_class = PaymentOutputSerializer
    query_serializer = PaymentListQuerySerializer

    @extend_schema(
        operation_id="reseller_payments_list",
        parameters=[PaymentListQuerySerializer],
        responses={200: PaymentOutputSerializer(many=True), **query_error_responses()},
    )
    def get(self, request):
        query = self.parse_query()
        for name, model in (("customer", Customer), ("invoice", Invoice)):
            if name in query:
                get_object_or_404(model.objects.for_reseller(self.reseller), pk=query[name])
        queryset = payments_filter(
            self.get_queryset().order_by("pk"),
            reseller=self.reseller,
            customer_id=query.get("customer"),
            invoice_id=query.get("invoice"),
            method=query.get("method"),
            paid_from=query.get("paid_from"),
            paid_to=query.get("paid_to"),
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(PaymentOutputSerializer(page, many=True).data)


@extend_schema(tags=["reseller: payments"])
class ResellerPaymentDetailView(_PaymentsMixin, ResellerScopedView):
    serializer_class = PaymentOutputSerializer

    @extend_schema(operation_id="reseller_payments_retrieve")
    def get(self, request, pk: int):
        return Response(PaymentOutputSerializer(self.get_object()).data)


@extend_schema(tags=["reseller: payments"])
class ResellerPaymentRefundsView(_PaymentsMixin, ResellerScopedView):
    serializer_class = RefundOutputSerializer

    @extend_schema(
        operation_id="reseller_payment_refunds_create",
        request=RefundCreateInputSerializer,
        responses={
            201: RefundOutputSerializer,
            400: OpenApiResponse(
                ApiErrorSerializer,
                description="Invalid input (`invalid_amount`, `paid_at_in_future`), "
                "`extra.fields` naming the field.",
            ),
            409: OpenApiResponse(
                ApiErrorSerializer,
                description="`refund_exceeds_payment`: more than is left of the payment "
                "(`extra.remaining`).",
            ),
        },
    )
    def post(self, request, pk: int):
        payment = self.get_object()
        data = self.parse(
            RefundCreateInputSerializer, amount_places=currency_exponent(payment.currency)
        )
        refund = payment_refund(payment=payment, now=timezone.now(), actor=_actor(self), **data)
        return Response(RefundOutputSerializer(refund).data, status=201)


# --- customer scope -------------------------------------------------------------------------


@extend_schema(tags=["customer"])
class InvoicePaymentsView(_PaymentsMixin, mixins.ListModelMixin, CustomerScopedView):
    serializer_class = CustomerPaymentOutputSerializer

    def scope_queryset(self, queryset):
        if getattr(self, "swagger_fake_view", False):
            return queryset
        invoices = Invoice.objects.for_reseller(self.reseller).filter(
            customer=self.customer, status__in=CUSTOMER_VISIBLE_STATUSES
        )
        invoice = get_object_or_404(invoices, pk=self.kwargs["pk"])
        return super().scope_queryset(queryset.filter(invoice=invoice))

    @extend_schema(
        operation_id="invoice_payments_list",
        parameters=[InvoicePaginationQuerySerializer],
        responses={200: CustomerPaymentOutputSerializer(many=True), **_PAGED_ERRORS},
    )
    def get(self, request, pk: int):
        return self.paged(request)


@extend_schema(tags=["customer"])
class PaymentListView(_PaymentsMixin, mixins.ListModelMixin, CustomerScopedView):
    serializer_class = CustomerPaymentOutputSerializer

    @extend_schema(
        operation_id="payments_list",
        parameters=[InvoicePaginationQuerySerializer],
        responses={200: CustomerPaymentOutputSerializer(many=True), **_PAGED_ERRORS},
    )
    def get(self, request):
        return self.paged(request)
