"""Invoices needing attention: drafts in grace, finalized and unpaid, overdue, failed emails.

- Drafts in grace: the period has ended and the draft finalizes at the end of the reseller's
  grace period (`period_due_at`); late usage still changes it until then.
- Drafts past grace: should have been finalized by the cycle but were not (it refused them).
- Unpaid: finalized, due date not passed (reseller-local today).
- Overdue: finalized, due date passed.
- Failed emails: deliveries that failed with no later delivery of the same invoice sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Exists, OuterRef

from accounts.models import Reseller
from billing.dashboard.units import money_text
from billing.invoicing import Period, period_due_at
from billing.models import Invoice, InvoiceEmail, InvoiceStatus

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


def _item(invoice: Invoice, **extra) -> AttentionInvoice:
    return AttentionInvoice(
        invoice_id=invoice.pk,
        label=str(invoice),
        customer_name=invoice.customer.name,
        period_label=f"{invoice.period_start:%Y-%m}",
        total=invoice.total,
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
        "unpaid": AttentionGroup("unpaid", "Finalized, unpaid", "Issued and not yet due.", "info"),
        "overdue": AttentionGroup(
            "overdue", "Overdue", "Past the due date and not marked paid.", "danger"
        ),
        "emails": AttentionGroup(
            "emails", "Emails that failed", "Resend from the invoice page.", "danger"
        ),
    }
    invoices = (
        Invoice.objects.for_reseller(reseller)
        .filter(status__in=[InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED])
        .select_related("customer")
        .order_by("period_start", "due_on", "pk")
    )
    for invoice in invoices:
        if invoice.status == InvoiceStatus.DRAFT:
            period = Period(start=invoice.period_start, end=invoice.period_end)
            if invoice.period_end > today:
                continue  # a draft of a running period (not made by the cycle): nothing due
            due_at = period_due_at(period=period, tz=tz, grace_days=reseller.grace_period_days)
            key = "grace" if now < due_at else "stuck"
            groups[key].add(_item(invoice, when=due_at.astimezone(tz).date()))
        elif invoice.due_on is not None and invoice.due_on < today:
            days = (today - invoice.due_on).days
            groups["overdue"].add(_item(invoice, when=invoice.due_on, note=f"{days} days late"))
        else:
            groups["unpaid"].add(_item(invoice, when=invoice.due_on))

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
