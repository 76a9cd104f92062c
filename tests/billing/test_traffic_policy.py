"""Exposure and the credit-limit traffic policy (issue 16 item 5), with real figures.

The plan is the graduated factory plan (USD, base 10.00, first 100 GB free, then 2.50 per
GB; 1 GB = 2^30 bytes), so every figure below can be checked by hand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from accounts.models import Customer
from accounts.services import customer_update
from billing.admin import exposure_panel
from billing.balance.services import balance_adjust
from billing.credit_notes.services import credit_note_create
from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.finalizing import invoice_finalize
from billing.models import CreditLimitEmail, Invoice
from billing.payments.services import invoice_mark_paid
from billing.topups.services import top_up_create
from billing.traffic_policy import customer_exposure, customer_traffic_policy_apply
from billing.traffic_policy.notice import credit_limit_email_send
from config.celery import app as celery_app
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import Allocation, SubAccountTraffic
from webhooks.models import WebhookEndpoint, WebhookEvent

GIB = 1_073_741_824
MIB = 1_048_576
FEB = dt.date(2026, 2, 1)
MAR = dt.date(2026, 3, 1)
NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
ISSUED_AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


@pytest.fixture
def shop(reseller):
    """A customer on the graduated plan with one open IPFoxy sub-account."""
    customer = factories.CustomerFactory(reseller=reseller)
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    sub = factories.SubAccountFactory(
        customer=customer, upstream_account=upstream, upstream_id="FBPOLICY00001"
    )
    return customer, sub


def traffic(sub, remaining: int, *, as_of=NOW - dt.timedelta(minutes=3)) -> None:
    SubAccountTraffic.objects.update_or_create(
        sub_account=sub,
        defaults={
            "allocated_bytes": remaining,
            "used_bytes": 0,
            "remaining_bytes": remaining,
            "upstream_enabled": True,
            "as_of": as_of,
        },
    )


def allocation(sub, nbytes: int, status: str, *, at=NOW, confirmed_at=None) -> Allocation:
    return Allocation.objects.create(
        sub_account=sub,
        idempotency_key=f"k{Allocation.objects.count():011d}",
        bytes=nbytes,
        flow_mb=nbytes // MIB,
        status=status,
        created_by="login alice",
        next_attempt_at=at,
        created_at=at,
        confirmed_at=confirmed_at,
    )


def finalized_february(customer, sub) -> Invoice:
    """140 GiB in February: 40 GB over the free 100 at 2.50 = 100.00 + base 10.00."""
    add_usage(sub, FEB, 28, 5)
    invoices_generate_for_period(
        reseller=customer.reseller, period_start=FEB, now=ISSUED_AT, customer=customer
    )
    draft = Invoice.objects.get(customer=customer, period_start=FEB)
    return invoice_finalize(invoice=draft, now=ISSUED_AT, send_email=False)


def on_credit_limit(customer, limit: str, *, chunk=10 * GIB, below=2 * GIB) -> Customer:
    customer_update(
        customer=customer,
        traffic_policy="credit_limit",
        credit_limit=Decimal(limit),
        topup_bytes=chunk,
        topup_below_bytes=below,
    )
    return customer


# --- exposure -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_exposure_adds_balance_due_net_of_credit_usage_so_far_and_unused_traffic(shop):
    customer, sub = shop
    invoice = finalized_february(customer, sub)
    assert invoice.total == Decimal("110.00")
    credit_note_create(invoice=invoice, now=ISSUED_AT, amount=Decimal("30.00"), send_email=False)
    add_usage(sub, MAR, 9, 15)  # 135 GiB so far: 35 GB x 2.50 + 10.00 = 97.50
    traffic(sub, 10 * GIB)
    allocation(sub, 5 * GIB, "pending")
    # Already in the stored figure (confirmed before it was read): not counted again.
    allocation(sub, 7 * GIB, "confirmed", at=NOW - dt.timedelta(hours=2),
               confirmed_at=NOW - dt.timedelta(hours=1))  # fmt: skip

    exposure = customer_exposure(customer=customer, now=NOW)

    assert exposure.currency == "USD"
    assert exposure.balance_due == Decimal("80.00")  # 110.00 - 30.00 credited
    assert exposure.unissued == Decimal("0")  # February is issued
    assert exposure.usage_so_far == Decimal("97.50")
    # 15 GiB unused on top of 135: 150 GiB = 50 GB x 2.50 + 10.00 = 135.00, i.e. 37.50 more.
    assert exposure.unused_bytes == 15 * GIB
    assert exposure.unused_traffic == Decimal("37.50")
    assert exposure.total == Decimal("215.00")


@pytest.mark.django_db
def test_unused_traffic_is_priced_by_the_plan_tiers_it_falls_into(shop):
    customer, sub = shop
    add_usage(sub, MAR, 9, 10)  # 90 GiB: still in the free 100
    traffic(sub, 20 * GIB)  # 10 GiB of it free, 10 GiB at 2.50
    exposure = customer_exposure(customer=customer, now=NOW)
    assert exposure.usage_so_far == Decimal("10.00")
    assert exposure.unused_traffic == Decimal("25.00")


@pytest.mark.django_db
def test_a_paid_invoice_and_a_confirmed_allocation_after_the_figure(shop):
    customer, sub = shop
    invoice = finalized_february(customer, sub)
    invoice_mark_paid(invoice=invoice, now=ISSUED_AT, actor="login alice")
    add_usage(sub, MAR, 9, 12)  # 108 GiB: 8 GB x 2.50 + 10.00 = 30.00
    traffic(sub, 0, as_of=NOW - dt.timedelta(minutes=30))
    allocation(sub, 4 * GIB, "confirmed", at=NOW - dt.timedelta(minutes=20),
               confirmed_at=NOW - dt.timedelta(minutes=10))  # fmt: skip
    exposure = customer_exposure(customer=customer, now=NOW)
    assert exposure.balance_due == Decimal("0")
    assert exposure.usage_so_far == Decimal("30.00")
    assert (exposure.unused_bytes, exposure.unused_traffic) == (4 * GIB, Decimal("10.00"))


@pytest.mark.django_db
def test_the_closed_month_counts_until_its_invoice_is_issued(shop):
    customer, sub = shop
    add_usage(sub, FEB, 28, 5)  # February, no invoice yet: 110.00
    exposure = customer_exposure(customer=customer, now=NOW)
    assert exposure.unissued == Decimal("110.00")
    assert exposure.balance_due == Decimal("0")
    invoices_generate_for_period(
        reseller=customer.reseller, period_start=FEB, now=ISSUED_AT, customer=customer
    )  # a draft still counts as unissued
    assert customer_exposure(customer=customer, now=NOW).unissued == Decimal("110.00")
    invoice_finalize(
        invoice=Invoice.objects.get(customer=customer), now=ISSUED_AT, send_email=False
    )
    exposure = customer_exposure(customer=customer, now=NOW)
    assert (exposure.unissued, exposure.balance_due) == (Decimal("0"), Decimal("110.00"))


@pytest.mark.django_db
def test_a_balance_of_50_in_the_customers_currency_lowers_the_exposure_by_50(shop):
    customer, sub = shop
    finalized_february(customer, sub)  # 110.00 due
    add_usage(sub, MAR, 9, 12)  # 108 GiB: 30.00 so far
    traffic(sub, GIB)  # 2.50 of unused
    before = customer_exposure(customer=customer, now=NOW)
    assert (before.customer_balance, before.total) == (Decimal("0"), Decimal("142.50"))

    balance_adjust(customer=customer, amount="50.00", reason="goodwill", now=NOW)
    balance_adjust(customer=customer, amount="30.00", reason="EUR", currency="EUR", now=NOW)

    after = customer_exposure(customer=customer, now=NOW)
    assert after.customer_balance == Decimal("50.00")  # the EUR balance is not USD credit
    assert (after.balance_due, after.usage_so_far, after.unused_traffic) == (
        Decimal("110.00"),
        Decimal("30.00"),
        Decimal("2.50"),
    )
    assert after.total == Decimal("92.50")
    # The admin's panel shows the same parts, the balance as a credit.
    html = exposure_panel(customer=on_credit_limit(customer, "100.00"), now=NOW).html
    assert 'Customer balance held (prepaid credit)</th><td class="num">-$50.00' in html
    assert "<strong>$92.50</strong> of $100.00 credit limit" in html


@pytest.mark.django_db
def test_an_unpaid_top_up_invoice_is_no_debt_and_once_paid_it_is_credit(shop, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer, sub = shop
    add_usage(sub, MAR, 9, 12)  # 30.00 so far, plus February's base fee 10.00 unissued
    assert customer_exposure(customer=customer, now=NOW).total == Decimal("40.00")

    top_up = top_up_create(customer=customer, amount="100.00", now=NOW, send_email=False)
    invoice = Invoice.objects.get(pk=top_up.invoice_id)
    assert (invoice.kind, invoice.status, invoice.total) == ("top_up", "finalized", 100)

    unpaid = customer_exposure(customer=customer, now=NOW)
    assert (unpaid.balance_due, unpaid.customer_balance) == (Decimal("0"), Decimal("0"))
    assert unpaid.total == Decimal("40.00")

    invoice_mark_paid(invoice=invoice, now=NOW, actor="login alice")
    paid = customer_exposure(customer=customer, now=NOW)
    assert (paid.balance_due, paid.customer_balance) == (Decimal("0"), Decimal("100.00"))
    assert paid.total == Decimal("-60.00")  # 60.00 of credit beyond what is owed


# --- the policy run -------------------------------------------------------------------------


@pytest.fixture
def hooked(reseller):
    """A webhook endpoint listening for the credit-limit event."""
    return WebhookEndpoint.objects.create(
        reseller=reseller,
        url="https://hooks.example.com/flowbill",
        enabled_events=["customer.credit_limit_reached"],
        signing={"secret": "whsec_test"},
    )


def topups(sub) -> list[Allocation]:
    return list(Allocation.objects.filter(sub_account=sub, reason="auto_topup"))


@pytest.mark.django_db
def test_a_sub_account_below_the_mark_gets_one_chunk_and_one_above_gets_none(shop, reseller):
    customer, low = shop
    high = factories.SubAccountFactory(
        customer=customer, upstream_account=low.upstream_account, upstream_id="FBPOLICY00002"
    )
    on_credit_limit(customer, "1000.00")
    traffic(low, 2 * GIB - 1)  # just below the 2 GiB mark
    traffic(high, 2 * GIB)  # at the mark: not below it

    run = customer_traffic_policy_apply(customer=customer, now=NOW)

    [chunk] = topups(low)
    assert (chunk.bytes, chunk.flow_mb, chunk.status) == (10 * GIB, 10240, "pending")
    assert (chunk.created_by, chunk.expires_in_days) == ("system", 0)
    assert topups(high) == []
    assert run.allocated == [chunk.pk] and not run.limit_reached
    # The chunk is in flight: the next run gives nothing more until the figure shows it.
    assert customer_traffic_policy_apply(customer=customer, now=NOW).allocated == []
    assert len(topups(low)) == 1


@pytest.mark.django_db
def test_the_limit_stops_top_ups_announces_once_and_paying_resumes_them(
    shop, hooked, django_capture_on_commit_callbacks
):
    customer, sub = shop
    invoice = finalized_february(customer, sub)  # 110.00 due
    add_usage(sub, MAR, 9, 12)  # 108 GiB: 30.00 so far
    traffic(sub, GIB)  # 1 GiB left, below the 2 GiB mark: 1 GiB more = 2.50 of unused
    # Exposure 142.50; a 10 GiB chunk adds 25.00 -> 167.50, over 150.00.
    on_credit_limit(customer, "150.00")

    with django_capture_on_commit_callbacks(execute=True):
        run = customer_traffic_policy_apply(customer=customer, now=NOW)
    assert run.limit_reached and run.announced and run.allocated == []
    assert run.refused == {sub.pk: "credit_limit_reached"}
    assert topups(sub) == []
    customer.refresh_from_db()
    assert customer.credit_limit_reached_at == NOW
    [event] = WebhookEvent.objects.filter(type="customer.credit_limit_reached")
    assert event.data["credit_limit"] == "150.00"
    assert event.data["exposure"]["total"] == "142.50"
    assert event.data["exposure_with_topup"] == "167.50"
    [email] = mail.outbox
    assert email.to == [customer.email]
    assert "credit limit of 150.00 USD" in email.body
    assert "Unpaid invoices:                 110.00" in email.body
    assert "Total:                           142.50" in email.body

    # A second run, still over: nothing allocated, nothing announced again.
    with django_capture_on_commit_callbacks(execute=True):
        again = customer_traffic_policy_apply(customer=customer, now=NOW + dt.timedelta(minutes=5))
    assert again.limit_reached and not again.announced
    assert WebhookEvent.objects.filter(type="customer.credit_limit_reached").count() == 1
    assert len(mail.outbox) == 1

    # Paying February makes room (32.50 + 25.00 <= 150.00): the chunk goes, reached clears.
    invoice_mark_paid(invoice=invoice, now=NOW, actor="login alice")
    later = NOW + dt.timedelta(minutes=10)
    paid = customer_traffic_policy_apply(customer=customer, now=later)
    assert paid.cleared and len(paid.allocated) == 1
    assert paid.exposure == Decimal("57.50")
    customer.refresh_from_db()
    assert customer.credit_limit_reached_at is None
    assert len(topups(sub)) == 1


@pytest.mark.django_db
def test_a_chunk_that_fits_only_thanks_to_the_balance_is_allocated(shop):
    customer, sub = shop
    finalized_february(customer, sub)  # 110.00 due
    add_usage(sub, MAR, 9, 12)  # 30.00 so far
    traffic(sub, GIB)  # 2.50 of unused: 142.50; with a 10 GiB chunk (25.00) 167.50
    on_credit_limit(customer, "150.00")
    refused = customer_traffic_policy_apply(customer=customer, now=NOW)
    assert refused.refused == {sub.pk: "credit_limit_reached"} and topups(sub) == []

    balance_adjust(customer=customer, amount="20.00", reason="prepaid", now=NOW)

    run = customer_traffic_policy_apply(customer=customer, now=NOW + dt.timedelta(minutes=5))
    assert len(run.allocated) == 1 and run.cleared
    assert run.exposure == Decimal("147.50")  # 167.50 - 20.00, within 150.00
    assert len(topups(sub)) == 1


@pytest.mark.django_db
def test_each_chunk_counts_before_the_next_one(shop):
    customer, first = shop
    second = factories.SubAccountFactory(
        customer=customer, upstream_account=first.upstream_account, upstream_id="FBPOLICY00002"
    )
    add_usage(first, MAR, 9, 12)  # 108 GiB: 30.00
    traffic(first, 0)
    traffic(second, GIB)  # 2.50 of unused: 32.50, plus February's base fee 10.00 unissued
    on_credit_limit(customer, "70.00")  # room for one chunk (67.50), not two (92.50)

    run = customer_traffic_policy_apply(customer=customer, now=NOW)

    assert len(topups(first)) == 1  # the driest first
    assert topups(second) == []
    assert run.refused == {second.pk: "credit_limit_reached"} and run.limit_reached


@pytest.mark.django_db
def test_the_manual_policy_never_tops_up(shop):
    customer, sub = shop
    traffic(sub, 0)
    run = customer_traffic_policy_apply(customer=customer, now=NOW)
    assert run.skipped == "policy_manual" and topups(sub) == []


@pytest.mark.django_db
def test_a_suspended_customer_is_never_topped_up(shop):
    customer, sub = shop
    on_credit_limit(customer, "1000.00")
    traffic(sub, 0)
    Customer.objects.filter(pk=customer.pk).update(
        status="suspended", suspended_at=NOW, suspension_reason="unpaid"
    )
    run = customer_traffic_policy_apply(customer=customer, now=NOW)
    assert run.skipped == "customer_suspended" and topups(sub) == []


@pytest.mark.django_db
def test_blocked_closed_and_unknown_sub_accounts_are_not_topped_up(shop):
    customer, sub = shop
    on_credit_limit(customer, "1000.00")
    blocked = factories.SubAccountFactory(
        customer=customer, upstream_account=sub.upstream_account, upstream_id="FBPOLICY00003"
    )
    blocked.__class__.objects.filter(pk=blocked.pk).update(access="blocked")
    traffic(blocked, 0)
    # `sub` has no stored figure yet: it waits for the traffic refresh.
    run = customer_traffic_policy_apply(customer=customer, now=NOW)
    assert run.candidates == 0 and Allocation.objects.count() == 0


@pytest.mark.django_db
def test_a_chunk_that_is_not_whole_upstream_mb_is_refused(shop):
    customer, sub = shop
    upstream = sub.upstream_account
    upstream.mb_bytes = 1_000_000
    upstream.save()
    on_credit_limit(customer, "1000.00", chunk=10_240 * 1_000_000)  # 10,240 decimal MB
    # With the upstream on decimal MB, 10 GiB is not whole MB: refused at update time ...
    with pytest.raises(ApplicationError) as refused:
        customer_update(customer=customer, topup_bytes=10 * GIB)
    assert refused.value.code == "topup_not_whole_mb"
    assert "topup_bytes" in refused.value.extra["fields"]
    # ... and skipped by the run when the upstream changed after the customer was saved.
    upstream.mb_bytes = MIB
    upstream.save()
    traffic(sub, 0)
    run = customer_traffic_policy_apply(customer=customer, now=NOW)
    assert run.refused == {sub.pk: "topup_not_whole_mb"} and Allocation.objects.count() == 0


@pytest.mark.django_db
def test_the_credit_limit_email_is_one_outbox_row_sent_once_even_when_its_task_runs_twice(
    shop, django_capture_on_commit_callbacks
):
    customer, sub = shop
    finalized_february(customer, sub)
    traffic(sub, GIB)
    on_credit_limit(customer, "100.00")  # 110.00 due already: over

    with django_capture_on_commit_callbacks(execute=False) as queued:
        customer_traffic_policy_apply(customer=customer, now=NOW)
    [delivery] = CreditLimitEmail.objects.filter(customer=customer)
    assert (delivery.status, delivery.reached_at, delivery.recipients) == (
        "queued",
        NOW,
        [customer.email],
    )
    assert len(queued) == 1 and mail.outbox == []

    task = celery_app.tasks["billing.tasks.credit_limit_email_send_task"]
    assert task.apply(args=[delivery.pk]).get() == "sent"
    assert task.apply(args=[delivery.pk]).get() == "sent"  # delivered twice: sent once
    assert len(mail.outbox) == 1
    assert f".creditlimit{delivery.pk}@" in mail.outbox[0].extra_headers["Message-ID"]


@pytest.mark.django_db
def test_a_credit_limit_email_whose_reaching_is_over_is_not_sent(
    shop, django_capture_on_commit_callbacks
):
    customer, sub = shop
    finalized_february(customer, sub)
    traffic(sub, GIB)
    on_credit_limit(customer, "100.00")
    with django_capture_on_commit_callbacks(execute=False):
        customer_traffic_policy_apply(customer=customer, now=NOW)
    Customer.objects.filter(pk=customer.pk).update(credit_limit_reached_at=None)  # room again
    [delivery] = CreditLimitEmail.objects.filter(customer=customer)

    assert credit_limit_email_send(delivery_id=delivery.pk, now=NOW) == "stale"

    delivery.refresh_from_db()
    assert (delivery.status, mail.outbox) == ("failed", [])
    assert delivery.last_error.startswith("not sent: the credit limit was no longer reached")
