"""Usage endpoints: the usage series (customer and reseller scope), sync on request, the
sync runs (reseller scope), usage alert rules (reseller scope, CRUD), and per sub-account
(reseller scope) its allocations (the ledger) and its traffic as the upstream counts it.

The series is not paginated: its length is bounded by the range limits (at most 400 days,
31 days of hours or 120 months), and a chart wants it whole. Query parameters are parsed
strictly: an unknown or repeated parameter is a 400 naming it. A `sub_account` or `customer`
that is not the caller's answers 404, exactly like a missing one.
"""

from __future__ import annotations

from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api.base import CustomerScopedView, ResellerScopedView
from accounts.models import Customer, SubAccount, UpstreamAccount
from core.openapi import ApiErrorSerializer
from core.query import StrictQueryMixin, query_error_responses
from usage.api.serializers import (
    UNITS,
    AllocationCreateInputSerializer,
    AllocationOutputSerializer,
    AllocationQuerySerializer,
    ResellerUsageQuerySerializer,
    SubAccountTrafficOutputSerializer,
    SyncRequestInputSerializer,
    SyncRequestOutputSerializer,
    SyncRunOutputSerializer,
    SyncRunQuerySerializer,
    UsageAlertRuleCreateInputSerializer,
    UsageAlertRuleOutputSerializer,
    UsageAlertRuleQuerySerializer,
    UsageAlertRuleUpdateInputSerializer,
    UsageQuerySerializer,
    UsageSeriesOutputSerializer,
)
from usage.models import Allocation, SyncRun, UsageAlertRule
from usage.selectors import usage_series
from usage.services.alert_rules import (
    usage_alert_rule_create,
    usage_alert_rule_delete,
    usage_alert_rule_update,
)
from usage.services.allocations import allocation_create
from usage.services.requests import usage_sync_request
from usage.services.traffic import sub_account_traffic

_USAGE_ERRORS = {
    400: OpenApiResponse(
        ApiErrorSerializer,
        description="Invalid query: `extra.fields` names each parameter (unknown or repeated "
        "parameters, bad dates, `to` before `from`, a range over the limit).",
    ),
    404: OpenApiResponse(
        ApiErrorSerializer,
        description="`sub_account` (or `customer`) is not one of the caller's.",
    ),
}


def usage_gb(nbytes: int, unit_bytes: int) -> str:
    """`nbytes / unit_bytes` as a decimal string with 3 decimals, rounded half up.

    Integer arithmetic (a day series formats hundreds of these per request): the number of
    thousandths is floor((2000 * nbytes + unit) / (2 * unit)), which rounds half up.
    """
    thousandths = (2000 * nbytes + unit_bytes) // (2 * unit_bytes)
    return f"{thousandths // 1000}.{thousandths % 1000:03d}"


class _UsageSeriesMixin(StrictQueryMixin):
    query_serializer: type[UsageQuerySerializer]

    def series_response(self, *, query: dict, customer_id: int | None) -> Response:
        reseller = self.reseller
        unit_bytes = UNITS[query["unit"]]
        points = usage_series(
            reseller=reseller,
            granularity=query["granularity"],
            first_day=query["from"],
            last_day=query["to"],
            customer_id=customer_id,
            sub_account_id=query.get("sub_account"),
        )
        total = sum(point.bytes for point in points)
        # Built directly in the shape of `UsageSeriesOutputSerializer` (which documents it):
        # running hundreds of rows through DRF fields costs more than the query.
        body = {
            "timezone": reseller.timezone,
            "unit_bytes": unit_bytes,
            "granularity": query["granularity"],
            "total_bytes": total,
            "total_gb": usage_gb(total, unit_bytes),
            "results": [
                {
                    "period": point.period.isoformat(),
                    "bytes": point.bytes,
                    "gb": usage_gb(point.bytes, unit_bytes),
                }
                for point in points
            ],
        }
        return Response(body)


@extend_schema(tags=["customer"])
class MyUsageView(_UsageSeriesMixin, CustomerScopedView):
    """The key's customer's usage."""

    model = SubAccount
    serializer_class = UsageSeriesOutputSerializer
    pagination_class = None
    query_serializer = UsageQuerySerializer

    @extend_schema(
        operation_id="usage_retrieve",
        parameters=[UsageQuerySerializer],
        responses={200: UsageSeriesOutputSerializer, **_USAGE_ERRORS},
    )
    def get(self, request):
        query = self.parse_query()
        if "sub_account" in query:  # the customer's own, or 404
            get_object_or_404(self.get_queryset(), pk=query["sub_account"])
        return self.series_response(query=query, customer_id=self.customer.pk)


