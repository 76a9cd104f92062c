"""Billing endpoints: plans, subscriptions and invoices (reseller scope); invoices and the
current period's usage (customer scope).

Views parse with an input serializer, call one service or selector, and render with an
output serializer. Billing verbs are explicit POST views (`finalize/`, `void/`,
`mark-paid/`) calling the invoicing services, which check the transition table and log an
event. A service refusing a state change (`invoice_not_draft`, `invalid_transition`,
`period_not_ended`, `subscription_billed`) answers 409; a service refusing input
(`invalid_plan`, `plan_price_immutable`, `subscription_overlap`, `invalid_subscription`)
answers 400 naming the fields (or field paths, `tiers[0].up_to`) in `extra.fields`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.api.base import CustomerScopedView, ResellerScopedView
from accounts.models import Customer
from billing.api.invoice_rows import CustomerInvoicePage, customer_invoice_rows
from billing.api.query_serializers import (
    CustomerInvoiceListQuerySerializer,
    PlanListQuerySerializer,
    SubscriptionListQuerySerializer,
)
from billing.api.serializers import (
    CurrentUsageOutputSerializer,
    InvoiceFinalizeInputSerializer,
    InvoiceListQuerySerializer,
    InvoiceMarkPaidInputSerializer,
    InvoiceOutputSerializer,
    InvoiceVoidInputSerializer,
    PlanCreateInputSerializer,
    PlanOutputSerializer,
    PlanUpdateInputSerializer,
    ResellerInvoiceOutputSerializer,
    SubscriptionCreateInputSerializer,
    SubscriptionOutputSerializer,
    SubscriptionUpdateInputSerializer,
)
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.current_usage import usage_current_for_customer
from billing.invoicing.cycle import invoice_draft_discard, invoice_draft_stale
from billing.invoicing.delivery import invoice_pdf_content
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.periods import period_parse
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, Plan, PlanTier, Subscription
from billing.overdue_suspension import invoices_overdue
from billing.payments.services import invoice_mark_paid
from billing.plans import (
    plan_create,
    plan_update,
    subscription_create,
    subscription_delete,
    subscription_update,
)
from billing.selectors import CUSTOMER_VISIBLE_STATUSES, invoices_with_lines
from core.errors import ApplicationError
from core.openapi import ApiErrorSerializer
from core.query import StrictQueryMixin, query_error_responses


def _with_fields(exc: ApplicationError, *, default_field: str = "non_field_errors"):
    """A service's refusal of input, with the fields named like validation errors do:
    `extra.fields = {field: [messages]}` (model `__all__` becomes `non_field_errors`)."""
    extra: dict[str, Any] = dict(exc.extra)
    messages = {
        key: value for key, value in extra.items() if isinstance(value, list) and key != "fields"
    }
    if messages:
        if "__all__" in messages:
            messages["non_field_errors"] = messages.pop("__all__")
        fields = messages
    else:
        fields = {default_field: [exc.message]}
    return ApplicationError(exc.code, exc.message, extra={"fields": fields})


def _conflict_responses(*codes: str) -> dict:
    return {
        409: OpenApiResponse(
            ApiErrorSerializer,
            description="The invoice's status does not allow this: " + ", ".join(codes) + ".",
        )
    }


class _ErrorsAsJson(BaseContentNegotiation):
    """The PDF endpoints answer errors as JSON whatever `Accept` says."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _InvoicePdfMixin:
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _ErrorsAsJson

    def pdf_response(self, invoice: Invoice) -> HttpResponse:
        response = HttpResponse(
            invoice_pdf_content(invoice=invoice), content_type="application/pdf"
        )
        name = invoice.number or f"draft-{invoice.pk}"
        response["Content-Disposition"] = f'inline; filename="{name}.pdf"'
        return response


_QUERY_ERROR = {
    400: OpenApiResponse(
        ApiErrorSerializer,
        description="A query parameter is invalid or unknown: `extra.fields` names it.",
    )
}

_PDF_RESPONSE = {
    (200, "application/pdf"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The invoice as PDF."
    ),
}


def _actor(view: ResellerScopedView) -> str:
    """Who the invoice events name (`TenantScopedView.actor`: the API key by its public
    prefix, or the staff user)."""
    return view.actor


