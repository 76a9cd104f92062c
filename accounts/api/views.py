"""Accounts endpoints: reseller scope (`/api/v1/reseller/...`) and customer scope.

Each view parses with an input serializer, calls one service or scoped queryset, and
renders with an output serializer. Updates are `PATCH` (partial). Every lookup goes through
the tenancy base, so another reseller's id answers 404 exactly like a missing one.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.api.base import CustomerScopedView, ResellerScopedView
from accounts.api.serializers import (
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyOutputSerializer,
    ApiKeyQuerySerializer,
    ApiKeyRevokedOutputSerializer,
    CustomerCreateInputSerializer,
    CustomerOutputSerializer,
    CustomerQuerySerializer,
    CustomerUpdateInputSerializer,
    MeOutputSerializer,
    ResellerLogoInputSerializer,
    ResellerSettingsOutputSerializer,
    ResellerSettingsUpdateInputSerializer,
    SubAccountDetailOutputSerializer,
    SubAccountMoveInputSerializer,
    SubAccountUpdateInputSerializer,
    UpstreamAccountCreateInputSerializer,
    UpstreamAccountOutputSerializer,
    UpstreamAccountQuerySerializer,
    UpstreamAccountUpdateInputSerializer,
)
from accounts.api_keys import api_key_create, api_key_revoke
from accounts.models import ApiKey, Customer, Reseller, SubAccount, UpstreamAccount
from accounts.sub_accounts import (
    sub_account_delete,
    sub_account_move,
)
from core.errors import error_body
from core.openapi import ApiErrorSerializer
from core.query import StrictQueryMixin, query_error_responses

# --- reseller scope: upstream accounts ------------------------------------------------------


@extend_schema(tags=["reseller: upstream accounts"])
class UpstreamAccountListCreateView(StrictQueryMixin, mixins.ListModelMixin, ResellerScopedView):
    model = UpstreamAccount
    serializer_class = UpstreamAccountOutputSerializer
    query_serializer = UpstreamAccountQuerySerializer
    equal_filters = {"provider": "provider", "is_active": "is_active"}

    @extend_schema(
        operation_id="reseller_upstream_accounts_list",
        parameters=[UpstreamAccountQuerySerializer],
        responses=query_error_responses(**{"200": UpstreamAccountOutputSerializer(many=True)}),
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())

    @extend_schema(
        operation_id="reseller_upstream_accounts_create",
        request=UpstreamAccountCreateInputSerializer,
        responses={201: UpstreamAccountOutputSerializer},
    )
    def post(self, request):
        data = self.parse(UpstreamAccountCreateInputSerializer)
        account = services.upstream_account_create(reseller=self.reseller, **data)
        return Response(UpstreamAccountOutputSerializer(account).data, status=201)


@extend_schema(tags=["reseller: upstream accounts"])
class UpstreamAccountDetailView(ResellerScopedView):
    model = UpstreamAccount
    serializer_class = UpstreamAccountOutputSerializer

    @extend_schema(operation_id="reseller_upstream_accounts_retrieve")
    def get(self, request, pk: int):
        return Response(UpstreamAccountOutputSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="reseller_upstream_accounts_update",
        request=UpstreamAccountUpdateInputSerializer,
        responses={200: UpstreamAccountOutputSerializer},
    )
    def patch(self, request, pk: int):
        account = self.get_object()
        data = self.parse(
            UpstreamAccountUpdateInputSerializer, partial=True, upstream_account=account
        )
        account = services.upstream_account_update(upstream_account=account, **data)
        return Response(UpstreamAccountOutputSerializer(account).data)


# --- reseller scope: customers --------------------------------------------------------------


@extend_schema(tags=["reseller: customers"])
class CustomerListCreateView(StrictQueryMixin, mixins.ListModelMixin, ResellerScopedView):
    model = Customer
    serializer_class = CustomerOutputSerializer
    query_serializer = CustomerQuerySerializer
    equal_filters = {"status": "status"}

    @extend_schema(
        operation_id="reseller_customers_list",
        parameters=[CustomerQuerySerializer],
        responses=query_error_responses(**{"200": CustomerOutputSerializer(many=True)}),
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())

    @extend_schema(
        operation_id="reseller_customers_create",
        request=CustomerCreateInputSerializer,
        responses={201: CustomerOutputSerializer},
    )
    def post(self, request):
        data = self.parse(CustomerCreateInputSerializer)
        customer = services.customer_create(reseller=self.reseller, **data)
        return Response(CustomerOutputSerializer(customer).data, status=201)


@extend_schema(tags=["reseller: customers"])
class CustomerDetailView(ResellerScopedView):
    model = Customer
    serializer_class = CustomerOutputSerializer

    @extend_schema(operation_id="reseller_customers_retrieve")
    def get(self, request, pk: int):
        return Response(CustomerOutputSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="reseller_customers_update",
        request=CustomerUpdateInputSerializer,
        responses={
            200: CustomerOutputSerializer,
            409: OpenApiResponse(
                ApiErrorSerializer,
                description="`customer_currency_locked`: the customer has subscriptions or "
                "invoices, so its currency cannot change.",
            ),
        },
    )
    def patch(self, request, pk: int):
        customer = self.get_object()
        data = self.parse(CustomerUpdateInputSerializer, partial=True)
        customer = services.customer_update(customer=customer, **data)
        return Response(CustomerOutputSerializer(customer).data)


# --- reseller scope: a customer's API keys --------------------------------------------------


def _key_creator(view: ResellerScopedView) -> dict:
    """Who creates a key in this request: the API key it came with, else the staff login."""
    if view.tenant.api_key is not None:
        return {"created_by_key": view.tenant.api_key}
    return {"created_by_user": view.request.user}


class _CustomerApiKeysBase(ResellerScopedView):
    """Keys of one customer of the caller; the customer is resolved (or 404) first."""

    model = ApiKey
    serializer_class = ApiKeyOutputSerializer

    def get_customer(self) -> Customer:
        if not hasattr(self, "_customer"):
            customers = Customer.objects.for_reseller(self.reseller)
            self._customer = get_object_or_404(customers, pk=self.kwargs["customer_pk"])
        return self._customer

    def scope_queryset(self, queryset):
        return queryset.filter(customer=self.get_customer())


@extend_schema(tags=["reseller: customer API keys"])
class CustomerApiKeyListCreateView(StrictQueryMixin, mixins.ListModelMixin, _CustomerApiKeysBase):
    query_serializer = ApiKeyQuerySerializer
    equal_filters = {"revoked": "revoked_at__isnull"}

    @extend_schema(
        operation_id="reseller_customer_api_keys_list",
        parameters=[ApiKeyQuerySerializer],
        responses=query_error_responses(**{"200": ApiKeyOutputSerializer(many=True)}),
    )
    def get(self, request, customer_pk: int):
        return self.filtered_list(_revoked_query(self.parse_query()), self.get_queryset())

    @extend_schema(
        operation_id="reseller_customer_api_keys_create",
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedOutputSerializer},
    )
    def post(self, request, customer_pk: int):
        customer = self.get_customer()
        data = self.parse(ApiKeyCreateInputSerializer)
        api_key, raw_key = api_key_create(
            reseller=self.reseller, customer=customer, **data, **_key_creator(self)
        )
        body = ApiKeyCreatedOutputSerializer(api_key, context={"raw_key": raw_key}).data
        return Response(body, status=201)


@extend_schema(tags=["reseller: customer API keys"])
class CustomerApiKeyDetailView(_CustomerApiKeysBase):
    lookup_url_kwarg = "key_pk"

    @extend_schema(operation_id="reseller_customer_api_keys_retrieve")
    def get(self, request, customer_pk: int, key_pk: int):
        return Response(ApiKeyOutputSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="reseller_customer_api_keys_revoke",
        responses={204: None},
        description="Revokes the key at once and for good (it stays listed with "
        "`revoked_at`). Revoking a revoked key is a no-op.",
    )
    def delete(self, request, customer_pk: int, key_pk: int):
        api_key_revoke(api_key=self.get_object(), now=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _revoked_query(query: dict) -> dict:
    """`revoked=true` is `revoked_at IS NOT NULL`: the filter's lookup is `__isnull`."""
    if "revoked" in query:
        query["revoked"] = not query["revoked"]
    return query