@extend_schema(tags=["reseller: usage"])
class ResellerUsageView(_UsageSeriesMixin, ResellerScopedView):
    """Usage of all the reseller's customers, one customer or one sub-account."""

    model = SubAccount
    serializer_class = UsageSeriesOutputSerializer
    pagination_class = None
    query_serializer = ResellerUsageQuerySerializer

    @extend_schema(
        operation_id="reseller_usage_retrieve",
        parameters=[ResellerUsageQuerySerializer],
        responses={200: UsageSeriesOutputSerializer, **_USAGE_ERRORS},
    )
    def get(self, request):
        query = self.parse_query()
        customer_id = query.get("customer")
        if customer_id is not None:
            get_object_or_404(Customer.objects.for_reseller(self.reseller), pk=customer_id)
        if "sub_account" in query:
            sub_account = get_object_or_404(self.get_queryset(), pk=query["sub_account"])
            if customer_id is not None and sub_account.customer_id != customer_id:
                raise ValidationError({"sub_account": ["Not a sub-account of `customer`."]})
        return self.series_response(query=query, customer_id=customer_id)


@extend_schema(tags=["reseller: usage"])
class ResellerSyncView(ResellerScopedView):
    """Sync on request."""

    model = UpstreamAccount
    serializer_class = SyncRequestOutputSerializer
    pagination_class = None

    @extend_schema(
        operation_id="reseller_sync_create",
        request=SyncRequestInputSerializer,
        responses={
            202: SyncRequestOutputSerializer,
            409: OpenApiResponse(
                ApiErrorSerializer,
                description="`upstream_account_inactive`: the upstream account is switched off; "
                "activate it before syncing.",
            ),
        },
    )
    def post(self, request):
        data = self.parse(SyncRequestInputSerializer)
        result = usage_sync_request(
            reseller=self.reseller,
            upstream_account=data.get("upstream_account"),
            now=timezone.now(),
        )
        body = {
            "upstream_account_ids": result.upstream_account_ids,
            "window_start": result.window_start,
            "window_end": result.window_end,
            "queued": len(result.queued),
            "tasks": result.queued,
            "sync_runs": [queued.sync_run_id for queued in result.queued],
        }
        return Response(SyncRequestOutputSerializer(body).data, status=202)


@extend_schema(tags=["reseller: usage"])
class SyncRunListView(StrictQueryMixin, mixins.ListModelMixin, ResellerScopedView):
    model = SyncRun
    serializer_class = SyncRunOutputSerializer
    query_serializer = SyncRunQuerySerializer
    owned_filters = {"upstream_account": UpstreamAccount, "sub_account": SubAccount}
    equal_filters = {"status": "status", "kind": "kind"}

    def get_queryset(self):
        # Newest first: runs still queued (not started), then by start, latest first.
        return super().get_queryset().order_by(*SyncRun._meta.ordering)

    @extend_schema(
        operation_id="reseller_sync_runs_list",
        parameters=[SyncRunQuerySerializer],
        responses=query_error_responses(**{"200": SyncRunOutputSerializer(many=True)}),
    )
    def get(self, request):
        query = self.parse_query()
        queryset = self.get_queryset()
        if "since" in query:
            since = query["since"]
            queryset = queryset.filter(
                Q(started_at__gte=since) | Q(started_at__isnull=True, queued_at__gte=since)
            )
        return self.filtered_list(query, queryset)


@extend_schema(tags=["reseller: usage"])
class SyncRunDetailView(ResellerScopedView):
    model = SyncRun
    serializer_class = SyncRunOutputSerializer

    @extend_schema(operation_id="reseller_sync_runs_retrieve")
    def get(self, request, pk: int):
        return Response(SyncRunOutputSerializer(self.get_object()).data)


@extend_schema(tags=["reseller: usage alert rules"])
class UsageAlertRuleListCreateView(StrictQueryMixin, mixins.ListModelMixin, ResellerScopedView):
    model = UsageAlertRule
    serializer_class = UsageAlertRuleOutputSerializer
    query_serializer = UsageAlertRuleQuerySerializer
    owned_filters = {"customer": Customer}
    equal_filters = {"kind": "kind", "is_active": "is_active"}

    @extend_schema(
        operation_id="reseller_usage_alert_rules_list",
        parameters=[UsageAlertRuleQuerySerializer],
        responses=query_error_responses(**{"200": UsageAlertRuleOutputSerializer(many=True)}),
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())

    @extend_schema(
        operation_id="reseller_usage_alert_rules_create",
        request=UsageAlertRuleCreateInputSerializer,
        responses={201: UsageAlertRuleOutputSerializer},
    )
    def post(self, request):
        data = self.parse(UsageAlertRuleCreateInputSerializer)
        rule = usage_alert_rule_create(reseller=self.reseller, **data)
        return Response(UsageAlertRuleOutputSerializer(rule).data, status=201)


