"""Payment models (imported at the end of billing/models.py so they belong to `billing`).

A `Payment` is money received against one invoice, in the invoice's currency; a `Refund`
gives back part or all of one payment. Both are records of what happened: once written they
never change and are never deleted (a mistaken payment is refunded). What an invoice has
received is `amount_paid = sum(payments) - sum(refunds)` (`billing.payments.selectors`), and
its balance due is `total - amount_credited - amount_paid`
(`billing.credit_notes.selectors.invoices_with_credit_totals`).
"""

from __future__ import annotations

from django.db import models

from accounts.models import Customer, Reseller
from accounts.validators import validate_currency
from billing.write_once import WriteOnce, amount_field


class PaymentMethod(models.TextChoices):
    """How the money came in. Anything more precise (the bank, the wallet, the chain) goes
    in `method_detail`, free text."""

    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    CARD = "card", "Card"
    CASH = "cash", "Cash"
    PAYPAL = "paypal", "PayPal"
    CRYPTO = "crypto", "Crypto"
    OTHER = "other", "Other"


class Payment(WriteOnce):
    """Money received against an invoice (`billing.payments.services.payment_create`)."""

    write_once_code = "payment_immutable"
    write_once_message = "Payments and refunds cannot be changed; refund a payment instead."

    tenant_path = "reseller"
    Method = PaymentMethod

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, related_name="payments"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    amount = amount_field(help_text="Received, in the invoice currency's minor unit (> 0).")
    to_balance = amount_field(
        default=0,
        help_text="The part above the balance due, put on the customer's balance (one "
        "`BalanceEntry` of kind `overpayment`); the invoice received `amount - to_balance`.",
    )
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

    class Meta:
        ordering = ["paid_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_positive"),
            models.CheckConstraint(
                condition=models.Q(to_balance__gte=0)
                & models.Q(to_balance__lte=models.F("amount")),
                name="payment_to_balance_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["reseller", "paid_at"]),
            models.Index(fields=["invoice", "paid_at"]),
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} of {self.amount} {self.currency}"


class Refund(WriteOnce):
    """Money given back of one payment; never more than the payment's unrefunded amount
    (`billing.payments.services.payment_refund`, under the invoice's row lock)."""

    write_once_code = "payment_immutable"
    write_once_message = "Payments and refunds cannot be changed; refund a payment instead."

    tenant_path = "payment__reseller"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = amount_field(help_text="Given back, in the payment's currency (> 0).")
    refunded_at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    reference = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["refunded_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_positive"),
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk} of {self.amount} {self.payment.currency}"
