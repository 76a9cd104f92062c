"""Credit note admin, imported by billing/admin.py.

Credit notes are read-only here (issued notes never change, and none is deleted); the page
offers "Download PDF" and "Resend email". Issuing is the add page,
`admin:billing_creditnote_add` with `?invoice=<id>` (the invoice page links to it): a form
with the amount (gross; empty credits everything left), reason and memo that calls
`credit_note_create`, the same service as the API. The invoice is looked up through the
staff's reseller, so another reseller's invoice is a 404; a refusal (a draft, more than is
left) shows on the form.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from accounts.admin import ObjectAction, ReadOnlyInline, TenantScopedAdmin
from billing.credit_notes.delivery import credit_note_email_resend, credit_note_pdf_content
from billing.credit_notes.models import CreditNote, CreditNoteEmail, CreditNoteLine
from billing.credit_notes.selectors import invoice_amount_credited
from billing.credit_notes.services import credit_note_create
from billing.models import Invoice
from billing.money import currency_exponent, format_money
from core.errors import ApplicationError
from core.money import AmountFormField


class CreditNoteIssueForm(forms.Form):
    """The amount is read by `core.money` with the invoice currency's decimals (`currency`):
    "1e400", "1_0" or "10.005" USD is an error on the field, never a server error."""

    amount = AmountFormField(
        required=False,
        places=CreditNote._meta.get_field("total").decimal_places,
        help_text="Gross amount, tax included. Empty: credit everything left on the invoice.",
    )
    reason = forms.ChoiceField(required=False, choices=[("", "—"), *CreditNote.Reason.choices])
    memo = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    send_email = forms.BooleanField(
        required=False, initial=True, label="Email the credit note to the customer"
    )

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        amount = self.fields["amount"]
        amount.places = min(amount.places, currency_exponent(currency))


class CreditNoteLineInline(ReadOnlyInline):
    model = CreditNoteLine
    fields = readonly_fields = ["position", "description", "invoice_line", "amount", "tax", "total"]


class CreditNoteEmailInline(ReadOnlyInline):
    model = CreditNoteEmail
    fields = readonly_fields = [
        "sequence",
        "status",
        "recipients",
        "attempts",
        "sent_at",
        "last_error",
        "requested_by",
    ]


@admin.register(CreditNote)
class CreditNoteAdmin(TenantScopedAdmin):
    list_display = [
        "number",
        "invoice",
        "customer",
        "total_display",
        "reason",
        "issued_on",
        "reseller",
    ]
    list_filter = ["reason", "issued_on", "reseller"]
    search_fields = ["number", "invoice__number", "customer__name"]
    list_select_related = ["invoice", "customer", "reseller"]
    date_hierarchy = "issued_on"
    inlines = [CreditNoteLineInline, CreditNoteEmailInline]
    object_actions = (
        ObjectAction("download_pdf", "Download PDF"),
        ObjectAction("resend_email", "Resend email"),
    )

    @admin.display(description="Total", ordering="total")
    def total_display(self, note):
        return format_money(note.total, note.currency)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in CreditNote._meta.concrete_fields]

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        extra["show_save_and_add_another"] = False
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):
        """Nothing to save: issued notes are immutable (the add page issues through the
        service)."""

    def save_related(self, request, form, formsets, change):
        pass

    def do_download_pdf(self, request, note):
        response = HttpResponse(
            credit_note_pdf_content(credit_note=note), content_type="application/pdf"
        )
        response["Content-Disposition"] = f'attachment; filename="{note.number}.pdf"'
        response["Cache-Control"] = "no-store"
        return response

    def do_resend_email(self, request, note):
        delivery = credit_note_email_resend(
            credit_note=note, now=timezone.now(), requested_by=self.actor(request)
        )
        self.message_user(
            request,
            f"Email #{delivery.sequence} of {note} queued to {', '.join(delivery.recipients)}.",
            messages.SUCCESS,
        )

    # -- issuing ------------------------------------------------------------------------------

    def _invoice_or_404(self, request) -> Invoice:
        invoices = Invoice.objects.select_related("customer", "reseller")
        reseller = self.staff_reseller(request)
        if reseller is not None:
            invoices = invoices.for_reseller(reseller)
        try:
            return invoices.get(pk=int(request.GET.get("invoice", "")))
        except (ValueError, Invoice.DoesNotExist):
            raise Http404("No such invoice.") from None

    def add_view(self, request, form_url="", extra_context=None):
        """Issue a credit note against `?invoice=<id>` (from the invoice page)."""
        if not self.has_add_permission(request):
            raise Http404("No such page.")
        if "invoice" not in request.GET:
            self.message_user(
                request,
                'Credit notes are issued from an invoice: open it and use "Issue credit note".',
                messages.INFO,
            )
            return HttpResponseRedirect(
                reverse(f"{self.admin_site.name}:billing_invoice_changelist")
            )
        invoice = self._invoice_or_404(request)
        form = CreditNoteIssueForm(request.POST or None, currency=invoice.currency)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                note = credit_note_create(
                    invoice=invoice,
                    now=timezone.now(),
                    amount=data["amount"],
                    reason=data["reason"],
                    memo=data["memo"],
                    send_email=data["send_email"],
                    actor=self.actor(request),
                )
            except ApplicationError as exc:
                fields = exc.extra.get("fields", {})
                field = next((name for name in fields if name in form.fields), None)
                form.add_error(field, exc.message)
            else:
                self.message_user(
                    request,
                    f"Credit note {note.number} issued: "
                    f"{format_money(note.total, note.currency)} on {invoice}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self.change_url(note))
        credited = invoice_amount_credited(invoice=invoice)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Issue a credit note on {invoice}",
            "opts": self.opts,
            "form": form,
            "invoice": invoice,
            "invoice_total": format_money(invoice.total, invoice.currency),
            "credited": format_money(credited, invoice.currency),
            "remaining": format_money(invoice.total - credited, invoice.currency),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "billing/credit_note_admin_issue.html", context)
