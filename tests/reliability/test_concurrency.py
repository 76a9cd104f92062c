"""Eight workers syncing and closing the month at once converge to exactly what one worker
produces, row by row, over 200 customers.

Two identical worlds (same customer names, plans and upstream sub-account names, so the
simulator reports the same traffic for both) run the same task messages: world A in one
worker, in the natural order (syncs, then the hourly cycles); world B in 8 worker threads,
each with its own database connection, the messages shuffled, with the beat's cycle task
duplicated (as a redelivery would) and a finalize task per draft racing the cycle's own
finalization. Tasks are called as the worker calls them (ids and ISO strings in).
"""

from __future__ import annotations

import datetime as dt
import queue
import random
import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection

from billing import tasks as billing_tasks
from billing.models import Invoice, InvoiceEvent, InvoiceLine, InvoiceSequence, InvoiceUsage
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory
from tests.reliability import tally
from tests.reliability.conftest import IPFOXY_CREDENTIALS, start_sim
from usage import tasks as usage_tasks
from usage.models import UsageDay, UsageHour
from usage.services.requests import sync_window

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CUSTOMERS = 200
WORKERS = 8
SYNCED_AT = dt.datetime(2026, 4, 1, 2, 30, tzinfo=dt.UTC)  # March just closed, in grace
CLOSED_AT = dt.datetime(2026, 4, 3, 6, tzinfo=dt.UTC)  # grace over: drafts are finalized


def _world(sim, tag: str):
    reseller = factories.ResellerFactory(name=f"World {tag}", invoice_prefix=f"W{tag}")
    upstream = factories.UpstreamAccountFactory(
        reseller=reseller, name="IPFoxy", base_url=sim.url, credentials=IPFOXY_CREDENTIALS,
        requests_per_minute=100_000,
    )  # fmt: skip
    plans = [
        PlanFactory(reseller=reseller, code="graduated", name="Graduated"),
        PlanFactory(
            reseller=reseller,
            code="volume",
            name="Volume",
            pricing_model="volume",
            tiers=[(Decimal("50"), Decimal("3.00")), (None, Decimal("1.75"))],
        ),
    ]
    subs = []
    for i in range(CUSTOMERS):
        customer = factories.CustomerFactory(
            reseller=reseller, name=f"Customer {i:03d}", email=f"c{i}@example.com"
        )
        SubscriptionFactory(customer=customer, plan=plans[i % 2])
        subs.append(
            factories.SubAccountFactory(
                customer=customer,
                upstream_account=upstream,
                upstream_id=f"SIM{i + 1:05d}",
                label=f"proxy {i:03d}",
            )
        )
    return reseller, subs


def _phase_one(reseller, subs) -> list[tuple]:
    """The hourly beat at SYNCED_AT: every sub-account's trailing window, and the cycle."""
    start, end = sync_window(now=SYNCED_AT)
    window = (start.isoformat(), end.isoformat(), SYNCED_AT.isoformat())
    syncs = [(usage_tasks.usage_sync_sub_account_task, sub.pk, *window) for sub in subs]
    return [*syncs, (billing_tasks.invoice_cycle_reseller_task, reseller.pk, SYNCED_AT.isoformat())]


def _phase_two(reseller) -> list[tuple]:
    cycle = (billing_tasks.invoice_cycle_reseller_task, reseller.pk, CLOSED_AT.isoformat())
    return [cycle]


def _run_alone(messages) -> None:
    for task, *args in messages:
        task(*args)


def _run_concurrently(messages, *, seed: int) -> None:
    """Run `messages` in WORKERS threads; any task that raises fails the drill (a task that
    loses a race to another worker must end as done, not as an error)."""
    messages = list(messages)
    random.Random(seed).shuffle(messages)
    work: queue.SimpleQueue = queue.SimpleQueue()
    for message in messages:
        work.put(message)
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def worker() -> None:
        try:
            start.wait()
            while True:
                try:
                    task, *args = work.get_nowait()
                except queue.Empty:
                    return
                task(*args)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def _usage_rows(subs) -> list:
    rows = []
    for i, sub in enumerate(subs):
        hours = UsageHour.objects.filter(sub_account=sub).order_by("hour_start")
        days = UsageDay.objects.filter(sub_account=sub).order_by("day")
        rows.append(
            (
                i,
                list(hours.values_list("hour_start", "bytes", "raw_value", "raw_unit", "revision")),
                list(days.values_list("day", "bytes", "revision")),
            )
        )
    return rows


_INVOICE = ("status", "period_start", "period_end", "currency", "tax_rate", "subtotal", "tax",
            "total", "issued_on", "due_on", "layout_version")  # fmt: skip
_LINE = ("position", "kind", "description", "amount", "group", "quantity", "unit", "unit_price",
         "details")  # fmt: skip
_USAGE = ("sub_account_label", "upstream_name", "bytes")