# --- reseller scope: the reseller's own API keys --------------------------------------------


class _ResellerApiKeysBase(ResellerScopedView):
    """Reseller-scope keys of the caller's reseller (customer keys live under their customer:
    another reseller's key and a customer key are both a 404 here)."""

    model = ApiKey
    serializer_class = ApiKeyOutputSerializer

    def scope_queryset(self, queryset):
        return queryset.filter(scope=ApiKey.Scope.RESELLER)


@extend_schema(tags=["reseller: API keys"])
class ResellerApiKeyListCreateView(StrictQueryMixin, mixins.ListModelMixin, _ResellerApiKeysBase):
    query_serializer = ApiKeyQuerySerializer
    equal_filters = {"revoked": "revoked_at__isnull"}

    @extend_schema(
        operation_id="reseller_api_keys_list",
        parameters=[ApiKeyQuerySerializer],
        responses=query_error_responses(**{"200": ApiKeyOutputSerializer(many=True)}),
    )
    def get(self, request):
        return self.filtered_list(_revoked_query(self.parse_query()), self.get_queryset())

    @extend_schema(
        operation_id="reseller_api_keys_create",
        request=ApiKeyCreateInputSerializer,
        responses={
            201: ApiKeyCreatedOutputSerializer,
            403: OpenApiResponse(
                ApiErrorSerializer,
                description="`staff_session_required`: an API key cannot create reseller keys.",
            ),
        },
    )
    def post(self, request):
        if self.tenant.api_key is not None:
            raise PermissionDenied(
                "Reseller keys are created by staff (admin, session or "
                "`manage.py create_api_key`), not with an API key.",
                code="staff_session_required",
            )
        data = self.parse(ApiKeyCreateInputSerializer)
        api_key, raw_key = api_key_create(reseller=self.reseller, **data, **_key_creator(self))
        body = ApiKeyCreatedOutputSerializer(api_key, context={"raw_key": raw_key}).data
        return Response(body, status=201)


