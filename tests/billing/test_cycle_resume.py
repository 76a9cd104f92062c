"""A cycle run delivered again (same `now`, after a worker kill) resumes where it stopped:
drafts the killed run rated are not rated again, unless their usage changed since."""

import datetime as dt
from decimal import Decimal

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from billing.invoicing import cycle
from billing.invoicing.cycle import invoice_cycle_run
from billing.models import Invoice
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import UsageDay

OCT = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 1, 12, 17, tzinfo=dt.UTC)  # in October's grace period
GIB = 1_073_741_824


@pytest.fixture
def two_customers(reseller, upstream_account):
    """Two customers on 10.00 base + 100 GB free + 2.50/GB, 5 GiB a day all October, the
    usage synced an hour before the cycle."""
    plan = PlanFactory(reseller=reseller)
    customers = []
    for name in ("Alpha", "Beta"):
        customer = factories.CustomerFactory(reseller=reseller, name=name)
        SubscriptionFactory(customer=customer, plan=plan)
        sub_account = factories.SubAccountFactory(
            customer=customer, upstream_account=upstream_account
        )
        add_usage(sub_account, OCT, 31, 5)
        customers.append(customer)
    UsageDay.objects.update(updated_at=NOW - dt.timedelta(hours=1))
    return customers


@pytest.fixture
def rated(monkeypatch):
    """The customer ids rated for a draft (created or re-rated), in order."""
    calls: list[int] = []
    compute = cycle.invoice_compute

    def spy(*, customer, **kwargs):
        calls.append(customer.pk)
        return compute(customer=customer, **kwargs)

    monkeypatch.setattr(cycle, "invoice_compute", spy)
    return calls


def _killed_after_first_draft(monkeypatch):
    """The next cycle run is cut (a soft time limit) right after its first draft."""
    create = cycle.invoice_create_draft
    created: list[int] = []

    def cut(**kwargs):
        if created:
            raise SoftTimeLimitExceeded()
        invoice, was_created = create(**kwargs)
        created.append(invoice.pk)
        return invoice, was_created

    monkeypatch.setattr(cycle, "invoice_create_draft", cut)
    return lambda: monkeypatch.setattr(cycle, "invoice_create_draft", create)


def test_a_cycle_delivered_again_does_not_rerate_the_draft_the_killed_run_made(
    two_customers, rated, monkeypatch
):
    alpha, beta = two_customers
    restore = _killed_after_first_draft(monkeypatch)
    with pytest.raises(SoftTimeLimitExceeded):
        invoice_cycle_run(reseller=alpha.reseller, now=NOW)
    assert rated == [alpha.pk]
    restore()

    result = invoice_cycle_run(reseller=alpha.reseller, now=NOW)

    assert rated == [alpha.pk, beta.pk]  # Beta drafted; Alpha's draft left as it was
    alpha_draft = Invoice.objects.get(customer=alpha)
    assert result.generated.resumed == [alpha_draft.pk] and result.generated.already == []
    assert result.generated.refreshed == [] and result.refreshed == []
    assert alpha_draft.total == Decimal("147.50")  # 10.00 + (155 - 100) GB x 2.50


def test_a_cycle_delivered_again_rerates_a_draft_whose_usage_changed_since(two_customers, rated):
    alpha, beta = two_customers
    invoice_cycle_run(reseller=alpha.reseller, now=NOW)
    # A sync revises Alpha's October 31st (+4 GiB) after the first run rated the draft.
    UsageDay.objects.filter(sub_account__customer=alpha, day=dt.date(2026, 10, 31)).update(
        bytes=9 * GIB, updated_at=NOW + dt.timedelta(minutes=10)
    )
    rated.clear()

    result = invoice_cycle_run(reseller=alpha.reseller, now=NOW)

    assert rated == [alpha.pk]
    assert result.generated.refreshed == [Invoice.objects.get(customer=alpha).pk]
    assert Invoice.objects.get(customer=alpha).total == Decimal("157.50")  # 159 GB billed
    assert Invoice.objects.get(customer=beta).total == Decimal("147.50")


def test_the_next_hourly_run_rerates_every_draft(two_customers, rated):
    alpha, beta = two_customers
    invoice_cycle_run(reseller=alpha.reseller, now=NOW)
    rated.clear()

    result = invoice_cycle_run(reseller=alpha.reseller, now=NOW + dt.timedelta(hours=1))

    assert sorted(rated) == sorted([alpha.pk, beta.pk])
    assert len(result.generated.refreshed) == 2


def test_a_draft_rerated_after_the_run_began_is_not_rated_again(two_customers, rated):
    """A sync's follow-up re-rated the draft after the killed run's `now`: already current."""
    from billing.invoicing.refresh import invoice_drafts_refresh

    alpha, _beta = two_customers
    invoice_cycle_run(reseller=alpha.reseller, now=NOW)
    UsageDay.objects.filter(sub_account__customer=alpha, day=dt.date(2026, 10, 31)).update(
        bytes=9 * GIB, updated_at=NOW + dt.timedelta(minutes=10)
    )
    invoice_drafts_refresh(customer=alpha, now=NOW + dt.timedelta(minutes=11))
    rated.clear()

    invoice_cycle_run(reseller=alpha.reseller, now=NOW)

    assert rated == []
    assert Invoice.objects.get(customer=alpha).total == Decimal("157.50")


def test_a_sub_account_move_after_the_run_leaves_no_draft_stale_when_the_run_is_delivered_again(
    two_customers,
):
    """A move changes who is billed for past days of an open draft without writing usage: it
    re-rates both customers' drafts in its transaction, so a resumed run is right too."""
    from accounts.sub_accounts import sub_account_move
    from billing.invoicing.cycle import invoice_draft_stale

    alpha, beta = two_customers
    invoice_cycle_run(reseller=alpha.reseller, now=NOW)
    sub_account_move(
        sub_account=alpha.sub_accounts.get(), to_customer=beta, on_day=dt.date(2026, 10, 16)
    )

    invoice_cycle_run(reseller=alpha.reseller, now=NOW)

    alpha_draft, beta_draft = (Invoice.objects.get(customer=c) for c in (alpha, beta))
    assert not invoice_draft_stale(invoice=alpha_draft)
    assert not invoice_draft_stale(invoice=beta_draft)
    assert alpha_draft.total == Decimal("10.00")  # 15 days x 5 GB, within the 100 GB free
    assert beta_draft.total == Decimal("347.50")  # 10.00 + (155 + 80 - 100) GB x 2.50


def test_a_sub_account_closed_after_the_run_leaves_no_draft_stale_when_the_run_is_delivered_again(
    two_customers,
):
    from accounts.sub_accounts import sub_account_close
    from billing.invoicing.cycle import invoice_draft_stale

    alpha, beta = two_customers
    invoice_cycle_run(reseller=alpha.reseller, now=NOW)
    sub_account_close(sub_account=alpha.sub_accounts.get(), on_day=dt.date(2026, 10, 15))

    invoice_cycle_run(reseller=alpha.reseller, now=NOW)

    alpha_draft = Invoice.objects.get(customer=alpha)
    assert not invoice_draft_stale(invoice=alpha_draft)
    assert alpha_draft.total == Decimal("10.00")  # its last day is the 15th: 75 GB, all free
    assert Invoice.objects.get(customer=beta).total == Decimal("147.50")
