"""Reseller endpoints that cut access upstream: suspend and reinstate a customer, close a
sub-account (`usage.services.suspension`). They live in usage, not accounts, because each
records upstream writes (`usage.services.access`); accounts never imports usage.

Routes (usage/api/urls.py): `customers/{id}/suspend/`, `customers/{id}/reinstate/`, and
`sub-accounts/{id}/close/` (moved here from accounts with its path, url name, request and
response). Texts for the schema sit inline.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.base import ResellerScopedView
from accounts.api.openapi import CLOSED_SUB_ACCOUNT, CUSTOMER
from accounts.api.serializers import (
    CustomerOutputSerializer,
    StrictInputSerializer,
    SubAccountCloseInputSerializer,
    SubAccountDetailOutputSerializer,
)
from accounts.api.views import _sub_account_conflicts, _SubAccountView
from accounts.models import Customer
from accounts.sub_accounts import reseller_today
from core.openapi import ApiErrorSerializer
from core.openapi import example as _ex
from usage.api.views import api_actor
from usage.services.suspension import (
    REASON_MAX_LENGTH,
    customer_reinstate,
    customer_suspend,
    sub_account_close_and_cut_off,
)


class CustomerSuspendInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=REASON_MAX_LENGTH,
        help_text="Why (required, at most 500 characters): kept on the customer as "
        "`suspension_reason` and sent in the `customer.suspended` webhook.",
    )


class CustomerReinstateInputSerializer(StrictInputSerializer):
    """No fields: the body is `{}` (or empty)."""


_SUSPENDED = {
    **CUSTOMER,
    "status": "suspended",
    "suspended_at": "2026-11-20T09:15:00Z",
    "suspension_reason": "Invoice ACME-2026-0042 unpaid",
    "suspended_by": "staff",
}
_REINSTATED = {
    **CUSTOMER,
    "status": "active",
    "suspended_at": None,
    "suspension_reason": "",
    "suspended_by": "",
}
_404 = OpenApiResponse(ApiErrorSerializer, description="Not your customer (or none): `not_found`.")


class _CustomerActionView(ResellerScopedView):
    model = Customer
    serializer_class = CustomerOutputSerializer
    pagination_class = None

    def customer(self, pk: int) -> Customer:
        queryset = Customer.objects.for_reseller(self.reseller).select_related("reseller")
        return get_object_or_404(queryset, pk=pk)


@extend_schema(tags=["reseller: customers"])
class CustomerSuspendView(_CustomerActionView):
    @extend_schema(
        operation_id="reseller_customers_suspend",
        summary="Suspend a customer",
        description="Suspends the customer and cuts its IPFoxy sub-accounts off upstream at "
        "once: for each one not closed, Flowbill records an access change that rotates its "
        "proxy password to a throwaway one and clears its IP whitelist (IPFoxy lets a "
        "whitelisted IP in without a password; the whitelist is kept and restored on "
        "reinstatement). The changes are sent right after the answer and resent until the "
        "upstream confirms them. No traffic is allocated while it is suspended (pending "
        "allocations fail with `customer_suspended`). Its usage is still synced and "
        "billed, and its customer API keys keep read access (it can still see and pay what "
        "it owes). BytesFlows sub-accounts have no write API and are left as they are. "
        "Emits `customer.suspended`. A `reason` is required (400 `validation_error` naming "
        "`reason`, also above 500 characters); a customer suspended already is a 409 "
        "`customer_already_suspended`.",
        request=CustomerSuspendInputSerializer,
        responses={
            200: CustomerOutputSerializer,
            400: OpenApiResponse(
                ApiErrorSerializer, description="`validation_error`: `reason` missing or long."
            ),
            404: _404,
            409: OpenApiResponse(ApiErrorSerializer, description="`customer_already_suspended`."),
        },
        examples=[
            _ex("Suspend", {"reason": "Invoice ACME-2026-0042 unpaid"}, request=True),
            _ex("Suspended", _SUSPENDED),
        ],
    )
    def post(self, request, pk: int):
        customer = self.customer(pk)
        data = self.parse(CustomerSuspendInputSerializer)
        suspended = customer_suspend(
            customer=customer,
            reason=data.get("reason", ""),
            by=Customer.SuspendedBy.STAFF,
            actor=api_actor(request, self.tenant),
            now=timezone.now(),
        )
        return Response(CustomerOutputSerializer(suspended).data)


@extend_schema(tags=["reseller: customers"])
class CustomerReinstateView(_CustomerActionView):
    @extend_schema(
        operation_id="reseller_customers_reinstate",
        summary="Reinstate a customer",
        description="Ends the suspension (whoever suspended it, staff or the automatic "
        "overdue rule): `status` becomes `active` and the suspension fields are cleared. "
        "Each IPFoxy sub-account that was cut off gets a NEW proxy password (shown to the "
        "customer in its `sub-accounts/` once the upstream confirms it) and its IP "
        "whitelist back; allocations resume. Emits `customer.reinstated`. A customer that is "
        "not suspended is a 409 `customer_not_suspended`.",
        request=CustomerReinstateInputSerializer,
        responses={
            200: CustomerOutputSerializer,
            404: _404,
            409: OpenApiResponse(ApiErrorSerializer, description="`customer_not_suspended`."),
        },
        examples=[_ex("Reinstate", {}, request=True), _ex("Reinstated", _REINSTATED)],
    )
    def post(self, request, pk: int):
        customer = self.customer(pk)
        self.parse(CustomerReinstateInputSerializer)
        reinstated = customer_reinstate(
            customer=customer,
            actor=api_actor(request, self.tenant),
            now=timezone.now(),
            by=Customer.SuspendedBy.STAFF,
        )
        return Response(CustomerOutputSerializer(reinstated).data)


@extend_schema(tags=["reseller: sub-accounts"])
class SubAccountCloseView(_SubAccountView):
    @extend_schema(
        operation_id="reseller_sub_accounts_close",
        summary="Close a sub-account",
        description="Closes it with `on` (YYYY-MM-DD, default today in your timezone) as its "
        "last day: its usage through that day is billed to the customer holding it, it is "
        "synced until that day ends and never after, and its `upstream_id` is free for a new "
        "sub-account from the next day (the closed one keeps it for the records). An IPFoxy "
        "sub-account is also cut off upstream at once (its proxy password rotated to a "
        "throwaway one, its IP whitelist cleared), exactly like a suspended customer's. A "
        "last day before the customer's period starts is a 409 "
        "`sub_account_day_before_start`; one inside a period already invoiced for the "
        "customer (whose billed later days would vanish) a 409 `sub_account_period_invoiced`; "
        "closing twice a 409 `sub_account_closed`.",
        request=SubAccountCloseInputSerializer,
        responses={
            200: SubAccountDetailOutputSerializer,
            409: _sub_account_conflicts(
                "sub_account_closed", "sub_account_day_before_start", "sub_account_period_invoiced"
            ),
        },
        examples=[
            _ex("Close", {"on": "2026-10-20"}, request=True),
            _ex("Closed", CLOSED_SUB_ACCOUNT),
        ],
    )
    def post(self, request, pk: int):
        sub_account = self.get_object()
        data = self.parse(SubAccountCloseInputSerializer)
        now = timezone.now()
        on_day = data.get("on") or reseller_today(reseller=self.reseller, now=now)
        closed = sub_account_close_and_cut_off(
            sub_account=sub_account, on_day=on_day, actor=api_actor(request, self.tenant), now=now
        )
        return self.respond(closed)
