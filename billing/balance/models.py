"""Customer balance models (imported at the end of billing/models.py so they belong to
`billing`).

`CustomerBalance` is one customer's account in one currency: the row every write of its
ledger locks first (so two workers never spend the same money twice), and its optional
automatic top-up rule. `BalanceEntry` is one movement, signed (+ money in, - money out),
written once, each traceable to exactly one document: the credit note, the payment, the
top-up, the refund, the invoice it was applied to (or whose voiding gave it back), or the manual
adjustment itself (its reason). A unique constraint per kind makes each "exactly once".
The balance is the sum of the entries and never goes below 0 (`billing.balance.services`).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from accounts.models import Customer, Reseller
from accounts.tenancy import TenantQuerySet
from accounts.validators import validate_currency
from billing.write_once import WriteOnce, amount_field


class CustomerBalance(models.Model):
    """A customer's balance account in one currency (the lock row of its ledger)."""

    tenant_path = "reseller"

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="balances")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    auto_top_up_threshold = amount_field(
        null=True,
        blank=True,
        help_text="Automatic top-up: when the balance falls below this, a top-up invoice of "
        "`auto_top_up_amount` is issued (at most one open at a time). Empty: no rule.",
    )
    auto_top_up_amount = amount_field(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["customer", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "currency"], name="customer_balance_unique_currency"
            ),
            models.CheckConstraint(
                condition=(
                    Q(auto_top_up_threshold__isnull=True) & Q(auto_top_up_amount__isnull=True)
                )
                | (Q(auto_top_up_threshold__gte=0) & Q(auto_top_up_amount__gt=0)),
                name="customer_balance_auto_top_up_rule",
            ),
        ]

    def __str__(self) -> str:
        return f"Balance of {self.customer} in {self.currency}"


class BalanceEntryKind(models.TextChoices):
    CREDIT_NOTE = "credit_note", "Credit note (no longer owed)"
    OVERPAYMENT = "overpayment", "Overpayment"
    TOP_UP = "top_up", "Top-up"
    ADJUSTMENT = "adjustment", "Manual adjustment"
    APPLIED = "applied", "Applied to an invoice"
    APPLIED_REVERSED = "applied_reversed", "Given back (invoice voided)"
    REFUND = "refund", "Refunded (a credit given back in money)"


class BalanceEntry(WriteOnce):
    """One movement of a customer's balance (`billing.balance.services`)."""

    write_once_code = "balance_entry_immutable"
    write_once_message = "Balance entries never change; record an adjustment instead."

    tenant_path = "reseller"
    Kind = BalanceEntryKind

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="balance_entries")
    balance = models.ForeignKey(CustomerBalance, on_delete=models.PROTECT, related_name="entries")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    amount = amount_field(help_text="Signed: + money in, - money out (applied, adjusted down).")
    kind = models.CharField(max_length=20, choices=BalanceEntryKind.choices)
    invoice = models.ForeignKey(
        "billing.Invoice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="balance_entries",
        help_text="The invoice it came from or was applied to (credit notes, overpayments, "
        "top-ups and applications name it).",
    )
    credit_note = models.ForeignKey(
        "billing.CreditNote", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payment = models.ForeignKey(
        "billing.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    top_up = models.ForeignKey(
        "billing.TopUp", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund = models.ForeignKey(
        "billing.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "balance entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="balance_entry_not_zero"),
            models.UniqueConstraint(
                fields=["credit_note"],
                condition=Q(kind="credit_note"),
                name="balance_entry_once_per_credit_note",
            ),
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(kind="overpayment"),
                name="balance_entry_once_per_payment",
            ),
            models.UniqueConstraint(
                fields=["top_up"], condition=Q(kind="top_up"), name="balance_entry_once_per_top_up"
            ),
            models.UniqueConstraint(
                fields=["refund"], condition=Q(kind="refund"), name="balance_entry_once_per_refund"
            ),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(kind="applied"),
                name="balance_entry_applied_once_per_invoice",
            ),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(kind="applied_reversed"),
                name="balance_entry_reversed_once_per_invoice",
            ),
            models.CheckConstraint(
                condition=(Q(kind="credit_note") & Q(credit_note__isnull=False))
                | (Q(kind="overpayment") & Q(payment__isnull=False))
                | (Q(kind="top_up") & Q(top_up__isnull=False))
                | (Q(kind="refund") & Q(refund__isnull=False))
                | (Q(kind="adjustment") & ~Q(reason=""))
                | (Q(kind__in=["applied", "applied_reversed"]) & Q(invoice__isnull=False)),
                name="balance_entry_names_its_document",
            ),
        ]
        indexes = [models.Index(fields=["customer", "currency", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.amount} {self.currency}"
