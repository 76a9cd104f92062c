"""Celery tasks of the billing app: ids and ISO strings in, one service call, done."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from accounts.models import Customer, Reseller
from billing.invoicing.cycle import invoice_cycle_run
from billing.invoicing.delivery import invoice_email_send
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.refresh import invoice_drafts_refresh
from billing.models import Invoice, InvoiceEmail
from billing.schedule import BEAT_SCHEDULE
from core.errors import ApplicationError
from core.task_options import (
    DATABASE_RETRY_TASK_OPTIONS,
    EMAIL_SEND_TASK_OPTIONS,
    FANOUT_TIME_LIMITS,
    RECORD_TIME_LIMITS,
    RESELLER_BATCH_TASK_OPTIONS,
)


def _now(now_iso: str | None) -> dt.datetime:
    return dt.datetime.fromisoformat(now_iso) if now_iso else timezone.now()


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def invoice_cycle_task(now_iso: str | None = None) -> int:
    """Hourly: one `invoice_cycle_reseller_task` per reseller."""
    return _per_reseller(invoice_cycle_reseller_task, now_iso)


def _per_reseller(task, now_iso: str | None, *, expires: int | None = None) -> int:
    """Queue `task(reseller_id, now)` for every reseller, all with the same `now`; each
    message dropped unconsumed after `expires` seconds when given."""
    now = _now(now_iso).isoformat()
    reseller_ids = list(Reseller.objects.order_by("pk").values_list("pk", flat=True))
    for reseller_id in reseller_ids:
        task.apply_async((reseller_id, now), expires=expires)
    return len(reseller_ids)


@shared_task(**RESELLER_BATCH_TASK_OPTIONS)
def invoice_cycle_reseller_task(reseller_id: int, now_iso: str | None = None) -> None:
    reseller = Reseller.objects.get(pk=reseller_id)
    invoice_cycle_run(reseller=reseller, now=_now(now_iso))


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def documents_recover_all_task(now_iso: str | None = None) -> int:
    """Every 3 minutes: one `documents_recover_task` per reseller (`billing.recovery`), each
    message expiring before the next sweep's, so a backlog of workers never piles sweeps up."""
    expires = BEAT_SCHEDULE["billing-documents-recover"]["options"]["expires"]
    return _per_reseller(documents_recover_task, now_iso, expires=expires)


@shared_task(**RESELLER_BATCH_TASK_OPTIONS)
def documents_recover_task(reseller_id: int, now_iso: str | None = None) -> dict[str, int]:
    """Render the reseller's missing PDFs, dispatch its stuck emails again. Ages are
    measured with the wall clock when the task runs (`now_iso`: the fan-out's time, which a
    message waiting in the queue makes stale, is not used for them)."""
    from billing.recovery import documents_recover

    reseller = Reseller.objects.get(pk=reseller_id)
    return documents_recover(reseller=reseller, now=timezone.now()).as_dict()


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **RECORD_TIME_LIMITS)
def invoice_finalize_task(invoice_id: int, now_iso: str | None = None) -> None:
    """Finalize one draft; one finalized meanwhile (the cycle won the race) is done."""
    invoice = Invoice.objects.select_related("reseller", "customer").get(pk=invoice_id)
    if invoice.status != Invoice.Status.DRAFT:
        return
    try:
        invoice_finalize(invoice=invoice, now=_now(now_iso))
    except ApplicationError as exc:
        if exc.code != "invoice_not_draft":
            raise


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **RECORD_TIME_LIMITS)
def invoice_drafts_refresh_task(*, customer_id: int, now_iso: str | None = None) -> int:
    """After a sync changed the customer's usage (FLOWBILL_AFTER_SYNC_TASKS): re-rate its
    drafts still in their grace period. Returns how many were refreshed."""
    customer = Customer.objects.select_related("reseller").filter(pk=customer_id).first()
    if customer is None:  # deleted since the sync
        return 0
    return len(invoice_drafts_refresh(customer=customer, now=_now(now_iso)))


