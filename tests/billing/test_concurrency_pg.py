"""Locking and constraints under real concurrency (PostgreSQL, threads)."""

import contextlib
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.finalizing import invoice_finalize
from billing.models import Invoice
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage, in_thread

OCT = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 5, tzinfo=dt.UTC)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _customers(reseller, n):
    plan = PlanFactory(reseller=reseller)
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    out = []
    for _ in range(n):
        customer = factories.CustomerFactory(reseller=reseller)
        SubscriptionFactory(customer=customer, plan=plan)
        sa = factories.SubAccountFactory(customer=customer, upstream_account=upstream)
        add_usage(sa, OCT, 31, 4)
        out.append(customer)
    return out


def test_two_concurrent_runs_create_one_invoice_per_customer_and_period():
    reseller = factories.ResellerFactory()
    customers = _customers(reseller, 6)
    barrier = threading.Barrier(2)
    job = in_thread(
        barrier,
        lambda: invoices_generate_for_period(reseller=reseller, period_start=OCT, now=NOW),
    )
    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(job), pool.submit(job)]]
    assert Invoice.objects.count() == len(customers)
    assert sorted(results[0].created + results[1].created) == sorted(
        Invoice.objects.values_list("pk", flat=True)
    )


def test_concurrent_finalizations_get_consecutive_numbers_without_gaps():
    reseller = factories.ResellerFactory(invoice_prefix="ACME")
    _customers(reseller, 8)
    invoices_generate_for_period(reseller=reseller, period_start=OCT, now=NOW)
    ids = list(Invoice.objects.values_list("pk", flat=True))
    barrier = threading.Barrier(len(ids))

    def finalize(pk):
        return in_thread(
            barrier,
            lambda: (
                invoice_finalize(
                    invoice=Invoice.objects.get(pk=pk), now=NOW, send_email=False
                ).number
            ),
        )

    with ThreadPoolExecutor(len(ids)) as pool:
        numbers = [f.result() for f in [pool.submit(finalize(pk)) for pk in ids]]
    assert sorted(numbers) == [f"ACME-2026-{n:05d}" for n in range(1, len(ids) + 1)]


def test_two_concurrent_finalizations_of_one_invoice_issue_it_once():
    reseller = factories.ResellerFactory(invoice_prefix="ONE")
    _customers(reseller, 1)
    invoices_generate_for_period(reseller=reseller, period_start=OCT, now=NOW)
    pk = Invoice.objects.get().pk
    barrier = threading.Barrier(2)
    outcomes = []

    def attempt():
        try:
            invoice_finalize(invoice=Invoice.objects.get(pk=pk), now=NOW, send_email=False)
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(getattr(exc, "code", repr(exc)))

    job = in_thread(barrier, attempt)
    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(job), pool.submit(job)]:
            f.result()
    assert sorted(outcomes) == ["invoice_not_draft", "ok"]
    assert Invoice.objects.get().number == "ONE-2026-00001"