def _invoice_rows(reseller) -> tuple[list, list[int]]:
    """Per customer (by name): the invoice, its lines and usage, without ids and number."""
    rows, numbers = [], []
    invoices = Invoice.objects.filter(reseller=reseller).select_related("customer")
    for invoice in invoices.order_by("customer__name"):
        numbers.append(invoice.sequence_number)
        lines = InvoiceLine.objects.filter(invoice=invoice).order_by("position")
        usage = InvoiceUsage.objects.filter(invoice=invoice).order_by("sub_account_label")
        rows.append(
            (
                invoice.customer.name,
                tuple(getattr(invoice, f) for f in _INVOICE),
                invoice.snapshot["buyer"],
                list(lines.values_list(*_LINE)),
                list(usage.values_list(*_USAGE)),
                InvoiceEvent.objects.filter(invoice=invoice, to_status="finalized").count(),
                bool(invoice.pdf),
            )
        )
    return rows, numbers


def test_eight_workers_syncing_and_closing_at_once_match_one_worker_row_by_row(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    with start_sim(SYNCED_AT) as sim:
        alone, alone_subs = _world(sim, "A")
        crowd, crowd_subs = _world(sim, "B")

        _run_alone(_phase_one(alone, alone_subs))
        sim.set_clock(now=CLOSED_AT)
        _run_alone(_phase_two(alone))
        alone_mail = len(mail.outbox)

        sim.set_clock(now=SYNCED_AT)
        # The cycle runs three times (a duplicate beat, a redelivery) while syncs are running.
        phase_one = _phase_one(crowd, crowd_subs)
        _run_concurrently(phase_one + phase_one[-1:] * 2, seed=1)
        sim.set_clock(now=CLOSED_AT)
        drafts = list(Invoice.objects.filter(reseller=crowd).values_list("pk", flat=True))
        assert len(drafts) == CUSTOMERS
        finalizers = [
            (billing_tasks.invoice_finalize_task, pk, CLOSED_AT.isoformat()) for pk in drafts
        ]
        _run_concurrently(_phase_two(crowd) * 4 + finalizers, seed=2)
        crowd_mail = len(mail.outbox) - alone_mail

    alone_usage, crowd_usage = _usage_rows(alone_subs), _usage_rows(crowd_subs)
    assert crowd_usage == alone_usage
    assert sum(len(hours) for _, hours, _ in alone_usage) == CUSTOMERS * 73

    alone_invoices, alone_numbers = _invoice_rows(alone)
    crowd_invoices, crowd_numbers = _invoice_rows(crowd)
    assert len(alone_invoices) == CUSTOMERS
    for alone_row, crowd_row in zip(alone_invoices, crowd_invoices, strict=True):
        assert crowd_row == alone_row
    assert {row[1][0] for row in crowd_invoices} == {"finalized"}
    # Numbers: the same gapless set 1..200 (who gets which depends on the race).
    assert alone_numbers == list(range(1, CUSTOMERS + 1))
    assert sorted(crowd_numbers) == list(range(1, CUSTOMERS + 1))
    for reseller in (alone, crowd):
        assert InvoiceSequence.objects.get(reseller=reseller).last_number == CUSTOMERS
    assert alone_mail == crowd_mail == CUSTOMERS  # one email per invoice, never two

    compared = sum(len(h) + len(d) for _, h, d in crowd_usage) + sum(
        1 + len(row[3]) + len(row[4]) for row in crowd_invoices
    )
    tally.add("rows_compared", compared)


def test_finalize_task_that_loses_the_race_is_a_no_op(monkeypatch, settings, tmp_path):
    """Deterministic replay of a race the 8-worker drill found (fixed): the cycle finalizes
    the invoice between the task's read and its lock."""
    from billing.invoicing.cycle import invoices_generate_for_period
    from billing.invoicing.finalizing import invoice_finalize

    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller)
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    invoices_generate_for_period(reseller=reseller, period_start=dt.date(2026, 3, 1), now=CLOSED_AT)
    invoice = Invoice.objects.get(reseller=reseller)

    def cycle_wins_first(*, invoice, now, **kwargs):
        invoice_finalize(invoice=Invoice.objects.get(pk=invoice.pk), now=now)  # the winner
        return invoice_finalize(invoice=invoice, now=now, **kwargs)  # the task's own call

    monkeypatch.setattr(billing_tasks, "invoice_finalize", cycle_wins_first)
    billing_tasks.invoice_finalize_task(invoice.pk, CLOSED_AT.isoformat())
    invoice.refresh_from_db()
    assert (invoice.status, invoice.sequence_number) == ("finalized", 1)


def test_cycle_skips_a_draft_finalized_while_it_runs(monkeypatch, settings, tmp_path):
    """Deterministic replay of the other race the 8-worker drill found (fixed): a finalize
    task finalizes a draft between the cycle's listing of the drafts and its refresh."""
    from billing.invoicing import cycle
    from billing.invoicing.cycle import invoices_generate_for_period
    from billing.invoicing.finalizing import invoice_finalize

    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller)
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    invoices_generate_for_period(reseller=reseller, period_start=dt.date(2026, 3, 1), now=SYNCED_AT)
    real_refresh = cycle.invoice_refresh_or_discard

    def finalized_meanwhile(*, invoice, now):
        invoice_finalize(invoice=Invoice.objects.get(pk=invoice.pk), now=CLOSED_AT)
        return real_refresh(invoice=invoice, now=now)

    monkeypatch.setattr(cycle, "invoice_refresh_or_discard", finalized_meanwhile)
    billing_tasks.invoice_cycle_reseller_task(
        reseller.pk, (SYNCED_AT + dt.timedelta(hours=1)).isoformat()
    )
    assert Invoice.objects.get(reseller=reseller).status == "finalized"