@extend_schema(tags=["reseller: API keys"])
class ResellerApiKeyDetailView(_ResellerApiKeysBase):
    @extend_schema(operation_id="reseller_api_keys_retrieve")
    def get(self, request, pk: int):
        return Response(ApiKeyOutputSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="reseller_api_keys_revoke",
        responses={200: ApiKeyRevokedOutputSerializer},
        description="Revokes the key at once and for good: its next request is a 401. The "
        "customer keys it created (`created_by_key`) are revoked with it, in the same "
        "transaction; `customer_keys_revoked` says how many. A key may revoke itself. "
        "Revoking a revoked key keeps its first `revoked_at` (and revokes any customer key "
        "of it still live). Answers 200 with the revoked key (it was a 204 without a body "
        "before customer keys were revoked with it).",
    )
    def delete(self, request, pk: int):
        done = api_key_revoke(api_key=self.get_object(), now=timezone.now())
        context = {"customer_keys_revoked": done.minted_keys_revoked}
        return Response(ApiKeyRevokedOutputSerializer(done.api_key, context=context).data)


# --- reseller scope: sub-accounts -----------------------------------------------------------


class _SubAccountView(ResellerScopedView):
    """One of the caller's sub-accounts (another reseller's id is a 404), answered with its
    holders (`assignments`)."""

    model = SubAccount
    serializer_class = SubAccountDetailOutputSerializer

    def scope_queryset(self, queryset):
        return queryset.select_related("upstream_account__reseller", "customer__reseller")

    def respond(self, sub_account: SubAccount) -> Response:
        return Response(SubAccountDetailOutputSerializer(sub_account).data)


def _sub_account_conflicts(*codes: str) -> OpenApiResponse:
    return OpenApiResponse(
        ApiErrorSerializer, description=" ".join(SUB_ACCOUNT_CONFLICTS[code] for code in codes)
    )


