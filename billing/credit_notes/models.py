"""Credit note models (imported at the end of billing/models.py so they belong to `billing`).

A credit note gives back part or all of an issued (finalized or paid) invoice. It is issued
once and never changes: `save()` refuses to alter an issued note except for its stored PDF,
and neither the model nor its querysets delete. The sum of an invoice's credit notes never
exceeds the invoice total (checked by `credit_note_create` under the invoice's row lock).
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Round

from accounts.models import Customer, Reseller
from accounts.validators import validate_currency
from billing.abstract_models import EmailDelivery, YearlySequence
from billing.write_once import WriteOnce, amount_field

# What may still change on an issued credit note: the stored PDF.
CREDIT_NOTE_MUTABLE = frozenset({"pdf", "pdf_rendered_at"})


class CreditNoteReason(models.TextChoices):
    """Stripe's reasons; anything else goes in the memo."""

    DUPLICATE = "duplicate", "Duplicate"
    FRAUDULENT = "fraudulent", "Fraudulent"
    ORDER_CHANGE = "order_change", "Order change"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory", "Product unsatisfactory"


class CreditNote(WriteOnce):
    """A credit against one issued invoice, numbered `{prefix}-CN-{YYYY}-{NNNNN}`; only its
    stored PDF may be set after it is issued."""

    write_once_code = "credit_note_immutable"
    write_once_message = "Issued credit notes cannot be changed."
    write_once_mutable = CREDIT_NOTE_MUTABLE

    tenant_path = "reseller"
    Reason = CreditNoteReason

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, related_name="credit_notes"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_notes")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    number = models.CharField(max_length=40)
    sequence_year = models.PositiveSmallIntegerField()
    sequence_number = models.PositiveIntegerField()
    reason = models.CharField(max_length=30, choices=CreditNoteReason.choices, blank=True)
    memo = models.CharField(max_length=500, blank=True)
    subtotal = amount_field()
    tax_rate = models.DecimalField("tax rate (%)", max_digits=7, decimal_places=4)
    tax = amount_field()
    total = amount_field()
    issued_on = models.DateField(help_text="Day of issue in the reseller's timezone")
    snapshot = models.JSONField(default=dict, blank=True, help_text="Frozen for rendering")
    pdf = models.FileField(upload_to="credit_notes/", blank=True, max_length=300)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    idempotency_key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["reseller", "number"], name="credit_note_unique_number"
            ),
            models.UniqueConstraint(
                fields=["reseller", "sequence_year", "sequence_number"],
                name="credit_note_unique_sequence",
            ),
            models.UniqueConstraint(
                fields=["reseller", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="credit_note_unique_idempotency_key",
            ),
            models.CheckConstraint(condition=models.Q(total__gt=0), name="credit_note_positive"),
            # Rounded (a no-op for amounts of at most 6 places): SQLite compares in floating
            # point, where 0.20 + 0.10 != 0.30.
            models.CheckConstraint(
                condition=models.Q(total=Round(models.F("subtotal") + models.F("tax"), 6)),
                name="credit_note_total_is_subtotal_plus_tax",
            ),
        ]
        indexes = [models.Index(fields=["invoice", "created_at"])]

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(WriteOnce):
    """One credited amount: net `amount` + `tax` (rounded once) = `total`.

    `invoice_line` is set when a specific invoice line is credited; a credit of a single
    amount (or of the whole remainder) has one line without it.
    """

    write_once_code = "credit_note_immutable"
    write_once_message = "Issued credit notes cannot be changed."

    tenant_path = "credit_note__reseller"

    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField()
    invoice_line = models.ForeignKey(
        "billing.InvoiceLine",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_note_lines",
    )
    description = models.CharField(max_length=300)
    amount = amount_field()
    tax = amount_field()
    total = amount_field()

    class Meta:
        ordering = ["credit_note", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_note", "position"], name="credit_note_line_unique_position"
            ),
            models.UniqueConstraint(
                fields=["credit_note", "invoice_line"],
                condition=models.Q(invoice_line__isnull=False),
                name="credit_note_line_unique_invoice_line",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.total}"


class CreditNoteSequence(YearlySequence):
    """The credit notes' series (separate from the invoices')."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reseller", "year"], name="credit_note_sequence_unique"
            ),
        ]


class CreditNoteEmail(EmailDelivery):
    """A credit note's delivery (`billing.outbox`)."""

    tenant_path = "credit_note__reseller"
    document_field = "credit_note"

    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="emails")

    class Meta:
        ordering = ["credit_note", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_note", "sequence"], name="credit_note_email_unique_sequence"
            ),
        ]
