"""Invoices needing attention: drafts in grace, finalized and unpaid, overdue, failed emails.

- Drafts in grace: the period has ended and the draft finalizes at the end of the reseller's
  grace period (`period_due_at`); late usage still changes it until then.
- Drafts past grace: should have been finalized by the cycle but were not (it refused them).
- Unpaid: finalized with an amount still due (net of credit notes and payments), due date
  not passed (reseller-local today).
- Overdue: the same, due date passed (`billing.overdue_suspension.overdue_cutoff`, the one
  definition of overdue). Their amounts are the balance due, per currency.
- Failed emails: deliveries that failed with no later delivery of the same invoice sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Exists, OuterRef

from accounts.models import Reseller
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.dashboard.units import money_text
from billing.invoicing.periods import Period, period_due_at
from billing.models import Invoice, InvoiceEmail, InvoiceStatus
from billing.overdue_suspension import overdue_cutoff

LIST_LIMIT = 25


@dataclass
class AttentionInvoice:
    invoice_id: int
    label: str
    customer_name: str
    period_label: str
    total: Decimal
    currency: str
    status: str
    when: dt.date | dt.datetime | None = None
    note: str = ""

    @property
    def total_text(self) -> str:
        return money_text(self.total, self.currency)


@dataclass
class AttentionGroup:
    key: str
    title: str
    explanation: str
    severity: str  # "info", "warning", "danger"
    items: list[AttentionInvoice] = field(default_factory=list)
    count: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)

    def add(self, item: AttentionInvoice) -> None:
        self.count += 1
        self.totals[item.currency] = self.totals.get(item.currency, Decimal(0)) + item.total
        if len(self.items) < LIST_LIMIT:
            self.items.append(item)

    @property
    def totals_text(self) -> str:
        return ", ".join(money_text(v, c) for c, v in sorted(self.totals.items()))


def _item(invoice: Invoice, amount: Decimal | None = None, **extra) -> AttentionInvoice:
    """`amount`: what the group counts (the balance due of an issued invoice), else the
    total."""
    return AttentionInvoice(
        invoice_id=invoice.pk,
        label=str(invoice),
        customer_name=invoice.customer.name,
        period_label=f"{invoice.period_start:%Y-%m}",
        total=invoice.total if amount is None else amount,
        currency=invoice.currency,
        status=invoice.status,
        **extra,
    )


def dashboard_invoices_attention(*, reseller: Reseller, now: dt.datetime) -> list[AttentionGroup]:
    tz = reseller.tzinfo
    today = now.astimezone(tz).date()
    groups = {
        "grace": AttentionGroup(
            "grace",
            "Drafts in grace",
            "Period ended; finalized automatically when the grace period ends.",
            "info",
        ),
        "stuck": AttentionGroup(
            "stuck",
            "Drafts past grace",
            "Should have been finalized; the cycle refused them. Open and finalize.",
            "danger",
        ),
        "unpaid": AttentionGroup(
            "unpaid", "Finalized, unpaid", "Issued and not yet due: balance due.", "info"
        ),
        "overdue": AttentionGroup(
            "overdue", "Overdue", "Past the due date with a balance due.", "danger"
        ),
        "emails": AttentionGroup(
            "emails", "Emails that failed", "Resend from the invoice page.", "danger"
        ),
    }
    invoices = invoices_with_credit_totals(
        Invoice.objects.for_reseller(reseller)
        .filter(status__in=[InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED])
        .select_related("customer")
        .order_by("period_start", "due_on", "pk")
    )
    overdue_on_or_before = overdue_cutoff(reseller, now)
    for invoice in invoices:
        if invoice.status == InvoiceStatus.DRAFT:
            period = Period(start=invoice.period_start, end=invoice.period_end)
            if invoice.period_end > today:
                continue  # a draft of a running period (not made by the cycle): nothing due
            due_at = period_due_at(period=period, tz=tz, grace_days=reseller.grace_period_days)
            key = "grace" if now < due_at else "stuck"
            groups[key].add(_item(invoice, when=due_at.astimezone(tz).date()))
        elif invoice.balance_due <= 0:
            continue  # credited or paid in full, only its status not changed: nothing due
        elif invoice.due_on is not None and invoice.due_on <= overdue_on_or_before:
            days = (today - invoice.due_on).days
            groups["overdue"].add(
                _item(invoice, invoice.balance_due, when=invoice.due_on, note=f"{days} days late")
            )
        else:
            groups["unpaid"].add(_item(invoice, invoice.balance_due, when=invoice.due_on))

    sent_later = InvoiceEmail.objects.filter(
        invoice_id=OuterRef("invoice_id"),
        sequence__gt=OuterRef("sequence"),
        status=InvoiceEmail.Status.SENT,
    )
    failed = (
        InvoiceEmail.objects.for_reseller(reseller)
        .filter(status=InvoiceEmail.Status.FAILED)
        .exclude(invoice__status=InvoiceStatus.VOID)
        .filter(~Exists(sent_later))
        .select_related("invoice__customer")
        .order_by("queued_at", "pk")
    )
    for delivery in failed:
        groups["emails"].add(
            _item(delivery.invoice, when=delivery.queued_at, note=delivery.last_error)
        )
    return list(groups.values())
