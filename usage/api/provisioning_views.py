"""Sub-account endpoints usage serves (they call usage services): provisioning a sub-account
upstream and polling provisionings (reseller scope), the reseller's sub-account list and
manual add (`sub-accounts/`, an IPFoxy id checked against the upstream), and the customer's
sub-accounts with their proxy login and remaining traffic.

Provisioning answers within the request when it can: the row is committed, then sent at
once (`send_now`); 201 with the sub-account when the upstream created it, 202 with the
provisioning when the outcome is not known yet (rate limited, timed out: the sweep finishes
it, poll `provisionings/{id}/`), a 409/502 naming the upstream's refusal when it refused.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.response import Response

from accounts.api.base import CustomerScopedView, ResellerScopedView
from accounts.api.serializers import (
    CustomerSubAccountQuerySerializer,
    SubAccountCreateInputSerializer,
    SubAccountOutputSerializer,
    SubAccountQuerySerializer,
)
from accounts.models import Customer, SubAccount, UpstreamAccount
from core.errors import ApplicationError
from core.openapi import ApiErrorSerializer
from core.query import StrictQueryMixin, query_error_responses
from usage.api.provisioning_serializers import (
    CustomerSubAccountOutputSerializer,
    ProvisionedSubAccountOutputSerializer,
    ProvisioningOutputSerializer,
    ProvisioningQuerySerializer,
    ProvisionInputSerializer,
)
from usage.api.views import api_actor
from usage.models import Provisioning
from usage.services.provisioning import (
    provisioning_initial_allocation,
    sub_account_add,
    sub_account_provision,
)

_PROVISION_409 = (
    "`provider_has_no_reseller_api` (BytesFlows publishes no write API), "
    "`upstream_account_inactive`, `upstream_credentials_missing`, `customer_suspended`, "
    "`upstream_insufficient_balance` (the upstream refused: top up the IPFoxy balance)."
)


@extend_schema(tags=["reseller: sub-accounts"])
class SubAccountProvisionView(ResellerScopedView):
    model = Provisioning
    serializer_class = ProvisionedSubAccountOutputSerializer
    pagination_class = None

    @extend_schema(
        operation_id="reseller_sub_accounts_provision",
        request=ProvisionInputSerializer,
        responses={
            201: ProvisionedSubAccountOutputSerializer,
            202: ProvisioningOutputSerializer,
            400: OpenApiResponse(
                ApiErrorSerializer,
                description="`invalid_amount`: `initial_bytes` is not 0 or a whole number of "
                "the upstream's MB; `validation_error`: another field (`extra.fields`; a "
                "customer or upstream account not yours reads like a missing one).",
            ),
            409: OpenApiResponse(ApiErrorSerializer, description=_PROVISION_409),
            502: OpenApiResponse(
                ApiErrorSerializer,
                description="The upstream refused it and nothing was created: `code` is its "
                "error (`upstream_auth_failed`, `upstream_bad_parameter`, ...); "
                "`extra.provisioning` is the failed record.",
            ),
        },
    )
    def post(self, request):
        data = self.parse(ProvisionInputSerializer)
        row = sub_account_provision(
            **data, actor=api_actor(request, self.tenant), now=timezone.now(), send_now=True
        )
        if row.status == Provisioning.Status.CONFIRMED:
            sub_account = SubAccount.objects.select_related("upstream_account").get(
                provisioning=row
            )
            context = {
                "provisioning": row,
                "initial_allocation": provisioning_initial_allocation(provisioning=row),
            }
            body = ProvisionedSubAccountOutputSerializer(sub_account, context=context).data
            return Response(body, status=201)
        if row.status == Provisioning.Status.FAILED:
            raise ApplicationError(
                row.error_code or "upstream_error",
                f"The upstream did not create the sub-account: {row.error}",
                extra={"provisioning": row.pk},
            )
        return Response(ProvisioningOutputSerializer(row).data, status=202)


@extend_schema(tags=["reseller: sub-accounts"])
class ProvisioningListView(StrictQueryMixin, mixins.ListModelMixin, ResellerScopedView):
    model = Provisioning
    serializer_class = ProvisioningOutputSerializer
    query_serializer = ProvisioningQuerySerializer
    owned_filters = {"customer": Customer}
    equal_filters = {"status": "status"}

    @extend_schema(
        operation_id="reseller_sub_account_provisionings_list",
        parameters=[ProvisioningQuerySerializer],
        responses=query_error_responses(**{"200": ProvisioningOutputSerializer(many=True)}),
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())


@extend_schema(tags=["reseller: sub-accounts"])
class ProvisioningDetailView(ResellerScopedView):
    model = Provisioning
    serializer_class = ProvisioningOutputSerializer

    @extend_schema(operation_id="reseller_sub_account_provisionings_retrieve")
    def get(self, request, pk: int):
        return Response(ProvisioningOutputSerializer(self.get_object()).data)


@extend_schema(tags=["reseller: sub-accounts"])
class SubAccountListCreateView(StrictQueryMixin, mixins.ListModelMixin, ResellerScopedView):
    model = SubAccount
    serializer_class = SubAccountOutputSerializer
    query_serializer = SubAccountQuerySerializer
    owned_filters = {"customer": Customer, "upstream_account": UpstreamAccount}
    equal_filters = {"status": "status"}

    def scope_queryset(self, queryset):
        return queryset.select_related("upstream_account")

    @extend_schema(
        operation_id="reseller_sub_accounts_list",
        parameters=[SubAccountQuerySerializer],
        responses=query_error_responses(**{"200": SubAccountOutputSerializer(many=True)}),
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())

    @extend_schema(
        operation_id="reseller_sub_accounts_create",
        request=SubAccountCreateInputSerializer,
        responses={
            201: SubAccountOutputSerializer,
            400: OpenApiResponse(
                ApiErrorSerializer,
                description="`upstream_sub_account_unknown`: IPFoxy does not list this "
                "`upstream_id`; `validation_error`: a field (`extra.fields`).",
            ),
            502: OpenApiResponse(
                ApiErrorSerializer,
                description="`upstream_auth_failed`: IPFoxy refused the stored credentials, "
                "so the id could not be checked.",
            ),
            503: OpenApiResponse(
                ApiErrorSerializer,
                description="`upstream_unavailable`, `upstream_rate_limited`, ...: IPFoxy "
                "could not be asked whether it has the id; nothing was attached, try again.",
            ),
        },
    )
    def post(self, request):
        data = self.parse(SubAccountCreateInputSerializer)
        sub_account = sub_account_add(**data)
        return Response(SubAccountOutputSerializer(sub_account).data, status=201)


@extend_schema(tags=["customer"])
class MySubAccountListView(StrictQueryMixin, mixins.ListModelMixin, CustomerScopedView):
    model = SubAccount
    serializer_class = CustomerSubAccountOutputSerializer
    query_serializer = CustomerSubAccountQuerySerializer
    equal_filters = {"status": "status"}

    def scope_queryset(self, queryset):
        return queryset.select_related("upstream_account", "traffic")

    @extend_schema(
        operation_id="sub_accounts_list",
        parameters=[CustomerSubAccountQuerySerializer],
        responses=query_error_responses(**{"200": CustomerSubAccountOutputSerializer(many=True)}),
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())
