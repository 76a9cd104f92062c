"""Payment admin, imported by billing/admin.py.

Payments are read-only here (recorded money never changes, and none is deleted): the list
filters by method, date and reseller; the payment page shows its refunds and offers
"Refund" (amount, empty: all that is left; reason) calling `payment_refund`. Recording is
the invoice page's "Record payment" (amount, date, method, reference), calling
`payment_create`, the same service as the API; the invoice page lists its payments inline.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin, messages
from django.utils import timezone

from accounts.admin import ActionInput, ObjectAction, ReadOnlyInline, TenantScopedAdmin
from billing.models import Invoice
from billing.money import format_money
from billing.payments.models import Payment, PaymentMethod, Refund
from billing.payments.selectors import payment_amount_refunded
from billing.payments.services import payment_create, payment_refund
from core.errors import ApplicationError

RECORD_PAYMENT = ObjectAction(
    "record_payment",
    "Record payment",
    style="primary",
    inputs=(
        ActionInput("amount", "Amount", placeholder="e.g. 100.00"),
        ActionInput("paid_at", "Received", input_type="datetime-local"),
        ActionInput("method", "Method", choices=tuple(PaymentMethod.choices)),
        ActionInput("reference", "Reference", placeholder="Wire reference"),
    ),
    help="Money received, in the invoice's currency: partial payments add up and the one "
    "that brings the balance due to 0 makes the invoice paid. Date in your timezone; empty: "
    "now.",
)


def _moment(text: str, invoice: Invoice) -> dt.datetime | None:
    """A `datetime-local` value in the reseller's timezone (empty: None, i.e. now)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ApplicationError("validation_error", f"{text!r} is not a date and time.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=invoice.reseller.tzinfo)
    return value


def record_payment_from_request(modeladmin, request, invoice: Invoice) -> None:
    """The invoice page's "Record payment": parse the inputs, call `payment_create`."""
    payment = payment_create(
        invoice=invoice,
        amount=request.POST.get("amount", "").strip(),
        paid_at=_moment(request.POST.get("paid_at", ""), invoice),
        method=request.POST.get("method", "") or PaymentMethod.OTHER,
        reference=request.POST.get("reference", "").strip(),
        now=timezone.now(),
        actor=modeladmin.actor(request),
    )
    invoice.refresh_from_db()
    modeladmin.message_user(
        request,
        f"Payment of {format_money(payment.amount, payment.currency)} recorded; "
        f"{invoice} is {invoice.status}.",
        messages.SUCCESS,
    )


class InvoicePaymentInline(ReadOnlyInline):
    model = Payment
    fk_name = "invoice"
    fields = readonly_fields = [
        "paid_at",
        "amount",
        "method",
        "method_detail",
        "reference",
        "refunded",
        "created_by",
    ]
    show_change_link = True

    @admin.display(description="Refunded")
    def refunded(self, payment):
        return format_money(payment_amount_refunded(payment=payment), payment.currency)


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = readonly_fields = ["refunded_at", "amount", "reason", "reference", "created_by"]


@admin.register(Payment)
class PaymentAdmin(TenantScopedAdmin):
    list_display = [
        "__str__",
        "invoice",
        "customer",
        "amount_display",
        "method",
        "paid_at",
        "reference",
        "reseller",
    ]
    list_filter = ["method", "paid_at", "reseller"]
    search_fields = ["invoice__number", "customer__name", "reference", "method_detail"]
    list_select_related = ["invoice", "customer", "reseller"]
    date_hierarchy = "paid_at"
    inlines = [RefundInline]
    object_actions = (
        ObjectAction(
            "refund",
            "Refund",
            style="danger",
            inputs=(
                ActionInput("amount", "Amount", placeholder="Empty: all that is left"),
                ActionInput("reason", "Reason", placeholder="Why"),
            ),
            help="Gives money back; a refund that reopens a balance due makes a paid invoice "
            "finalized again.",
        ),
    )

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, payment):
        return format_money(payment.amount, payment.currency)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Payment._meta.concrete_fields]

    def has_add_permission(self, request):
        return False  # recorded from the invoice page ("Record payment") or the API

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        no_save = {"show_save": False, "show_save_and_continue": False}
        no_save |= {"show_save_and_add_another": False, "show_delete": False}
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), **no_save}
        )

    def save_model(self, request, obj, form, change):
        """Nothing to save: payments are immutable (actions go through the services)."""

    def save_related(self, request, form, formsets, change):
        pass

    def do_refund(self, request, payment):
        amount = request.POST.get("amount", "").strip() or None
        refund = payment_refund(
            payment=payment,
            amount=amount,
            reason=request.POST.get("reason", "").strip(),
            now=timezone.now(),
            actor=self.actor(request),
        )
        self.message_user(
            request,
            f"Refunded {format_money(refund.amount, payment.currency)} of {payment}.",
            messages.SUCCESS,
        )
