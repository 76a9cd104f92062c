"""Credit note reads: what was credited on an invoice, and the notes a tenant may see.

Balance due (also in docs/api.md), the one figure of what is owed on an invoice:
`total - balance_applied - amount_credited - amount_paid` (the customer balance applied when
it was issued, `billing.balance`; payments minus refunds, `billing.payments`), never
below 0, while the invoice is a draft or finalized; 0 once it is paid (a credit on a paid
invoice is money owed back to the customer, not a lower debt) or void.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Case, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Greatest, Round

from billing.credit_notes.amounts import Credited, NetTax
from billing.credit_notes.models import CreditNote, CreditNoteLine
from billing.models import Invoice, InvoiceStatus
from billing.payments.selectors import amount_paid_expression, invoice_amount_paid

_AMOUNT = models.DecimalField(max_digits=20, decimal_places=4)
_SETTLED = (InvoiceStatus.PAID, InvoiceStatus.VOID)


def invoice_amount_credited(*, invoice: Invoice) -> Decimal:
    """The gross total of the invoice's credit notes (0 when it has none)."""
    total = CreditNote.objects.filter(invoice=invoice).aggregate(
        s=Coalesce(Sum("total"), Value(Decimal(0)), output_field=_AMOUNT)
    )["s"]
    return Decimal(total)


def invoice_balance_due(
    *, invoice: Invoice, amount_credited: Decimal, amount_paid: Decimal | None = None
) -> Decimal:
    """What the customer still owes on the invoice (see the module docstring);
    `amount_paid` is read when not given."""
    if invoice.status in _SETTLED:
        return Decimal(0)
    if amount_paid is None:
        amount_paid = invoice_amount_paid(invoice=invoice)
    owed = invoice.total - invoice.balance_applied - amount_credited - amount_paid
    return max(owed, Decimal(0))


def invoices_with_credit_totals(queryset: models.QuerySet[Invoice]) -> models.QuerySet[Invoice]:
    """Annotate `amount_credited`, `amount_paid` and `balance_due` in the list query itself
    (correlated subqueries, so no join multiplies other annotations and a page stays one
    query). Every amount due in Flowbill is read from here."""
    credited = (
        CreditNote.objects.filter(invoice_id=OuterRef("pk"))
        .order_by()
        .values("invoice_id")
        .annotate(s=Sum("total"))
        .values("s")
    )
    return queryset.annotate(
        amount_credited=Coalesce(Subquery(credited, output_field=_AMOUNT), Value(Decimal(0))),
        amount_paid=amount_paid_expression(),
    ).annotate(
        balance_due=Case(
            When(status__in=_SETTLED, then=Value(Decimal(0))),
            # Rounded: SQLite subtracts in floating point (180 - 60 - 120 may not be 0).
            default=Greatest(
                Round(
                    F("total") - F("balance_applied") - F("amount_credited") - F("amount_paid"),
                    4,
                ),
                Value(Decimal(0)),
                output_field=_AMOUNT,
            ),
            output_field=_AMOUNT,
        )
    )


def credit_note_lines(*, credit_note: CreditNote) -> list[CreditNoteLine]:
    return list(credit_note.lines.select_related("invoice_line").order_by("position"))


def invoice_credited(*, invoice: Invoice) -> Credited:
    """Net and tax credited on the invoice: by all its notes, and per invoice line by line
    credits (a credit of an amount belongs to no line)."""
    zero = Value(Decimal(0))
    sums = CreditNote.objects.filter(invoice=invoice).aggregate(
        net=Coalesce(Sum("subtotal"), zero, output_field=_AMOUNT),
        tax=Coalesce(Sum("tax"), zero, output_field=_AMOUNT),
    )
    rows = (
        CreditNoteLine.objects.filter(
            Q(credit_note__invoice=invoice) & Q(invoice_line__isnull=False)
        )
        .order_by()
        .values("invoice_line_id")
        .annotate(net=Sum("amount"), tax=Sum("tax"))
    )
    return Credited(
        overall=NetTax(Decimal(sums["net"]), Decimal(sums["tax"])),
        lines={row["invoice_line_id"]: NetTax(row["net"], row["tax"]) for row in rows},
    )