def _parse_query(view, serializer_class) -> dict:
    """Validate the query string; unknown parameters are refused, except DRF's `format`
    (the browsable API's renderer switch)."""
    query = view.request.query_params.copy()
    query.pop("format", None)
    serializer = serializer_class(
        data=query,
        context={"request": view.request, "view": view, "tenant": view.tenant},
    )
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- reseller scope: plans ------------------------------------------------------------------


class _PlansBase(ResellerScopedView):
    model = Plan
    serializer_class = PlanOutputSerializer

    def scope_queryset(self, queryset):
        return queryset.prefetch_related(
            Prefetch("tiers", queryset=PlanTier.objects.order_by("position"))
        )


@extend_schema(tags=["reseller: plans"])
class PlanListCreateView(StrictQueryMixin, _PlansBase):
    query_serializer = PlanListQuerySerializer
    equal_filters = {"is_active": "is_active"}

    @extend_schema(
        operation_id="reseller_plans_list",
        parameters=[PlanListQuerySerializer],
        responses={200: PlanOutputSerializer(many=True), **query_error_responses()},
        description="Your plans, ordered by id; filter `is_active`. Unknown query "
        "parameters are refused (400).",
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())

    @extend_schema(
        operation_id="reseller_plans_create",
        request=PlanCreateInputSerializer,
        responses={201: PlanOutputSerializer},
        description="Creates a plan. One that breaks a billing rule (no tier, tiers not "
        "ascending, a bound of 0, no unlimited last tier, a package without size or price, a "
        "negative price, more decimals than the column or, for fixed amounts, than the "
        "currency has: JPY none) is refused with `invalid_plan`, `extra.fields` naming each "
        "field path (`tiers[0].up_to`).",
    )
    def post(self, request):
        data = self.parse(PlanCreateInputSerializer)
        try:
            plan = plan_create(reseller=self.reseller, **data)
        except ApplicationError as exc:
            raise _with_fields(exc) from exc
        return Response(PlanOutputSerializer(self.get_queryset().get(pk=plan.pk)).data, status=201)


@extend_schema(tags=["reseller: plans"])
class PlanDetailView(_PlansBase):
    @extend_schema(operation_id="reseller_plans_retrieve")
    def get(self, request, pk: int):
        return Response(PlanOutputSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="reseller_plans_update",
        request=PlanUpdateInputSerializer,
        responses={200: PlanOutputSerializer},
        description="Renames a plan or sets `is_active`. Prices, tiers, currency, pricing "
        "model, unit and code are fixed once created (drafts and previews rate from the live "
        "plan): sending any of them is refused with 400 `plan_price_immutable` naming them. "
        "For new prices create a plan, end the subscriptions and subscribe again.",
    )
    def patch(self, request, pk: int):
        plan = self.get_object()
        data = self.parse(PlanUpdateInputSerializer, partial=True)
        try:
            plan = plan_update(plan=plan, **data)
        except ApplicationError as exc:
            raise _with_fields(exc) from exc
        return Response(PlanOutputSerializer(self.get_queryset().get(pk=plan.pk)).data)


# --- reseller scope: subscriptions ----------------------------------------------------------


@extend_schema(tags=["reseller: subscriptions"])
class SubscriptionListCreateView(StrictQueryMixin, ResellerScopedView):
    model = Subscription
    serializer_class = SubscriptionOutputSerializer
    query_serializer = SubscriptionListQuerySerializer
    owned_filters = {"customer": Customer, "plan": Plan}

    @extend_schema(
        operation_id="reseller_subscriptions_list",
        parameters=[SubscriptionListQuerySerializer],
        responses={200: SubscriptionOutputSerializer(many=True), **query_error_responses()},
        description="Your subscriptions, ordered by id; filters `customer` and `plan` (not "
        "yours: 404). Unknown query parameters are refused (400).",
    )
    def get(self, request):
        return self.filtered_list(self.parse_query(), self.get_queryset())

    @extend_schema(
        operation_id="reseller_subscriptions_create",
        request=SubscriptionCreateInputSerializer,
        responses={201: SubscriptionOutputSerializer},
        description="Subscribes a customer. Refused with 400: `subscription_overlap` when it "
        "meets another subscription of the customer on the same or a wider scope, "
        "`invalid_subscription` when the plan's currency is not the customer's, the plan is "
        "inactive or the end is before the start (an end equal to the start is a subscription "
        "that is never active).",
    )
    def post(self, request):
        data = self.parse(SubscriptionCreateInputSerializer)
        try:
            subscription = subscription_create(**data)
        except ApplicationError as exc:
            raise _with_fields(exc) from exc
        return Response(SubscriptionOutputSerializer(subscription).data, status=201)