#: The 409s of the sub-account lifecycle, as the schema describes them.
SUB_ACCOUNT_CONFLICTS = {
    "sub_account_closed": "`sub_account_closed`: it is closed and stays as it is.",
    "sub_account_day_before_start": "`sub_account_day_before_start`: the day is before its "
    "current customer's period starts (`extra.starts_on`).",
    "sub_account_period_invoiced": "`sub_account_period_invoiced`: a customer gaining or "
    "losing the days has an invoice issued for them (`extra.invoice`, `extra.first_free_day`).",
    "sub_account_billed": "`sub_account_billed`: it is on an invoice (`extra.invoices`).",
    "sub_account_has_usage": "`sub_account_has_usage`: it has usage not invoiced yet.",
    "sub_account_in_use": "`sub_account_in_use`: other records refer to it, e.g. traffic "
    "allocated upstream (`extra.referred_by`).",
}


@extend_schema(tags=["reseller: sub-accounts"])
class SubAccountDetailView(_SubAccountView):
    @extend_schema(operation_id="reseller_sub_accounts_retrieve")
    def get(self, request, pk: int):
        return self.respond(self.get_object())

    @extend_schema(
        operation_id="reseller_sub_accounts_update",
        request=SubAccountUpdateInputSerializer,
        responses={
            200: SubAccountDetailOutputSerializer,
            409: _sub_account_conflicts("sub_account_closed"),
        },
    )
    def patch(self, request, pk: int):
        sub_account = self.get_object()
        data = self.parse(SubAccountUpdateInputSerializer, partial=True, sub_account=sub_account)
        sub_account = services.sub_account_update(sub_account=sub_account, **data)
        return self.respond(sub_account)

    @extend_schema(
        operation_id="reseller_sub_accounts_delete",
        responses={
            204: None,
            409: _sub_account_conflicts(
                "sub_account_billed", "sub_account_has_usage", "sub_account_in_use"
            ),
        },
    )
    def delete(self, request, pk: int):
        sub_account_delete(sub_account=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["reseller: sub-accounts"])
class SubAccountMoveView(_SubAccountView):
    @extend_schema(
        operation_id="reseller_sub_accounts_move",
        request=SubAccountMoveInputSerializer,
        responses={
            200: SubAccountDetailOutputSerializer,
            409: _sub_account_conflicts(
                "sub_account_closed", "sub_account_day_before_start", "sub_account_period_invoiced"
            ),
        },
    )
    def post(self, request, pk: int):
        sub_account = self.get_object()
        data = self.parse(SubAccountMoveInputSerializer)
        moved = sub_account_move(
            sub_account=sub_account,
            to_customer=data["customer"],
            on_day=data["from"],
            actor=self.actor,
        )
        return self.respond(moved)


# --- customer scope -------------------------------------------------------------------------


# --- reseller scope: the reseller's own settings --------------------------------------------

_SETTINGS_EXAMPLE = {
    "id": 3,
    "name": "Acme Proxies Ltd",
    "slug": "acme",
    "currency": "USD",
    "timezone": "Europe/Berlin",
    "invoice_prefix": "ACME",
    "address": "Hauptstr. 1\n10115 Berlin",
    "tax_id": "DE123456789",
    "payment_instructions": "IBAN DE89 3704 0044 0532 0130 00, reference: invoice number",
    "sender_email": "billing@acme.example",
    "grace_period_days": 3,
    "payment_terms_days": 14,
    "reminder_offsets": [-3, 0, 7, 14],
    "suspend_after_overdue_days": 14,
    "sender_email_verified": False,
    "logo": "logos/acme.png",
}


class _OwnResellerView(ResellerScopedView):
    """A singleton resource: the caller's own reseller, no id in the path."""

    model = Reseller

    def get_object(self) -> Reseller:
        # DRF's OPTIONS metadata calls this for PUT; the generic lookup wants a `pk`.
        return self.reseller


