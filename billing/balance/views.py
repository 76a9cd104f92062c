"""Balance endpoints: a customer's balance and ledger (reseller and customer scope), manual
adjustments and the automatic top-up rule (reseller scope). Views parse, call one service or
selector, and render; another reseller's customer is a 404."""

from __future__ import annotations

from types import SimpleNamespace

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts.api.base import CustomerScopedView, ResellerScopedView
from accounts.models import Customer
from billing.balance.selectors import balance_entries_for_customer, customer_balances
from billing.balance.serializers import (
    AutoTopUpInputSerializer,
    BalanceAdjustmentInputSerializer,
    BalanceEntryOutputSerializer,
    CustomerBalanceOutputSerializer,
)
from billing.balance.services import balance_adjust
from billing.topups.services import balance_auto_top_up_set
from core.openapi import ApiErrorSerializer

ENTRIES_SHOWN = 100
ENTRY = {
    "id": 7,
    "kind": "credit_note",
    "currency": "USD",
    "amount": "60.00",
    "invoice": 12,
    "invoice_number": "DEMO-2026-00012",
    "credit_note": 3,
    "credit_note_number": "DEMO-CN-2026-00003",
    "payment": None,
    "refund": None,
    "top_up": None,
    "reason": "",
    "created_by": "key k7x2m9qa",
    "created_at": "2026-11-20T09:30:00Z",
}
BALANCE = {
    "customer": 42,
    "balances": [
        {
            "currency": "USD",
            "amount": "60.00",
            "auto_top_up_threshold": None,
            "auto_top_up_amount": None,
        }
    ],
    "entries": [ENTRY],
}
ADJUSTMENT = {**ENTRY, "kind": "adjustment", "amount": "-20.00", "invoice": None,
              "invoice_number": None, "credit_note": None, "credit_note_number": None,
              "reason": "Refunded by wire WIRE-991"}  # fmt: skip
_404 = OpenApiResponse(ApiErrorSerializer, description="Not one of your customers.")


def balance_body(customer: Customer) -> dict:
    body = SimpleNamespace(
        customer=customer.pk,
        balances=customer_balances(customer=customer),
        entries=list(balance_entries_for_customer(customer=customer)[:ENTRIES_SHOWN]),
    )
    return CustomerBalanceOutputSerializer(body).data


class _ResellerCustomerMixin:
    def customer_of_reseller(self, pk: int) -> Customer:
        return get_object_or_404(
            Customer.objects.for_reseller(self.reseller).select_related("reseller"), pk=pk
        )


@extend_schema(tags=["reseller: customers"])
class ResellerCustomerBalanceView(_ResellerCustomerMixin, ResellerScopedView):
    model = Customer
    serializer_class = CustomerBalanceOutputSerializer

    @extend_schema(
        operation_id="reseller_customers_balance",
        summary="A customer's balance and ledger",
        description="The customer's balance per currency (credit notes on settled invoices, "
        "overpayments, top-ups and adjustments in; balance applied to invoices out) and the "
        "latest 100 ledger entries, each naming its document. Not your customer: 404.",
        responses={200: CustomerBalanceOutputSerializer, 404: _404},
        examples=[OpenApiExample("Balance", response_only=True, value=BALANCE)],
    )
    def get(self, request, pk: int):
        return Response(balance_body(self.customer_of_reseller(pk)))


@extend_schema(tags=["reseller: customers"])
class ResellerCustomerBalanceAdjustmentView(_ResellerCustomerMixin, ResellerScopedView):
    model = Customer
    serializer_class = BalanceEntryOutputSerializer

    @extend_schema(
        operation_id="reseller_customers_balance_adjust",
        summary="Adjust a customer's balance",
        description="A manual entry with its reason: a positive amount adds, a negative one "
        "takes away (a credit given back by wire, a goodwill credit). Never below 0 (409 "
        "`balance_insufficient`, `extra.balance`); no reason: 400 `reason_required`. Sends "
        "`customer.balance_changed`.",
        request=BalanceAdjustmentInputSerializer,
        responses={
            201: BalanceEntryOutputSerializer,
            400: OpenApiResponse(
                ApiErrorSerializer, description="`invalid_amount`, `reason_required`."
            ),
            404: _404,
            409: OpenApiResponse(ApiErrorSerializer, description="`balance_insufficient`."),
        },
        examples=[
            OpenApiExample(
                "Take back",
                request_only=True,
                value={"amount": "-20.00", "reason": "Refunded by wire WIRE-991"},
            ),
            OpenApiExample("Recorded", response_only=True, status_codes=["201"], value=ADJUSTMENT),
        ],
    )
    def post(self, request, pk: int):
        customer = self.customer_of_reseller(pk)
        data = self.parse(BalanceAdjustmentInputSerializer)
        entry = balance_adjust(customer=customer, now=timezone.now(), actor=self.actor, **data)
        return Response(BalanceEntryOutputSerializer(entry).data, status=201)


@extend_schema(tags=["reseller: customers"])
class ResellerCustomerAutoTopUpView(_ResellerCustomerMixin, ResellerScopedView):
    model = Customer
    serializer_class = CustomerBalanceOutputSerializer

    @extend_schema(
        operation_id="reseller_customers_auto_top_up",
        summary="Set a customer's automatic top-up rule",
        description="`threshold` and `amount` (both, or both null to remove the rule): "
        "whenever the balance falls below the threshold, a top-up invoice of the amount is "
        "issued, at most one open (unpaid) at a time. Checked now and after every change that "
        "lowers the balance. Answers the balance.",
        request=AutoTopUpInputSerializer,
        responses={
            200: CustomerBalanceOutputSerializer,
            400: OpenApiResponse(
                ApiErrorSerializer, description="`auto_top_up_rule_invalid`, `invalid_amount`."
            ),
            404: _404,
        },
        examples=[
            OpenApiExample(
                "Rule", request_only=True, value={"threshold": "20.00", "amount": "100.00"}
            ),
            OpenApiExample("Balance", response_only=True, value=BALANCE),
        ],
    )
    def post(self, request, pk: int):
        customer = self.customer_of_reseller(pk)
        data = self.parse(AutoTopUpInputSerializer)
        balance_auto_top_up_set(customer=customer, now=timezone.now(), **data)
        return Response(balance_body(customer))


@extend_schema(tags=["customer"])
class BalanceView(CustomerScopedView):
    model = Customer
    customer_path = None
    serializer_class = CustomerBalanceOutputSerializer

    @extend_schema(
        operation_id="balance_retrieve",
        summary="My balance and its ledger",
        description="The customer's balance per currency and its latest 100 ledger entries: "
        "credit notes on settled invoices, overpayments and top-ups add to it; the balance "
        "applied to an invoice (after tax, shown as `balance_applied` on the invoice) takes "
        "from it, and a voided invoice gives it back.",
        responses={200: CustomerBalanceOutputSerializer},
        examples=[OpenApiExample("Balance", response_only=True, value=BALANCE)],
    )
    def get(self, request):
        return Response(balance_body(self.customer))