@extend_schema(tags=["reseller: subscriptions"])
class SubscriptionDetailView(ResellerScopedView):
    model = Subscription
    serializer_class = SubscriptionOutputSerializer

    @extend_schema(operation_id="reseller_subscriptions_retrieve")
    def get(self, request, pk: int):
        return Response(SubscriptionOutputSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="reseller_subscriptions_update",
        request=SubscriptionUpdateInputSerializer,
        responses={200: SubscriptionOutputSerializer},
        description="Ends a subscription on `ends_on` (exclusive; equal to `starts_on`: "
        "cancelled, never active; null: open-ended again). Customer, plan, start and scope "
        "are fixed: to change plan, end it and subscribe again from that day.",
    )
    def patch(self, request, pk: int):
        subscription = self.get_object()
        data = self.parse(SubscriptionUpdateInputSerializer, partial=True)
        if "ends_on" in data:
            try:
                subscription = subscription_update(subscription=subscription, **data)
            except ApplicationError as exc:
                raise _with_fields(exc) from exc
        return Response(SubscriptionOutputSerializer(subscription).data)

    @extend_schema(
        operation_id="reseller_subscriptions_destroy",
        responses={
            204: None,
            409: OpenApiResponse(
                ApiErrorSerializer,
                description="`subscription_billed`: an issued invoice (finalized, paid or "
                "void) used it; `extra.invoices` lists their numbers. Cancel it instead "
                "(`ends_on` = `starts_on`).",
            ),
        },
        description="Deletes a subscription no issued invoice used (a mistake). Drafts that "
        "contained it are re-rated without it; a draft left with nothing (no line, no usage) "
        "is discarded.",
    )
    def delete(self, request, pk: int):
        subscription = self.get_object()
        subscription_delete(subscription=subscription, actor=_actor(self), now=timezone.now())
        return Response(status=204)


# --- reseller scope: invoices ---------------------------------------------------------------


class _ResellerInvoicesBase(ResellerScopedView):
    model = Invoice
    serializer_class = ResellerInvoiceOutputSerializer

    def scope_queryset(self, queryset):
        return invoices_with_credit_totals(invoices_with_lines(queryset))

    def respond(self, invoice: Invoice) -> Response:
        """The invoice as stored now, lines included (after a service changed it)."""
        return Response(
            ResellerInvoiceOutputSerializer(self.get_queryset().get(pk=invoice.pk)).data
        )


@extend_schema(tags=["reseller: invoices"])
class ResellerInvoiceListView(mixins.ListModelMixin, _ResellerInvoicesBase):
    def scope_queryset(self, queryset):
        query = _parse_query(self, InvoiceListQuerySerializer)
        if "period" in query:
            queryset = queryset.filter(period_start=period_parse(query["period"]).start)
        if "status" in query:
            queryset = queryset.filter(status=query["status"])
        if "overdue" in query:
            overdue = invoices_overdue(reseller=self.reseller, now=timezone.now(), days=None)
            ids = overdue.values("pk")
            queryset = (
                queryset.filter(pk__in=ids)
                if query["overdue"] == "true"
                else queryset.exclude(pk__in=ids)
            )
        if "customer" in query:
            customers = Customer.objects.for_reseller(self.reseller)
            queryset = queryset.filter(customer=get_object_or_404(customers, pk=query["customer"]))
        return super().scope_queryset(queryset)

    @extend_schema(
        operation_id="reseller_invoices_list",
        parameters=[InvoiceListQuerySerializer],
        responses={
            200: ResellerInvoiceOutputSerializer(many=True),
            **_QUERY_ERROR,
            404: OpenApiResponse(
                ApiErrorSerializer, description="`customer` is not one of the caller's."
            ),
        },
        description="Every invoice of the reseller, drafts included, ordered by id. Unknown "
        "query parameters are refused (400).",
    )
    def get(self, request):
        return self.list(request)


