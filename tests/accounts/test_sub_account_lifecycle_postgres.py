"""Sub-account holders under real concurrency and constraints (PostgreSQL, threads)."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import IntegrityError

from accounts.models import SubAccount, SubAccountAssignment
from accounts.sub_accounts import sub_account_move
from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.finalizing import invoice_finalize
from billing.models import InvoiceUsage
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage, in_thread

GIB = 1_073_741_824
OCT, OCT_16 = dt.date(2026, 10, 1), dt.date(2026, 10, 16)
NOW = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _world():
    """Alice holds a sub-account that used 10 GiB every day of October; Bob and Carol too
    are on a 1.00-per-GB plan."""
    reseller = factories.ResellerFactory()
    plan = PlanFactory(reseller=reseller, base_fee=Decimal("0"), tiers=[(None, "1.00")])
    alice, bob, carol = (
        factories.CustomerFactory(reseller=reseller, name=name) for name in ("A", "B", "C")
    )
    for customer in (alice, bob, carol):
        SubscriptionFactory(customer=customer, plan=plan)
    sub = factories.SubAccountFactory(customer=alice, upstream_account__reseller=reseller)
    add_usage(sub, OCT, 31, 10)
    return sub, alice, bob, carol


def test_overlapping_periods_of_one_sub_account_are_refused_by_the_database():
    sub, alice, bob, _ = _world()
    SubAccountAssignment.objects.create(sub_account=sub, customer=alice, ends_on=OCT_16)
    with pytest.raises(IntegrityError, match="sub_account_assignment_no_overlap"):
        SubAccountAssignment.objects.create(
            sub_account=sub,
            customer=bob,
            starts_on=dt.date(2026, 10, 10),
            ends_on=dt.date(2026, 10, 20),
        )


def test_two_concurrent_moves_leave_one_history_without_overlap():
    sub, alice, bob, carol = _world()
    barrier = threading.Barrier(2)

    def move(customer):
        return in_thread(
            barrier,
            lambda: (
                sub_account_move(
                    sub_account=SubAccount.objects.get(pk=sub.pk),
                    to_customer=customer,
                    on_day=OCT_16,
                ).customer_id
            ),
        )

    with ThreadPoolExecutor(2) as pool:
        winners = [f.result() for f in [pool.submit(move(bob)), pool.submit(move(carol))]]

    sub.refresh_from_db()
    assert sub.customer_id in winners and sub.active_from == OCT_16
    # The second move starts where the first did, so the first's holder held nothing.
    assert list(
        SubAccountAssignment.objects.values_list("customer_id", "starts_on", "ends_on")
    ) == [(alice.pk, None, OCT_16)]


def test_a_move_and_the_finalizing_of_the_old_holders_month_never_cross():
    """Either the invoice is issued first (the move is refused, October bills 31 days) or the
    move commits first (October bills Alice's 15 days): never 31 days issued and the days
    moved as well."""
    sub, alice, bob, _ = _world()
    draft, _ = invoice_create_draft(customer=alice, period_start=OCT, now=NOW)
    barrier = threading.Barrier(2)

    def finalize():
        return invoice_finalize(invoice=draft, now=NOW, send_email=False).pk

    def move():
        try:
            sub_account_move(
                sub_account=SubAccount.objects.get(pk=sub.pk), to_customer=bob, on_day=OCT_16
            )
        except ApplicationError as exc:
            return exc.code
        return "moved"

    with ThreadPoolExecutor(2) as pool:
        issued, moved = (
            f.result()
            for f in [
                pool.submit(in_thread(barrier, finalize)),
                pool.submit(in_thread(barrier, move)),
            ]
        )

    billed = sum(InvoiceUsage.objects.filter(invoice_id=issued).values_list("bytes", flat=True))
    assert (moved, billed // GIB) in {("moved", 150), ("sub_account_period_invoiced", 310)}


@pytest.mark.parametrize("repeat", range(3))
def test_a_move_racing_a_suspension_of_the_holder_never_deadlocks(repeat):
    """Suspending locks the customer, then its sub-accounts; a move (and a close) locks the
    holder before the sub-account too, so one waits for the other instead of deadlocking."""
    from usage.services.suspension import customer_suspend

    sub, alice, bob, _ = _world()
    barrier = threading.Barrier(2)

    def suspend():
        return customer_suspend(customer=alice, reason="Unpaid", actor="login ops", now=NOW).status

    def move():
        return sub_account_move(
            sub_account=SubAccount.objects.get(pk=sub.pk), to_customer=bob, on_day=OCT_16
        ).customer_id

    with ThreadPoolExecutor(2) as pool:
        results = [
            f.result()
            for f in [
                pool.submit(in_thread(barrier, suspend)),
                pool.submit(in_thread(barrier, move)),
            ]
        ]

    assert results == ["suspended", bob.pk]
    sub.refresh_from_db()
    assert sub.customer_id == bob.pk
