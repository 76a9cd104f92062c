"""Top-up model (imported at the end of billing/models.py so it belongs to `billing`)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from accounts.models import Customer, Reseller, SubAccount
from accounts.tenancy import TenantQuerySet
from accounts.validators import validate_currency
from billing.write_once import amount_field
from usage.models import Allocation


class TopUp(models.Model):
    """A prepaid top-up: its invoice (kind `top_up`, issued at once) and what paying it did.

    `open` until the invoice is paid; then `credited` (the amount is on the customer's
    balance, one `BalanceEntry` of kind `top_up`, and a traffic pack's allocation recorded);
    `void` when its invoice was voided unpaid."""

    tenant_path = "reseller"

    class Status(models.TextChoices):
        OPEN = "open", "Open (invoice not paid yet)"
        CREDITED = "credited", "Credited to the balance"
        VOID = "void", "Void (invoice voided)"

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="top_ups")
    invoice = models.OneToOneField(
        "billing.Invoice", on_delete=models.PROTECT, related_name="top_up"
    )
    currency = models.CharField(max_length=3, validators=[validate_currency])
    amount = amount_field(help_text="What goes on the balance once paid (the invoice total).")
    bytes = models.BigIntegerField(
        null=True, blank=True, help_text="A traffic pack: its bytes (priced at the plan)."
    )
    sub_account = models.ForeignKey(
        SubAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="top_ups",
        help_text="A traffic pack for this IPFoxy sub-account: allocated upstream once paid.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    automatic = models.BooleanField(
        default=False, help_text="Issued by the automatic top-up rule (at most one open)."
    )
    allocation = models.OneToOneField(
        Allocation, null=True, blank=True, on_delete=models.PROTECT, related_name="top_up"
    )
    allocation_error = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()
    credited_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="top_up_positive"),
            models.CheckConstraint(
                condition=Q(bytes__isnull=True) | Q(bytes__gt=0), name="top_up_bytes_positive"
            ),
            models.CheckConstraint(
                condition=Q(sub_account__isnull=True) | Q(bytes__isnull=False),
                name="top_up_sub_account_needs_bytes",
            ),
            models.UniqueConstraint(
                fields=["customer", "currency"],
                condition=Q(automatic=True, status="open"),
                name="top_up_one_open_automatic",
            ),
        ]

    def __str__(self) -> str:
        return f"Top-up #{self.pk} of {self.amount} {self.currency} ({self.status})"