@extend_schema(tags=["reseller: invoices"])
class ResellerInvoiceDetailView(_ResellerInvoicesBase):
    @extend_schema(operation_id="reseller_invoices_retrieve")
    def get(self, request, pk: int):
        invoice = self.get_object()
        invoice.stale = invoice_draft_stale(invoice=invoice)
        return Response(ResellerInvoiceOutputSerializer(invoice).data)

    @extend_schema(
        operation_id="reseller_invoices_destroy",
        responses={204: None, **_conflict_responses("`invoice_not_draft`")},
        description="Discards a draft (recorded in the log); the next cycle brings it back "
        "only if the period still has something to bill. Issued invoices are voided, never "
        "deleted.",
    )
    def delete(self, request, pk: int):
        invoice = self.get_object()
        invoice_draft_discard(invoice=invoice, actor=_actor(self), now=timezone.now())
        return Response(status=204)


@extend_schema(tags=["reseller: invoices"])
class ResellerInvoicePdfView(_InvoicePdfMixin, _ResellerInvoicesBase):
    def scope_queryset(self, queryset):
        return queryset.select_related("reseller")

    @extend_schema(
        operation_id="reseller_invoices_pdf",
        responses=_PDF_RESPONSE,
        description="The PDF; a draft renders with a DRAFT watermark and no number.",
    )
    def get(self, request, pk: int):
        return self.pdf_response(self.get_object())


@extend_schema(tags=["reseller: invoices"])
class ResellerInvoiceFinalizeView(_ResellerInvoicesBase):
    @extend_schema(
        operation_id="reseller_invoices_finalize",
        request=InvoiceFinalizeInputSerializer,
        responses={
            200: ResellerInvoiceOutputSerializer,
            **_conflict_responses(
                "`invoice_not_draft`",
                "`period_not_ended`",
                "`nothing_billable` (no subscription, usage or adjustment left: discard it)",
            ),
        },
        description="Issues a draft: re-rated from current usage, numbered, frozen, its PDF "
        "stored and (unless `send_email` is false) emailed to the customer. A draft with "
        "nothing billable left is never numbered (409 `nothing_billable`).",
    )
    def post(self, request, pk: int):
        invoice = self.get_object()
        data = self.parse(InvoiceFinalizeInputSerializer)
        invoice = invoice_finalize(invoice=invoice, now=timezone.now(), actor=_actor(self), **data)
        return self.respond(invoice)


@extend_schema(tags=["reseller: invoices"])
class ResellerInvoiceVoidView(_ResellerInvoicesBase):
    @extend_schema(
        operation_id="reseller_invoices_void",
        request=InvoiceVoidInputSerializer,
        responses={
            200: ResellerInvoiceOutputSerializer,
            **_conflict_responses(
                "`invalid_transition` (only a finalized invoice can be voided)",
                "`invoice_has_credit_notes`",
                "`invoice_has_payments` (refund its payments first)",
            ),
        },
        description="Voids a finalized invoice; it keeps its number. The customer is "
        "emailed a void notice once (unless `send_email` is false) and its drafts are "
        "re-rated. Bill the month again with `generate/` for the customer: the new invoice "
        "shows `replaces` (this number), also printed on its PDF.",
    )
    def post(self, request, pk: int):
        invoice = self.get_object()
        data = self.parse(InvoiceVoidInputSerializer)
        invoice = invoice_void(invoice=invoice, now=timezone.now(), actor=_actor(self), **data)
        return self.respond(invoice)


