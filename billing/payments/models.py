"""Payment models (imported at the end of billing/models.py so they belong to `billing`).

A `Payment` is money received against one invoice, in the invoice's currency; a `Refund`
gives back part or all of one payment. Both are records of what happened: once written they
never change and are never deleted (a mistaken payment is refunded). What an invoice has
received is `amount_paid = sum(payments) - sum(refunds)` (`billing.payments.selectors`), and
its balance due is `total - amount_credited - amount_paid`
(`billing.credit_notes.selectors.invoices_with_credit_totals`).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from accounts.models import Customer, Reseller
from accounts.tenancy import TenantQuerySet
from accounts.validators import validate_currency
from billing.models import Invoice
from config.errors import ApplicationError


def _amount_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=20, decimal_places=4, **kwargs)


def _immutable() -> ApplicationError:
    return ApplicationError(
        "payment_immutable", "Payments and refunds cannot be changed; refund a payment instead."
    )


class PaymentMethod(models.TextChoices):
    """How the money came in. Anything more precise (the bank, the wallet, the chain) goes
    in `method_detail`, free text."""

    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    CARD = "card", "Card"
    CASH = "cash", "Cash"
    PAYPAL = "paypal", "PayPal"
    CRYPTO = "crypto", "Crypto"
    OTHER = "other", "Other"


class _ImmutableQuerySet(TenantQuerySet):
    def update(self, **kwargs: Any) -> int:
        raise _immutable()

    def delete(self) -> tuple[int, dict[str, int]]:
        raise _immutable()


class _WriteOnce(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise _immutable()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise _immutable()


class Payment(_WriteOnce):
    """Money received against an invoice (`billing.payments.services.payment_create`)."""

    tenant_path = "reseller"
    Method = PaymentMethod

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    amount = _amount_field(help_text="Received, in the invoice currency's minor unit (> 0).")
    paid_at = models.DateTimeField(help_text="When the money was received (not when recorded).")
    method = models.CharField(max_length=20, choices=PaymentMethod.choices)
    method_detail = models.CharField(
        max_length=100, blank=True, help_text="Free text: bank, wallet, card brand, network."
    )
    reference = models.CharField(
        max_length=200, blank=True, help_text="The payer's or the bank's reference."
    )
    note = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()

    objects = _ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["paid_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_positive"),
        ]
        indexes = [
            models.Index(fields=["reseller", "paid_at"]),
            models.Index(fields=["invoice", "paid_at"]),
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} of {self.amount} {self.currency}"


class Refund(_WriteOnce):
    """Money given back of one payment; never more than the payment's unrefunded amount
    (`billing.payments.services.payment_refund`, under the invoice's row lock)."""

    tenant_path = "payment__reseller"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = _amount_field(help_text="Given back, in the payment's currency (> 0).")
    refunded_at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    reference = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()

    objects = _ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["refunded_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_positive"),
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk} of {self.amount} {self.payment.currency}"