@extend_schema(tags=["reseller: settings"])
class ResellerSettingsView(_OwnResellerView):
    serializer_class = ResellerSettingsOutputSerializer

    @extend_schema(
        operation_id="reseller_settings_retrieve",
        summary="Read the reseller's settings",
        description="The caller's own reseller: invoice address, tax id, payment "
        "instructions, sender email, grace days and logo, with the admin-only fields "
        "(name, currency, timezone, invoice prefix) read-only. `sender_email_verified` says "
        "whether your emails go out From `sender_email` (its domain verified by the platform "
        "operator) or from the platform's address under your name, replies to "
        "`sender_email`.",
        responses={200: ResellerSettingsOutputSerializer},
        examples=[OpenApiExample("Settings", value=_SETTINGS_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return Response(ResellerSettingsOutputSerializer(self.reseller).data)

    @extend_schema(
        operation_id="reseller_settings_update",
        summary="Change the reseller's settings",
        description="Partial update of address, tax_id, payment_instructions, sender_email, "
        "grace_period_days (0-60), payment_terms_days (0-365), reminder_offsets and "
        "suspend_after_overdue_days (0-365 or null). Name, "
        "slug, currency, timezone, invoice_prefix and "
        "verified_sender_domain are refused (400, `This field cannot be changed.`): the "
        "timezone cuts billing periods, the prefix numbers issued invoices, and only the "
        "platform operator verifies a sender domain. Any `sender_email` is accepted, but it "
        "is the From of your emails only on a verified domain (`sender_email_verified`); "
        "otherwise it is their Reply-To. The logo has its own endpoint.",
        request=ResellerSettingsUpdateInputSerializer,
        responses={200: ResellerSettingsOutputSerializer},
        examples=[
            OpenApiExample(
                "Change",
                value={"tax_id": "DE123456789", "grace_period_days": 3},
                request_only=True,
            ),
            OpenApiExample("Settings", value=_SETTINGS_EXAMPLE, response_only=True),
        ],
    )
    def patch(self, request):
        data = self.parse(ResellerSettingsUpdateInputSerializer, partial=True)
        reseller = services.reseller_settings_update(reseller=self.reseller, **data)
        return Response(ResellerSettingsOutputSerializer(reseller).data)


@extend_schema(tags=["reseller: settings"])
class ResellerLogoView(_OwnResellerView):
    serializer_class = ResellerSettingsOutputSerializer
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="reseller_settings_logo_upload",
        summary="Upload the reseller's logo",
        description="multipart/form-data with one file field `logo`: PNG or JPEG, at most "
        "1 MiB and 4000 pixels a side, else 400 naming `logo`. New invoices and credit "
        "notes draw it; issued ones keep the logo they were frozen with.",
        request={"multipart/form-data": ResellerLogoInputSerializer},
        responses={
            200: ResellerSettingsOutputSerializer,
            415: OpenApiResponse(
                ApiErrorSerializer,
                description="`unsupported_media_type`: the body is not multipart/form-data.",
            ),
        },
        examples=[OpenApiExample("Settings", value=_SETTINGS_EXAMPLE, response_only=True)],
    )
    def put(self, request):
        data = self.parse(ResellerLogoInputSerializer)
        reseller = services.reseller_logo_set(reseller=self.reseller, upload=data["logo"])
        return Response(ResellerSettingsOutputSerializer(reseller).data)

    @extend_schema(
        operation_id="reseller_settings_logo_delete",
        summary="Remove the reseller's logo",
        description="New documents render without a logo; issued ones keep theirs.",
        responses={204: None},
    )
    def delete(self, request):
        services.reseller_logo_delete(reseller=self.reseller)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["customer"])
class MeView(CustomerScopedView):
    model = Customer
    customer_path = None
    serializer_class = MeOutputSerializer

    @extend_schema(operation_id="me_retrieve")
    def get(self, request):
        customer = self.get_queryset().select_related("reseller").get()
        return Response(MeOutputSerializer(customer).data)


# --- fallbacks ------------------------------------------------------------------------------


class ApiNotFoundView(APIView):
    """Any other path under `/api/v1/`: the same JSON 404 as a missing object."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []
    schema = None

    def _not_found(self, request, *args, **kwargs):
        return Response(error_body("not_found", "Not found."), status=404)

    get = post = put = patch = delete = _not_found
