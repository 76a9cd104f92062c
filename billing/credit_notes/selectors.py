"""Credit note reads: what was credited on an invoice, and the notes a tenant may see.

Balance due (also in docs/api.md): `total - amount_credited` while the invoice is a draft or
finalized (unpaid); 0 once it is paid (a credit on a paid invoice is money owed back to the
customer, not a lower debt) or void.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Case, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from accounts.models import Customer, Reseller
from billing.credit_notes.amounts import Credited, NetTax
from billing.credit_notes.models import CreditNote, CreditNoteLine
from billing.models import Invoice, InvoiceStatus

_AMOUNT = models.DecimalField(max_digits=20, decimal_places=4)
_SETTLED = (InvoiceStatus.PAID, InvoiceStatus.VOID)


def invoice_amount_credited(*, invoice: Invoice) -> Decimal:
    """The gross total of the invoice's credit notes (0 when it has none)."""
    total = CreditNote.objects.filter(invoice_id=invoice.pk).aggregate(
        s=Coalesce(Sum("total"), Value(Decimal(0)), output_field=_AMOUNT)
    )["s"]
    return Decimal(total)


def invoice_balance_due(*, invoice: Invoice, amount_credited: Decimal) -> Decimal:
    """What the customer still owes on the invoice (see the module docstring)."""
    if invoice.status in _SETTLED:
        return Decimal(0)
    return invoice.total - amount_credited


def invoices_with_credit_totals(queryset: models.QuerySet[Invoice]) -> models.QuerySet[Invoice]:
    """Annotate `amount_credited` and `balance_due` in the list query itself (a correlated
    subquery, so no join multiplies other annotations and a page stays one query)."""
    credited = (
        CreditNote.objects.filter(invoice_id=OuterRef("pk"))
        .order_by()
        .values("invoice_id")
        .annotate(s=Sum("total"))
        .values("s")
    )
    return queryset.annotate(
        amount_credited=Coalesce(Subquery(credited, output_field=_AMOUNT), Value(Decimal(0))),
    ).annotate(
        balance_due=Case(
            When(status__in=_SETTLED, then=Value(Decimal(0))),
            default=F("total") - F("amount_credited"),
            output_field=_AMOUNT,
        )
    )


def credit_notes_for_reseller(*, reseller: Reseller) -> models.QuerySet[CreditNote]:
    return CreditNote.objects.for_reseller(reseller).select_related("invoice", "customer")


def credit_notes_for_customer(*, customer: Customer) -> models.QuerySet[CreditNote]:
    return CreditNote.objects.filter(
        reseller_id=customer.reseller_id, customer_id=customer.pk
    ).select_related("invoice", "customer")


def credit_note_lines(*, credit_note: CreditNote) -> list[CreditNoteLine]:
    return list(credit_note.lines.select_related("invoice_line").order_by("position"))


def invoice_credited(*, invoice: Invoice) -> Credited:
    """Net and tax credited on the invoice: by all its notes, and per invoice line by line
    credits (a credit of an amount belongs to no line)."""
    zero = Value(Decimal(0))
    sums = CreditNote.objects.filter(invoice_id=invoice.pk).aggregate(
        net=Coalesce(Sum("subtotal"), zero, output_field=_AMOUNT),
        tax=Coalesce(Sum("tax"), zero, output_field=_AMOUNT),
    )
    rows = (
        CreditNoteLine.objects.filter(
            Q(credit_note__invoice_id=invoice.pk) & Q(invoice_line__isnull=False)
        )
        .order_by()
        .values("invoice_line_id")
        .annotate(net=Sum("amount"), tax=Sum("tax"))
    )
    return Credited(
        overall=NetTax(Decimal(sums["net"]), Decimal(sums["tax"])),
        lines={row["invoice_line_id"]: NetTax(row["net"], row["tax"]) for row in rows},
    )
