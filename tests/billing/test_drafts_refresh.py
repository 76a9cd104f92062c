"""Drafts follow usage synced during the grace period (`invoice_drafts_refresh_task`)."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.refresh import invoice_drafts_refresh
from billing.models import Invoice, InvoiceLine
from billing.tasks import invoice_drafts_refresh_task
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage, in_thread
from usage.models import UsageDay
from usage.services import usage_sync_sub_account
from usage.simulator import SimulatorConfig, start_simulator

GIB = 1_073_741_824
OCT = dt.date(2026, 10, 1)
# October in Asia/Shanghai: [2026-09-30 16:00Z, 2026-10-31 16:00Z). The default grace of two
# days ends at local midnight on November 3rd, 2026-11-02 16:00Z.
OCT_START = dt.datetime(2026, 9, 30, 16, tzinfo=dt.UTC)
OCT_END = dt.datetime(2026, 10, 31, 16, tzinfo=dt.UTC)
IN_GRACE = dt.datetime(2026, 11, 1, 18, tzinfo=dt.UTC)
GRACE_OVER = dt.datetime(2026, 11, 2, 16, tzinfo=dt.UTC)
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}


@pytest.fixture
def shanghai(db):
    """A Shanghai customer on 2.50 per GB (no allowance, no base fee), one sub-account."""
    reseller = factories.ResellerFactory(timezone="Asia/Shanghai")
    customer = factories.CustomerFactory(reseller=reseller)
    plan = PlanFactory(reseller=reseller, base_fee=Decimal(0), tiers=[(None, Decimal("2.50"))])
    SubscriptionFactory(customer=customer, plan=plan)
    return customer


def test_the_after_sync_setting_names_the_refresh_task():
    assert "billing.tasks.invoice_drafts_refresh_task" in django_settings.FLOWBILL_AFTER_SYNC_TASKS


def test_usage_revision_synced_during_grace_changes_the_drafts_total(
    shanghai, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(timezone, "now", lambda: IN_GRACE)  # the task reads the clock
    config = SimulatorConfig(seed=11, now=IN_GRACE, rate_limit_enabled=False)
    with start_simulator(port=0, config=config) as sim:
        upstream = factories.UpstreamAccountFactory(
            reseller=shanghai.reseller, base_url=sim.url, credentials=CREDS
        )
        sa = factories.SubAccountFactory(
            customer=shanghai, upstream_account=upstream, upstream_id="SIM00001"
        )
        run = usage_sync_sub_account(sub_account=sa, start=OCT_START, end=OCT_END, now=IN_GRACE)
        assert run.status == "succeeded", run.error
        invoices_generate_for_period(reseller=shanghai.reseller, period_start=OCT, now=IN_GRACE)
        draft = Invoice.objects.get(customer=shanghai)
        before = draft.total
        # The upstream revises October 20th, 03:00Z upwards by 1024 MB = exactly 1 GiB.
        hour = dt.datetime(2026, 10, 20, 3, tzinfo=dt.UTC)
        old = sim.expected_hourly_flows(
            account="SIM00001", start=hour, end=hour + dt.timedelta(hours=1)
        )[hour]
        sim.revise(account="SIM00001", hour=hour, flow=str(Decimal(old) + 1024))
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            run = usage_sync_sub_account(sub_account=sa, start=OCT_START, end=OCT_END, now=IN_GRACE)
        assert run.status == "succeeded", run.error
        assert callbacks  # the after-sync tasks were queued on commit
    draft.refresh_from_db()
    assert draft.status == "draft"
    assert draft.total - before == Decimal("2.50")
    usage_line = draft.lines.get(kind="usage")
    assert usage_line.details["usage_bytes"] == sum(
        UsageDay.objects.filter(sub_account=sa).values_list("bytes", flat=True)
    )


def _october_draft(customer, gib_per_day):
    sa = factories.SubAccountFactory(customer=customer)
    add_usage(sa, OCT, 31, gib_per_day)
    invoices_generate_for_period(reseller=customer.reseller, period_start=OCT, now=IN_GRACE)
    return Invoice.objects.get(customer=customer), sa


def test_refresh_in_grace_is_idempotent(shanghai):
    draft, sa = _october_draft(shanghai, 2)  # 62 GiB x 2.50 = 155.00
    assert draft.total == Decimal("155.00")
    UsageDay.objects.filter(sub_account=sa, day=dt.date(2026, 10, 31)).update(bytes=6 * GIB)
    assert invoice_drafts_refresh_task(customer_id=shanghai.pk, now_iso=IN_GRACE.isoformat()) == 1
    lines = list(InvoiceLine.objects.filter(invoice=draft).values_list("pk", "amount"))
    assert [amount for _, amount in lines] == [Decimal("165.00")]
    assert invoice_drafts_refresh_task(customer_id=shanghai.pk, now_iso=IN_GRACE.isoformat()) == 1
    assert list(InvoiceLine.objects.filter(invoice=draft).values_list("pk", "amount")) == lines
    draft.refresh_from_db()
    assert draft.total == Decimal("165.00")


def test_drafts_past_grace_and_issued_invoices_are_left_alone(shanghai):
    draft, sa = _october_draft(shanghai, 2)
    UsageDay.objects.filter(sub_account=sa, day=dt.date(2026, 10, 31)).update(bytes=6 * GIB)
    assert invoice_drafts_refresh(customer=shanghai, now=GRACE_OVER) == []
    draft.refresh_from_db()
    assert draft.total == Decimal("155.00")  # finalization re-rates it, not the refresh
    invoice_finalize(invoice=draft, now=GRACE_OVER, send_email=False)
    UsageDay.objects.filter(sub_account=sa, day=dt.date(2026, 10, 30)).update(bytes=9 * GIB)
    assert invoice_drafts_refresh(customer=shanghai, now=IN_GRACE) == []
    draft.refresh_from_db()
    assert (draft.status, draft.total) == ("finalized", Decimal("165.00"))


def test_a_customer_deleted_since_the_sync_refreshes_nothing(db):
    assert invoice_drafts_refresh_task(customer_id=987654) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_and_finalizing_at_once_leave_one_consistent_invoice():
    reseller = factories.ResellerFactory(timezone="Asia/Shanghai")
    plan = PlanFactory(reseller=reseller, base_fee=Decimal(0), tiers=[(None, Decimal("2.50"))])
    customer = factories.CustomerFactory(reseller=reseller)
    SubscriptionFactory(customer=customer, plan=plan)
    draft, sa = _october_draft(customer, 2)
    UsageDay.objects.filter(sub_account=sa, day=dt.date(2026, 10, 31)).update(bytes=6 * GIB)
    barrier = threading.Barrier(3)
    refresh = in_thread(barrier, lambda: invoice_drafts_refresh(customer=customer, now=IN_GRACE))
    finalize = in_thread(
        barrier, lambda: invoice_finalize(invoice=draft, now=GRACE_OVER, send_email=False)
    )
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(refresh), pool.submit(refresh), pool.submit(finalize)]
        [f.result() for f in futures]
    draft.refresh_from_db()
    assert (draft.status, draft.total) == ("finalized", Decimal("165.00"))
    assert list(draft.lines.values_list("amount", flat=True)) == [Decimal("165.00")]
