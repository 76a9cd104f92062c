"""Rules other invoice services consult (no imports beyond the models, so anyone can)."""

from __future__ import annotations

from billing.credit_notes.models import CreditNote
from billing.models import Invoice
from core.errors import ApplicationError


def invoice_void_check_credit_notes(*, invoice: Invoice) -> None:
    """An invoice with credit notes cannot be voided (call it under the invoice's row lock):
    the notes already corrected it, and voiding it too would cancel the same amount twice.
    Credit the rest instead (a full credit note)."""
    count = CreditNote.objects.filter(invoice=invoice).count()
    if count:
        raise ApplicationError(
            "invoice_has_credit_notes",
            f"Invoice {invoice} has {count} credit note(s); credit the rest instead of voiding.",
            extra={"credit_notes": count},
        )