def test_concurrent_finalizations_of_one_customer_bill_a_late_adjustment_once(monkeypatch):
    """Both finalizations are held just before numbering (after rating) until the other one
    arrives or 2 s pass: without the per-customer lock both would rate the adjustment."""
    from billing.invoicing import engine
    from billing.invoicing.cycle import invoice_create_draft
    from usage.models import UsageDay

    reseller = factories.ResellerFactory()
    (customer,) = _customers(reseller, 1)  # October: 31 x 4 = 124 GiB
    october, _ = invoice_create_draft(customer=customer, period_start=OCT, now=NOW)
    invoice_finalize(invoice=october, now=NOW, send_email=False)
    UsageDay.objects.filter(day=dt.date(2026, 10, 31)).update(bytes=14 * 1_073_741_824)  # +10
    later = dt.datetime(2027, 1, 5, tzinfo=dt.UTC)
    drafts = [
        invoice_create_draft(customer=customer, period_start=start, now=later)[0].pk
        for start in (dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    ]
    rendezvous = threading.Barrier(2)
    real_next = engine.invoice_numbers_next

    def held_next(**kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            rendezvous.wait(timeout=2)
        return real_next(**kwargs)

    monkeypatch.setattr(engine, "invoice_numbers_next", held_next)
    start = threading.Barrier(2)

    def finalize(pk):
        return in_thread(
            start,
            lambda: invoice_finalize(
                invoice=Invoice.objects.get(pk=pk), now=later, send_email=False
            ),
        )

    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(finalize(pk)) for pk in drafts]:
            f.result()
    amounts = [
        line.amount
        for pk in drafts
        for line in Invoice.objects.get(pk=pk).lines.filter(kind="adjustment")
    ]
    assert amounts == [Decimal("25.00")]  # 10 GiB x 2.50, on exactly one invoice


def test_two_concurrent_issues_of_one_month_make_one_numbered_invoice():
    from billing.invoicing.issuing import invoice_issue

    reseller = factories.ResellerFactory(invoice_prefix="ISS")
    (customer,) = _customers(reseller, 1)
    barrier = threading.Barrier(2)
    job = in_thread(
        barrier,
        lambda: invoice_issue(customer=customer, period_start=OCT, now=NOW, send_email=False),
    )
    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(f.result()[1] for f in [pool.submit(job), pool.submit(job)])
    assert outcomes == [False, True]
    assert list(Invoice.objects.values_list("number", flat=True)) == ["ISS-2026-00001"]


def test_two_workers_reissuing_a_voided_month_make_one_new_live_invoice(settings, tmp_path):
    """Void SH-2026-00002, then two workers reissue October for it at once: one new invoice
    numbered 00004 (after the three issued), the other gets it back; no number skipped."""
    from billing.invoicing.issuing import invoice_reissue, invoices_issue_for_period
    from billing.invoicing.voiding import invoice_void

    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(invoice_prefix="SH")
    customers = _customers(reseller, 3)
    invoices_issue_for_period(reseller=reseller, period_start=OCT, now=NOW, send_email=False)
    voided = invoice_void(invoice=Invoice.objects.get(number="SH-2026-00002"), now=NOW)
    barrier = threading.Barrier(2)
    job = in_thread(
        barrier, lambda: invoice_reissue(invoice=voided, now=NOW, actor="ops", send_email=False)
    )
    with ThreadPoolExecutor(2) as pool:
        outcomes = [f.result() for f in [pool.submit(job), pool.submit(job)]]
    assert sorted(created for _, created in outcomes) == [False, True]
    assert {invoice.pk for invoice, _ in outcomes} == {
        Invoice.objects.get(customer=customers[1], status="finalized").pk
    }
    assert list(
        Invoice.objects.order_by("sequence_number").values_list("number", "status", "total")
    ) == [
        ("SH-2026-00001", "finalized", Decimal("70.00")),
        ("SH-2026-00002", "void", Decimal("70.00")),
        ("SH-2026-00003", "finalized", Decimal("70.00")),
        ("SH-2026-00004", "finalized", Decimal("70.00")),
    ]


@pytest.mark.parametrize("first", ["discard", "finalize", "race"])
def test_discarding_a_draft_while_the_cycle_finalizes_it_does_one_or_the_other(
    first, monkeypatch, settings, tmp_path
):
    """Staff discard a draft while the cycle finalizes the due drafts. Whoever locks the draft
    first wins: discarded (never numbered) or finalized (the discard refused with
    `invoice_not_draft`); the others' numbers stay gapless either way. `discard`/`finalize`:
    that side holds the row lock before the other starts; `race`: both start together."""
    from billing.invoicing import cycle, finalizing
    from billing.invoicing.cycle import invoice_draft_discard
    from billing.invoicing.finalizing import invoices_finalize_due

    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(invoice_prefix="DC")
    _customers(reseller, 4)
    invoices_generate_for_period(reseller=reseller, period_start=OCT, now=NOW)
    target = Invoice.objects.order_by("customer_id")[1]
    holds = threading.Event()
    if first != "race":
        module = cycle if first == "discard" else finalizing
        real_lock = module.lock_drafts

        def lock_then_signal(ids):
            rows = real_lock(ids)
            holds.set()
            return rows

        monkeypatch.setattr(module, "lock_drafts", lock_then_signal)
    else:
        holds.set()
    barrier = threading.Barrier(2)

    def discard():
        if first == "finalize":
            holds.wait(timeout=10)
        try:
            invoice_draft_discard(invoice=target, actor="alice", now=NOW)
        except ApplicationError as exc:
            return exc.code
        return "discarded"

    def finalize():
        if first == "discard":
            holds.wait(timeout=10)
        return invoices_finalize_due(reseller=reseller, now=NOW, send_email=False)

    with ThreadPoolExecutor(2) as pool:
        f_discard = pool.submit(in_thread(barrier, discard))
        f_finalize = pool.submit(in_thread(barrier, finalize))
        outcome, result = f_discard.result(), f_finalize.result()
    numbers = sorted(Invoice.objects.values_list("sequence_number", flat=True))
    if first != "race":
        assert outcome == ("discarded" if first == "discard" else "invoice_not_draft")
    if outcome == "discarded":
        assert not Invoice.objects.filter(pk=target.pk).exists()
        assert numbers == [1, 2, 3]
        assert [f.invoice_id for f in result.not_draft] in ([], [target.pk])
        assert target.pk not in result.finalized
    else:
        assert outcome == "invoice_not_draft"
        assert Invoice.objects.get(pk=target.pk).status == "finalized"
        assert numbers == [1, 2, 3, 4]
    assert result.failed == []