@extend_schema(tags=["reseller: invoices"])
class ResellerInvoiceMarkPaidView(_ResellerInvoicesBase):
    @extend_schema(
        operation_id="reseller_invoices_mark_paid",
        request=InvoiceMarkPaidInputSerializer,
        responses={
            200: ResellerInvoiceOutputSerializer,
            **_conflict_responses(
                "`invalid_transition` (a draft or void invoice)",
                "`nothing_due` (paid already, or credited in full: balance due 0)",
            ),
        },
        description="Pays the balance due in full now: records one payment of the whole "
        'balance due (method `other`, `method_detail` "Marked paid", `note` kept on the '
        "payment and the invoice's event), which makes the invoice paid. For partial "
        "payments, a method or a reference use `payments/`.",
    )
    def post(self, request, pk: int):
        invoice = self.get_object()
        data = self.parse(InvoiceMarkPaidInputSerializer)
        invoice = invoice_mark_paid(invoice=invoice, now=timezone.now(), actor=_actor(self), **data)
        return self.respond(invoice)


def current_usage_response(customer: Customer) -> Response:
    """`usage/current/` of the customer (its own key, or a reseller's in reseller scope)."""
    current = usage_current_for_customer(customer=customer, now=timezone.now())
    context = {"currency": current.currency}
    return Response(CurrentUsageOutputSerializer(current, context=context).data)


# --- customer scope -------------------------------------------------------------------------


class _CustomerInvoicesBase(CustomerScopedView):
    """Issued invoices of the key's customer; a draft answers 404 like a missing invoice."""

    model = Invoice
    serializer_class = InvoiceOutputSerializer

    def scope_queryset(self, queryset):
        visible = queryset.filter(status__in=CUSTOMER_VISIBLE_STATUSES)
        return invoices_with_credit_totals(invoices_with_lines(visible))


@extend_schema(tags=["customer"])
class InvoiceListView(StrictQueryMixin, _CustomerInvoicesBase):
    query_serializer = CustomerInvoiceListQuerySerializer
    equal_filters = {
        "status": "status",
        "period": "period_start",
        "period_from": "period_start__gte",
        "period_to": "period_start__lte",
    }

    @extend_schema(
        operation_id="invoices_list",
        parameters=[CustomerInvoiceListQuerySerializer],
        responses={200: InvoiceOutputSerializer(many=True), **_QUERY_ERROR},
        description="The customer's finalized, paid and void invoices; filters `status`, "
        "`period`, `period_from`/`period_to` (months, inclusive); `ordering=-period_start` "
        "for the newest month first (default: by id). Unknown query parameters are refused "
        "(400).",
    )
    def get(self, request):
        query = self.parse_query()
        ordering = query.pop("ordering")
        filters = {
            lookup: query[name] for name, lookup in self.equal_filters.items() if name in query
        }
        # Rows, not instances, of the key's customer only, a page in one statement compiled
        # once per filter shape; the serializer's list renders them directly
        # (billing.api.invoice_rows), lines in one query per page.
        rows = CustomerInvoicePage(
            customer=self.customer,
            serializer_class=self.serializer_class,
            filters=filters,
            ordering=ordering,
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def get_queryset(self):
        return customer_invoice_rows(customer=self.customer, serializer_class=self.serializer_class)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "reseller": self.reseller}


@extend_schema(tags=["customer"])
class InvoiceDetailView(_CustomerInvoicesBase):
    @extend_schema(operation_id="invoices_retrieve")
    def get(self, request, pk: int):
        return Response(InvoiceOutputSerializer(self.get_object()).data)


@extend_schema(tags=["customer"])
class InvoicePdfView(_InvoicePdfMixin, _CustomerInvoicesBase):
    def scope_queryset(self, queryset):
        return queryset.filter(status__in=CUSTOMER_VISIBLE_STATUSES).select_related("reseller")

    @extend_schema(operation_id="invoices_pdf", responses=_PDF_RESPONSE)
    def get(self, request, pk: int):
        return self.pdf_response(self.get_object())


@extend_schema(tags=["customer"])
class CurrentUsageView(CustomerScopedView):
    model = Invoice  # unused: the selector reads the customer's own rows
    serializer_class = CurrentUsageOutputSerializer

    @extend_schema(
        operation_id="usage_current_retrieve",
        description="The open month (reseller's timezone): usage so far per subscription and "
        "sub-account, the charge the invoice engine rates from it (base fees and minimums "
        "of the whole month, usage to date), and the traffic left upstream where the "
        "provider reports it (BytesFlows).",
    )
    def get(self, request):
        return current_usage_response(self.customer)
