"""`GET /api/v1/reseller/customers/{id}/exposure/`: the credit-limit figures of one customer,
from the one exposure selector (`billing.traffic_policy.customer_exposure`)."""

from __future__ import annotations

from types import SimpleNamespace

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.base import ResellerScopedView
from accounts.models import Customer
from billing.api.serializers import MoneyField
from billing.traffic_policy import customer_exposure
from core.openapi import ApiErrorSerializer


class _OptionalMoneyField(MoneyField):
    def to_representation(self, value) -> str | None:
        return None if value[0] is None else super().to_representation(value)


class CustomerExposureOutputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(read_only=True, help_text="The customer's id.")
    currency = serializers.CharField(read_only=True, help_text="The customer's currency.")
    traffic_policy = serializers.ChoiceField(
        choices=Customer.TrafficPolicy.choices,
        read_only=True,
        help_text="`manual` (staff allocate) or `credit_limit` (automatic top-ups).",
    )
    credit_limit = serializers.DecimalField(
        max_digits=20,
        decimal_places=2,
        allow_null=True,
        read_only=True,
        help_text="null: no limit set.",
    )
    credit_limit_reached_at = serializers.DateTimeField(
        allow_null=True,
        read_only=True,
        help_text="When a top-up was last refused by the limit; null once one fits again.",
    )
    topup_bytes = serializers.IntegerField(
        allow_null=True, read_only=True, help_text="The top-up chunk in bytes."
    )
    topup_below_bytes = serializers.IntegerField(
        allow_null=True, read_only=True, help_text="The low-water mark per sub-account, bytes."
    )
    balance_due = MoneyField(
        help_text="Balance due on finalized monthly invoices (net of credit notes, payments "
        "and balance applied; unpaid top-up invoices are prepayments and count 0)."
    )
    unissued = MoneyField(
        help_text="The month just closed while it has no issued invoice yet (its own lines)."
    )
    usage_so_far = MoneyField(
        help_text="This month rated so far: the estimated total of `usage/current/`."
    )
    unused_traffic = MoneyField(
        help_text="Traffic allocated and not used yet, at the customer's plans' prices."
    )
    unused_bytes = serializers.IntegerField(
        read_only=True,
        help_text="Remaining bytes of its open sub-accounts plus allocations not counted yet.",
    )
    customer_balance = MoneyField(
        help_text="The customer balance held in its currency (credit that pays its next "
        "invoices), subtracted from the total."
    )
    total = MoneyField(
        help_text="The exposure: the four parts owed minus `customer_balance` (negative when "
        "the balance covers more than is owed)."
    )
    available = _OptionalMoneyField(
        allow_null=True, help_text="credit_limit - total (negative: over it); null: no limit."
    )
    period_start = serializers.DateField(
        read_only=True, help_text="First day of the open month (reseller's timezone)."
    )
    period_end = serializers.DateField(read_only=True, help_text="Exclusive.")
    as_of = serializers.DateTimeField(read_only=True, help_text="When it was computed.")


@extend_schema(tags=["reseller: customers"])
class CustomerExposureView(ResellerScopedView):
    model = Customer
    serializer_class = CustomerExposureOutputSerializer

    @extend_schema(
        operation_id="reseller_customers_exposure",
        summary="A customer's exposure against its credit limit",
        description="What the customer owes or will owe, by part, in its currency: balance "
        "due on finalized monthly invoices, the closed month not invoiced yet, this month's "
        "usage rated so far and the traffic allocated to it and not used yet at its plans' "
        "prices, less the customer balance it holds (prepaid credit). The credit-limit "
        "policy tops up only while this plus the next chunk stays within `credit_limit`. "
        "Not your customer: 404.",
        responses={
            200: CustomerExposureOutputSerializer,
            404: OpenApiResponse(ApiErrorSerializer, description="Not one of your customers."),
        },
        examples=[
            OpenApiExample(
                "Near the limit",
                response_only=True,
                value={
                    "customer": 42,
                    "currency": "USD",
                    "traffic_policy": "credit_limit",
                    "credit_limit": "500.00",
                    "credit_limit_reached_at": None,
                    "topup_bytes": 10737418240,
                    "topup_below_bytes": 2147483648,
                    "balance_due": "210.00",
                    "unissued": "0.00",
                    "usage_so_far": "135.00",
                    "unused_traffic": "25.00",
                    "unused_bytes": 10737418240,
                    "customer_balance": "50.00",
                    "total": "320.00",
                    "available": "180.00",
                    "period_start": "2026-03-01",
                    "period_end": "2026-04-01",
                    "as_of": "2026-03-10T12:30:00Z",
                },
            )
        ],
    )
    def get(self, request, pk: int):
        customer = get_object_or_404(
            Customer.objects.for_reseller(self.reseller).select_related("reseller"), pk=pk
        )
        exposure = customer_exposure(customer=customer, now=timezone.now())
        limit = customer.credit_limit
        body = SimpleNamespace(
            customer=customer.pk,
            currency=exposure.currency,
            traffic_policy=customer.traffic_policy,
            credit_limit=limit,
            credit_limit_reached_at=customer.credit_limit_reached_at,
            topup_bytes=customer.topup_bytes,
            topup_below_bytes=customer.topup_below_bytes,
            balance_due=exposure.balance_due,
            unissued=exposure.unissued,
            usage_so_far=exposure.usage_so_far,
            unused_traffic=exposure.unused_traffic,
            unused_bytes=exposure.unused_bytes,
            customer_balance=exposure.customer_balance,
            total=exposure.total,
            available=None if limit is None else limit - exposure.total,
            period_start=exposure.period_start,
            period_end=exposure.period_end,
            as_of=exposure.as_of,
        )
        return Response(CustomerExposureOutputSerializer(body).data)