@shared_task(**EMAIL_SEND_TASK_OPTIONS)
def invoice_email_send_task(delivery_id: int) -> str:
    """Send one delivery; the claim inside the service makes retries and duplicates safe."""
    delivery = InvoiceEmail.objects.get(pk=delivery_id)
    return invoice_email_send(delivery=delivery, now=timezone.now()).status


@shared_task(**RESELLER_BATCH_TASK_OPTIONS)
def invoices_generate_task(
    reseller_id: int,
    period: str,
    finalize: bool = False,
    actor: str = "",
    now_iso: str | None = None,
) -> int:
    """`POST reseller/invoices/generate/` without a customer: the whole reseller's month.
    Idempotent (drafts are refreshed, issued invoices left alone): a retry bills nothing twice.
    Returns how many invoices the period has for the reseller's customers now."""
    from billing.invoicing.generate import invoices_generate
    from billing.invoicing.periods import period_parse

    reseller = Reseller.objects.get(pk=reseller_id)
    result = invoices_generate(
        reseller=reseller,
        period=period_parse(period),
        now=_now(now_iso),
        finalize=finalize,
        actor=actor,
    )
    return len(result.invoice_ids)


# --- traffic policy (issue 16 item 5) -------------------------------------------------------


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def traffic_policy_apply_all_task(
    upstream_account_id: int | None = None, now_iso: str | None = None
) -> int:
    """Every 5 minutes (and after a traffic refresh, for that upstream account's customers):
    one `traffic_policy_apply_task` per active customer on the credit-limit policy."""
    from billing.traffic_policy import customers_on_credit_limit

    now = _now(now_iso).isoformat()
    ids = customers_on_credit_limit(upstream_account_id=upstream_account_id)
    for customer_id in ids:
        traffic_policy_apply_task.delay(customer_id, now)
    return len(ids)


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **RECORD_TIME_LIMITS)
def traffic_policy_apply_task(customer_id: int, now_iso: str | None = None) -> dict:
    """Top up one customer's sub-accounts within its credit limit (decided under its row
    lock: a duplicate run allocates nothing more)."""
    from billing.traffic_policy import customer_traffic_policy_apply

    customer = Customer.objects.select_related("reseller").filter(pk=customer_id).first()
    if customer is None:
        return {"customer": customer_id, "skipped": "not_found"}
    return customer_traffic_policy_apply(customer=customer, now=_now(now_iso)).as_dict()


@shared_task(**EMAIL_SEND_TASK_OPTIONS)
def credit_limit_email_send_task(delivery_id: int) -> str:
    """Send one credit-limit email at most once (nothing once that reaching is over)."""
    from billing.traffic_policy.notice import credit_limit_email_send

    return credit_limit_email_send(delivery_id=delivery_id, now=timezone.now())


# --- overdue suspension (issue 16 item 6) ---------------------------------------------------


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def customers_suspend_overdue_task(now_iso: str | None = None) -> dict:
    """Every 15 minutes: suspend customers with an invoice overdue by their reseller's
    `suspend_after_overdue_days`, reinstate those the rule suspended that owe nothing overdue
    any more (`billing.overdue_suspension`)."""
    from billing.overdue_suspension import customers_suspend_overdue

    return customers_suspend_overdue(now=_now(now_iso)).as_dict()


@shared_task(**DATABASE_RETRY_TASK_OPTIONS, **FANOUT_TIME_LIMITS)
def invoices_dunning_task(now_iso: str | None = None) -> dict:
    """Every 15 minutes, every reseller: mark invoices overdue and queue the payment
    reminders whose day has come (`billing.dunning`). Returns the counts."""
    from accounts.models import Reseller
    from billing.dunning import invoices_dunning_run

    now = _now(now_iso)
    overdue = reminders = 0
    for reseller in Reseller.objects.order_by("pk"):
        result = invoices_dunning_run(reseller=reseller, now=now)
        overdue += len(result.overdue)
        reminders += len(result.reminders)
    return {"overdue": overdue, "reminders": reminders}
