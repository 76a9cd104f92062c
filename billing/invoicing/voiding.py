"""Voiding an issued invoice: the status change, the customer told, its drafts re-rated.

`invoice_void` runs in one transaction, the customer row locked first (the lock order of
issuing: customer, then invoices):

1. finalized -> void (`transitions.invoice_status_void`: checked, logged, webhook
   `invoice.voided`); the number stays taken, the period is freed for a reissue;
2. the customer's void notice (`delivery.invoice_void_notice_queue`): one `InvoiceEmail` of
   kind `void_notice`, sent once by the outbox after the commit (a void happens once, and a
   unique constraint allows one notice per invoice);
3. the customer's drafts re-rated (`refresh.invoice_drafts_rerate`): a voided invoice counts
   for nothing, so the adjustments later months carry for it change;
4. the customer balance applied to it given back (one `applied_reversed` entry,
   `billing.balance`), and a top-up invoice's top-up marked void (`billing.topups`).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from accounts.locks import lock_customers
from accounts.models import Customer
from billing.balance.services import balance_reverse_applied
from billing.invoicing.delivery import invoice_void_notice_queue
from billing.invoicing.refresh import invoice_drafts_rerate
from billing.invoicing.transitions import invoice_status_void
from billing.models import Invoice
from billing.topups.services import top_up_void


def invoice_void(
    *,
    invoice: Invoice,
    now: dt.datetime,
    actor: str = "",
    reason: str = "",
    send_email: bool = True,
) -> Invoice:
    """finalized -> void, the customer emailed a void notice (unless `send_email` is false)
    and its drafts re-rated. Paid invoices cannot be voided (`invalid_transition`: credit
    them instead); `reason` is logged, not sent."""
    with transaction.atomic():
        lock_customers(
            Customer.objects.for_reseller(invoice.reseller_id).filter(pk=invoice.customer_id)
        )
        voided = invoice_status_void(invoice=invoice, now=now, actor=actor, reason=reason)
        if send_email:
            invoice_void_notice_queue(invoice=voided, now=now)
        invoice_drafts_rerate(customer=voided.customer, now=now)
        balance_reverse_applied(invoice=voided, now=now, actor=actor)
        top_up_void(invoice=voided)
    return voided