@extend_schema(tags=["reseller: usage alert rules"])
class UsageAlertRuleDetailView(ResellerScopedView):
    model = UsageAlertRule
    serializer_class = UsageAlertRuleOutputSerializer

    @extend_schema(operation_id="reseller_usage_alert_rules_retrieve")
    def get(self, request, pk: int):
        return Response(UsageAlertRuleOutputSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="reseller_usage_alert_rules_update",
        request=UsageAlertRuleUpdateInputSerializer,
        responses={200: UsageAlertRuleOutputSerializer},
    )
    def patch(self, request, pk: int):
        rule = self.get_object()
        data = self.parse(UsageAlertRuleUpdateInputSerializer, partial=True)
        rule = usage_alert_rule_update(rule=rule, **data)
        return Response(UsageAlertRuleOutputSerializer(rule).data)

    @extend_schema(
        operation_id="reseller_usage_alert_rules_delete",
        responses={204: None},
    )
    def delete(self, request, pk: int):
        usage_alert_rule_delete(rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- per sub-account: allocations and traffic -----------------------------------------------

_SUB_ACCOUNT_404 = OpenApiResponse(
    ApiErrorSerializer, description="The sub-account is not one of yours (`not_found`)."
)
_STATE_409 = (
    "`provider_has_no_reseller_api` (a BytesFlows sub-account: monitor-only), "
    "`upstream_account_inactive`, `upstream_id_invalid` (not an account name IPFoxy accepts)"
)


def api_actor(request, tenant) -> str:
    """Who is asking, for a ledger row: `key <prefix>` or `login <username>`."""
    if tenant.api_key is not None:
        return f"key {tenant.api_key.prefix}"
    return f"login {request.user.get_username()}"


class _SubAccountChildMixin:
    """Views under `sub-accounts/{id}/`: the sub-account is the caller's, or 404."""

    def sub_account(self, pk: int) -> SubAccount:
        queryset = SubAccount.objects.for_reseller(self.reseller)
        return get_object_or_404(queryset.select_related("customer", "upstream_account"), pk=pk)


@extend_schema(tags=["reseller: sub-accounts"])
class SubAccountAllocationListCreateView(
    _SubAccountChildMixin, StrictQueryMixin, mixins.ListModelMixin, ResellerScopedView
):
    model = Allocation
    serializer_class = AllocationOutputSerializer
    query_serializer = AllocationQuerySerializer
    equal_filters = {"status": "status", "reason": "reason"}

    @extend_schema(
        operation_id="reseller_sub_account_allocations_list",
        parameters=[AllocationQuerySerializer],
        responses=query_error_responses(**{"200": AllocationOutputSerializer(many=True)}),
    )
    def get(self, request, pk: int):
        query = self.parse_query()
        sub_account = self.sub_account(pk)
        queryset = self.get_queryset().filter(sub_account=sub_account)
        return self.filtered_list(query, queryset.order_by("-created_at", "-pk"))

    @extend_schema(
        operation_id="reseller_sub_account_allocations_create",
        request=AllocationCreateInputSerializer,
        responses={
            201: AllocationOutputSerializer,
            400: OpenApiResponse(
                ApiErrorSerializer,
                description="`invalid_amount`: `bytes` is not a positive whole number of "
                "the upstream's MB; `validation_error`: another field (`extra.fields`).",
            ),
            404: _SUB_ACCOUNT_404,
            409: OpenApiResponse(
                ApiErrorSerializer,
                description=f"{_STATE_409}, `sub_account_not_active`, `customer_suspended`.",
            ),
        },
    )
    def post(self, request, pk: int):
        sub_account = self.sub_account(pk)
        data = self.parse(AllocationCreateInputSerializer)
        allocation = allocation_create(
            sub_account=sub_account,
            **data,
            actor=api_actor(request, self.tenant),
            now=timezone.now(),
        )
        allocation.refresh_from_db()  # with no broker its send already ran at the commit
        return Response(AllocationOutputSerializer(allocation).data, status=201)


@extend_schema(tags=["reseller: sub-accounts"])
class SubAccountTrafficView(_SubAccountChildMixin, ResellerScopedView):
    model = SubAccount
    serializer_class = SubAccountTrafficOutputSerializer
    pagination_class = None

    @extend_schema(
        operation_id="reseller_sub_account_traffic_retrieve",
        responses={
            200: SubAccountTrafficOutputSerializer,
            404: _SUB_ACCOUNT_404,
            409: OpenApiResponse(ApiErrorSerializer, description=f"{_STATE_409}."),
            502: OpenApiResponse(
                ApiErrorSerializer,
                description="The upstream failed; `code` is its error "
                "(`upstream_auth_failed`, `upstream_bad_response`, ...), `extra.retryable` "
                "says whether trying again later may help.",
            ),
            503: OpenApiResponse(
                ApiErrorSerializer,
                description="The upstream could not be reached or rate-limited the read "
                "(`upstream_unavailable`, `upstream_rate_limited`): try again later.",
            ),
        },
    )
    def get(self, request, pk: int):
        traffic = sub_account_traffic(sub_account=self.sub_account(pk), now=timezone.now())
        return Response(SubAccountTrafficOutputSerializer(traffic).data)
