"""Credit note endpoints: issue and read (reseller scope), read (customer scope).

Views parse, call `credit_note_create` or a selector, and render. Every row comes through
the tenancy base (`for_reseller`, and in customer scope the key's customer only), so another
tenant's invoice or note is a 404 like a missing one. Amounts are read by `core.money` with
the invoice currency's decimals (`"1e400"`, `"1_0"`, `"1.005"` USD: 400 `invalid_amount`).
Service refusals of input answer 400 with `extra.fields`; refusals because of the invoice's
state (`invoice_not_creditable`, `credit_exceeds_invoice`, `credit_exceeds_line`,
`idempotency_key_reused`) answer 409.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.api.base import CustomerScopedView, ResellerScopedView
from billing.api.serializers import InvoicePaginationQuerySerializer
from billing.api.views import _actor, _ErrorsAsJson, _parse_query
from billing.credit_notes.delivery import credit_note_pdf_content
from billing.credit_notes.models import CreditNote, CreditNoteLine
from billing.credit_notes.serializers import (
    CreditNoteCreateInputSerializer,
    CreditNoteOutputSerializer,
)
from billing.credit_notes.services import credit_note_create
from billing.models import Invoice
from billing.money import currency_exponent
from billing.selectors import CUSTOMER_VISIBLE_STATUSES
from core.openapi import ApiErrorSerializer

_CONFLICTS = {
    409: OpenApiResponse(
        ApiErrorSerializer,
        description="`invoice_not_creditable` (a draft or void invoice), "
        "`credit_exceeds_invoice` (`extra.remaining`), `credit_exceeds_line` "
        "(`extra.line`, `extra.remaining`) or `idempotency_key_reused`.",
    ),
    400: OpenApiResponse(
        ApiErrorSerializer, description="Invalid input: `extra.fields` names the field."
    ),
}
_PDF = {(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF.")}
_PAGED = {
    "parameters": [InvoicePaginationQuerySerializer],
    "responses": {
        200: CreditNoteOutputSerializer(many=True),
        400: OpenApiResponse(ApiErrorSerializer, description="An unknown query parameter."),
    },
}


class _CreditNotesMixin:
    model = CreditNote
    serializer_class = CreditNoteOutputSerializer

    def scope_queryset(self, queryset):
        return queryset.select_related("invoice").prefetch_related(
            Prefetch("lines", queryset=CreditNoteLine.objects.order_by("position"))
        )

    def paged(self, request):
        _parse_query(self, InvoicePaginationQuerySerializer)
        return self.list(request)


class _PdfMixin:
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _ErrorsAsJson

    def get(self, request, pk: int):
        note = self.get_object()
        response = HttpResponse(
            credit_note_pdf_content(credit_note=note), content_type="application/pdf"
        )
        response["Content-Disposition"] = f'inline; filename="{note.number}.pdf"'
        return response


# --- reseller scope -------------------------------------------------------------------------


@extend_schema(tags=["reseller: credit notes"])
class ResellerInvoiceCreditNotesView(_CreditNotesMixin, mixins.ListModelMixin, ResellerScopedView):
    def invoice(self) -> Invoice:
        return get_object_or_404(Invoice.objects.for_reseller(self.reseller), pk=self.kwargs["pk"])

    def scope_queryset(self, queryset):
        if getattr(self, "swagger_fake_view", False):
            return queryset
        return super().scope_queryset(queryset.filter(invoice=self.invoice()))

    @extend_schema(
        operation_id="reseller_invoice_credit_notes_list",
        description="The invoice's credit notes, oldest first.",
        **_PAGED,
    )
    def get(self, request, pk: int):
        return self.paged(request)

    @extend_schema(
        operation_id="reseller_invoice_credit_notes_create",
        request=CreditNoteCreateInputSerializer,
        responses={201: CreditNoteOutputSerializer, **_CONFLICTS},
        description="Issues a credit note against a finalized or paid invoice: `{}` credits "
        "what is left, `amount` a gross amount (tax included), `lines` net amounts of "
        "invoice lines. Numbered `{prefix}-CN-YYYY-NNNNN`, PDF stored, emailed to the "
        "customer unless `send_email` is false.",
    )
    def post(self, request, pk: int):
        invoice = self.invoice()
        data = self.parse(
            CreditNoteCreateInputSerializer, amount_places=currency_exponent(invoice.currency)
        )
        note = credit_note_create(invoice=invoice, now=timezone.now(), actor=_actor(self), **data)
        note = self.get_queryset().get(pk=note.pk)
        return Response(CreditNoteOutputSerializer(note).data, status=201)


@extend_schema(tags=["reseller: credit notes"])
class ResellerCreditNoteListView(_CreditNotesMixin, mixins.ListModelMixin, ResellerScopedView):
    @extend_schema(operation_id="reseller_credit_notes_list", **_PAGED)
    def get(self, request):
        return self.paged(request)


@extend_schema(tags=["reseller: credit notes"])
class ResellerCreditNoteDetailView(_CreditNotesMixin, ResellerScopedView):
    @extend_schema(operation_id="reseller_credit_notes_retrieve")
    def get(self, request, pk: int):
        return Response(CreditNoteOutputSerializer(self.get_object()).data)


@extend_schema(tags=["reseller: credit notes"])
class ResellerCreditNotePdfView(_PdfMixin, _CreditNotesMixin, ResellerScopedView):
    @extend_schema(operation_id="reseller_credit_notes_pdf", responses=_PDF)
    def get(self, request, pk: int):
        return super().get(request, pk)


# --- customer scope -------------------------------------------------------------------------


@extend_schema(tags=["customer"])
class InvoiceCreditNotesView(_CreditNotesMixin, mixins.ListModelMixin, CustomerScopedView):
    def scope_queryset(self, queryset):
        if getattr(self, "swagger_fake_view", False):
            return queryset
        invoices = Invoice.objects.for_reseller(self.reseller).filter(
            customer=self.customer, status__in=CUSTOMER_VISIBLE_STATUSES
        )
        invoice = get_object_or_404(invoices, pk=self.kwargs["pk"])
        return super().scope_queryset(queryset.filter(invoice=invoice))

    @extend_schema(
        operation_id="invoice_credit_notes_list",
        description="The credit notes of one of the customer's invoices.",
        **_PAGED,
    )
    def get(self, request, pk: int):
        return self.paged(request)


@extend_schema(tags=["customer"])
class CreditNoteListView(_CreditNotesMixin, mixins.ListModelMixin, CustomerScopedView):
    @extend_schema(operation_id="credit_notes_list", **_PAGED)
    def get(self, request):
        return self.paged(request)


@extend_schema(tags=["customer"])
class CreditNoteDetailView(_CreditNotesMixin, CustomerScopedView):
    @extend_schema(operation_id="credit_notes_retrieve")
    def get(self, request, pk: int):
        return Response(CreditNoteOutputSerializer(self.get_object()).data)


@extend_schema(tags=["customer"])
class CreditNotePdfView(_PdfMixin, _CreditNotesMixin, CustomerScopedView):
    @extend_schema(operation_id="credit_notes_pdf", responses=_PDF)
    def get(self, request, pk: int):
        return super().get(request, pk)
