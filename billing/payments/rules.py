"""Rules other invoice services consult (no imports beyond the models, so anyone can)."""

from __future__ import annotations

from billing.models import Invoice
from billing.money import quantize_money
from billing.payments.selectors import invoice_amount_paid
from core.errors import ApplicationError


def invoice_void_check_payments(*, invoice: Invoice) -> None:
    """An invoice holding money (payments not refunded in full) cannot be voided (call it
    under the invoice's row lock): refund the payments first, or credit the invoice."""
    paid = quantize_money(invoice_amount_paid(invoice=invoice), invoice.currency)
    if paid > 0:
        raise ApplicationError(
            "invoice_has_payments",
            f"Invoice {invoice} holds {paid:f} {invoice.currency} of payments; refund them "
            "before voiding, or credit the invoice instead.",
            extra={"amount_paid": str(paid)},
        )
