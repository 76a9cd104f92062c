"""Sub-account lifecycle: usage of a day is billed to whoever held the sub-account that day.

The numbers: a sub-account used 10 GiB a day all October, on plans at 1.00 per GB (no base
fee), so a customer's October bill is its GiB held that month.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import SubAccount, SubAccountAssignment
from accounts.selectors import sub_account_holder_ids, sub_account_periods, sub_accounts_syncable
from accounts.services import sub_account_create, sub_account_update
from accounts.sub_accounts import sub_account_close, sub_account_delete, sub_account_move
from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.finalizing import invoice_finalize
from billing.models import InvoiceUsage
from billing.selectors import customers_to_invoice
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from tests.usage.fakes import FakeHistory, utc
from usage import tasks
from usage.alerts import usage_alert_measure
from usage.models import UsageAlertRule, UsageDay, UsageHour
from usage.services import usage_sync_sub_account

GIB = 1_073_741_824
OCT, OCT_16, OCT_20, NOV, DEC = (
    dt.date(2026, 10, 1),
    dt.date(2026, 10, 16),
    dt.date(2026, 10, 20),
    dt.date(2026, 11, 1),
    dt.date(2026, 12, 1),
)
AFTER_OCT, AFTER_NOV = utc(2026, 11, 3), utc(2026, 12, 3)


def _on_plan(customer):
    """A subscription at 1.00 per GB (GiB), no base fee, from January."""
    plan = PlanFactory(reseller=customer.reseller, base_fee=Decimal("0"), tiers=[(None, "1.00")])
    return SubscriptionFactory(customer=customer, plan=plan)


@pytest.fixture
def alice(customer):
    _on_plan(customer)
    return customer


@pytest.fixture
def bob(reseller):
    bob = factories.CustomerFactory(reseller=reseller, name="Bob")
    _on_plan(bob)
    return bob


@pytest.fixture
def october(sub_account):
    """10 GiB on each day of October."""
    add_usage(sub_account, OCT, 31, 10)
    return sub_account


def _billed_gib(customer, period_start=OCT, now=AFTER_OCT):
    invoice, _ = invoice_create_draft(customer=customer, period_start=period_start, now=now)
    usage = sum(InvoiceUsage.objects.filter(invoice=invoice).values_list("bytes", flat=True))
    return usage // GIB, invoice.subtotal


def _code(raised) -> tuple[str, int]:
    return raised.value.code, raised.value.http_status


# --- move ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_move_on_october_16_bills_15_days_to_the_first_customer_and_16_to_the_second(
    alice, bob, october
):
    moved = sub_account_move(sub_account=october, to_customer=bob, on_day=OCT_16, actor="staff")

    assert (moved.customer, moved.active_from) == (bob, OCT_16)
    assert _billed_gib(alice) == (150, Decimal("150.00"))
    assert _billed_gib(bob) == (160, Decimal("160.00"))
    assert [
        (p.customer_id, p.starts_on, p.ends_on) for p in sub_account_periods(sub_account=moved)
    ] == [
        (alice.pk, None, OCT_16),
        (bob.pk, OCT_16, None),
    ]
    assert SubAccountAssignment.objects.get().moved_by == "staff"


@pytest.mark.django_db
def test_a_sub_account_moved_there_and_back_bills_each_holder_its_own_days(alice, bob, october):
    sub_account_move(sub_account=october, to_customer=bob, on_day=dt.date(2026, 10, 11))
    sub_account_move(sub_account=october, to_customer=alice, on_day=dt.date(2026, 10, 21))

    assert _billed_gib(alice) == (210, Decimal("210.00"))  # Oct 1-10 and Oct 21-31
    assert _billed_gib(bob) == (100, Decimal("100.00"))  # Oct 11-20
    assert sub_account_holder_ids(sub_account=october) == [alice.pk, bob.pk]


@pytest.mark.django_db
def test_a_customer_whose_only_sub_account_moved_away_is_still_invoiced_for_its_days(
    customer, bob, october
):
    """No subscription: its draft shows its 15 days as unbilled usage, nothing is lost."""
    sub_account_move(sub_account=october, to_customer=bob, on_day=OCT_16)

    to_bill = customers_to_invoice(reseller=customer.reseller, start_day=OCT, end_day=NOV)
    assert set(to_bill) == {customer, bob}
    assert _billed_gib(customer) == (150, Decimal("0.00"))


@pytest.mark.django_db
def test_a_move_into_a_finalized_period_is_refused_and_the_first_free_day_named(
    alice, bob, october
):
    draft, _ = invoice_create_draft(customer=alice, period_start=OCT, now=AFTER_OCT)
    invoice = invoice_finalize(invoice=draft, now=AFTER_OCT, send_email=False)

    with pytest.raises(ApplicationError) as raised:
        sub_account_move(sub_account=october, to_customer=bob, on_day=OCT_16)
    assert _code(raised) == ("sub_account_period_invoiced", 409)
    assert raised.value.extra == {
        "customer": alice.pk,
        "invoice": invoice.number,
        "first_free_day": "2026-11-01",
    }
    assert not SubAccountAssignment.objects.exists()

    sub_account_move(sub_account=october, to_customer=bob, on_day=NOV)
    assert _billed_gib(bob) == (0, Decimal("0.00"))


@pytest.mark.django_db
def test_a_move_into_a_period_invoiced_to_the_new_customer_is_refused(alice, bob, october):
    invoice, _ = invoice_create_draft(customer=bob, period_start=OCT, now=AFTER_OCT)
    invoice_finalize(invoice=invoice, now=AFTER_OCT, send_email=False)

    with pytest.raises(ApplicationError) as raised:
        sub_account_move(sub_account=october, to_customer=bob, on_day=OCT_16)
    assert _code(raised) == ("sub_account_period_invoiced", 409)
    assert raised.value.extra["customer"] == bob.pk


@pytest.mark.django_db
def test_a_move_before_the_current_holders_first_day_is_refused(alice, bob, october, reseller):
    sub_account_move(sub_account=october, to_customer=bob, on_day=OCT_16)
    carol = factories.CustomerFactory(reseller=reseller)

    with pytest.raises(ApplicationError) as raised:
        sub_account_move(sub_account=october, to_customer=carol, on_day=dt.date(2026, 10, 15))
    assert _code(raised) == ("sub_account_day_before_start", 409)
    assert raised.value.extra == {"starts_on": "2026-10-16"}


@pytest.mark.django_db
def test_a_second_move_on_the_same_first_day_replaces_the_holder_that_held_nothing(
    alice, bob, october, reseller
):
    carol = factories.CustomerFactory(reseller=reseller)
    sub_account_move(sub_account=october, to_customer=bob, on_day=OCT_16)
    sub_account_move(sub_account=october, to_customer=carol, on_day=OCT_16)

    assert [(p.customer_id, p.ends_on) for p in sub_account_periods(sub_account=october)] == [
        (alice.pk, OCT_16),
        (carol.pk, None),
    ]
    assert _billed_gib(bob) == (0, Decimal("0.00"))


@pytest.mark.django_db
def test_a_move_to_another_resellers_customer_or_the_same_one_is_refused(alice, october):
    stranger = factories.CustomerFactory()
    for target in (stranger, alice):
        with pytest.raises(ValidationError) as raised:
            sub_account_move(sub_account=october, to_customer=target, on_day=OCT_16)
        assert "customer" in raised.value.message_dict
    assert SubAccount.objects.get(pk=october.pk).customer == alice


@pytest.mark.django_db
def test_late_usage_of_an_issued_month_is_adjusted_on_the_holder_of_that_month(alice, bob, october):
    """Moved from November 1 after October was invoiced: a revised October 31 is Alice's
    (+10 GiB on her November invoice), never Bob's."""
    invoice, _ = invoice_create_draft(customer=alice, period_start=OCT, now=AFTER_OCT)
    invoice_finalize(invoice=invoice, now=AFTER_OCT, send_email=False)
    sub_account_move(sub_account=october, to_customer=bob, on_day=NOV)
    UsageDay.objects.filter(sub_account=october, day=dt.date(2026, 10, 31)).update(bytes=20 * GIB)

    alice_nov, _ = invoice_create_draft(customer=alice, period_start=NOV, now=AFTER_NOV)
    bob_nov, _ = invoice_create_draft(customer=bob, period_start=NOV, now=AFTER_NOV)
    assert [line.amount for line in alice_nov.lines.filter(kind="adjustment")] == [Decimal("10.00")]
    assert not bob_nov.lines.filter(kind="adjustment").exists()


@pytest.mark.django_db
def test_quota_alerts_count_only_the_days_the_customer_held_the_sub_account(alice, bob, october):
    sub_account_move(sub_account=october, to_customer=bob, on_day=OCT_16)
    rules = {
        c: UsageAlertRule.objects.create(customer=c, quota_gb=Decimal("1000"), percent=80)
        for c in (alice, bob)
    }

    measured = {
        c.name: usage_alert_measure(rule=rules[c], customer=c, start=OCT, end=NOV) // GIB
        for c in (alice, bob)
    }
    assert measured == {alice.name: 150, "Bob": 160}


# --- close -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sub_account_closed_on_october_20_bills_through_its_last_day(alice, october):
    closed = sub_account_close(sub_account=october, on_day=OCT_20)

    assert (closed.status, closed.active_to) == (SubAccount.Status.CLOSED, OCT_20)
    assert _billed_gib(alice) == (200, Decimal("200.00"))  # Oct 1-20; Oct 21-31 not billed
    assert sub_account_periods(sub_account=closed)[-1].ends_on == dt.date(2026, 10, 21)


@pytest.mark.django_db
def test_a_closed_sub_account_is_synced_to_the_end_of_its_last_day_and_never_after(
    reseller, sub_account
):
    """Berlin (UTC+2 in October): the last day ends at 2026-10-20 22:00 UTC."""
    reseller.timezone = "Europe/Berlin"
    reseller.save()
    sub = SubAccount.objects.select_related("upstream_account__reseller").get(pk=sub_account.pk)
    sub_account_close(sub_account=sub, on_day=OCT_20)
    sub.refresh_from_db()
    hours = {utc(2026, 10, 20, 12) + dt.timedelta(hours=h): GIB for h in range(24)}

    run = usage_sync_sub_account(
        sub_account=sub,
        start=utc(2026, 10, 20, 12),
        end=utc(2026, 10, 21, 12),
        now=utc(2026, 10, 22),
        connector=FakeHistory(hours),
    )

    assert (run.status, run.window_end) == ("succeeded", utc(2026, 10, 20, 22))
    assert UsageHour.objects.filter(sub_account=sub).count() == 10  # 12:00-21:00 UTC
    assert list(UsageDay.objects.filter(sub_account=sub).values_list("day", "bytes")) == [
        (OCT_20, 10 * GIB)
    ]
    with pytest.raises(ApplicationError) as raised:
        usage_sync_sub_account(
            sub_account=sub,
            start=utc(2026, 10, 21),
            end=utc(2026, 10, 22),
            now=utc(2026, 10, 22),
            connector=FakeHistory(hours),
        )
    assert raised.value.code == "empty_sync_window"


@pytest.mark.django_db
def test_the_hourly_fan_out_syncs_a_closed_sub_account_until_its_last_day_ends(
    monkeypatch, sub_account
):
    """Trailing 72 hours: queued while the window still starts on or before October 20
    (UTC), not after."""
    suspended = factories.SubAccountFactory(
        customer=sub_account.customer, upstream_account=sub_account.upstream_account
    )
    sub_account_update(sub_account=suspended, status="suspended")
    sub_account_close(sub_account=sub_account, on_day=OCT_20)
    queued = []
    monkeypatch.setattr(
        tasks.usage_sync_sub_account_task,
        "apply_async",
        lambda args, countdown: queued.append(args[0]),
    )

    tasks.usage_sync_all_task("2026-10-23T22:05:00+00:00")  # window from Oct 20 22:00
    tasks.usage_sync_all_task("2026-10-24T00:05:00+00:00")  # window from Oct 21 00:00

    assert queued == [sub_account.pk]
    closed = SubAccount.objects.filter(pk=sub_account.pk)
    assert not sub_accounts_syncable(closed, start=utc(2026, 10, 21)).exists()
    assert sub_accounts_syncable(closed, start=utc(2026, 10, 20, 23)).exists()


@pytest.mark.django_db
def test_closing_twice_or_inside_an_invoiced_month_or_before_the_first_day_is_refused(
    alice, bob, october
):
    invoice, _ = invoice_create_draft(customer=alice, period_start=OCT, now=AFTER_OCT)
    invoice_finalize(invoice=invoice, now=AFTER_OCT, send_email=False)
    with pytest.raises(ApplicationError) as raised:
        sub_account_close(sub_account=october, on_day=OCT_20)
    assert _code(raised) == ("sub_account_period_invoiced", 409)

    sub_account_close(sub_account=october, on_day=dt.date(2026, 10, 31))  # nothing billed lost
    for attempt in (
        lambda: sub_account_close(sub_account=october, on_day=NOV),
        lambda: sub_account_move(sub_account=october, to_customer=bob, on_day=NOV),
        lambda: sub_account_update(sub_account=october, status="active"),
    ):
        with pytest.raises(ApplicationError) as raised:
            attempt()
        assert _code(raised) == ("sub_account_closed", 409)


@pytest.mark.django_db
def test_a_last_day_before_the_holders_first_day_is_refused(alice, bob, october):
    sub_account_move(sub_account=october, to_customer=bob, on_day=OCT_16)
    with pytest.raises(ApplicationError) as raised:
        sub_account_close(sub_account=october, on_day=dt.date(2026, 10, 15))
    assert _code(raised) == ("sub_account_day_before_start", 409)


@pytest.mark.django_db
def test_closing_and_dates_go_through_the_lifecycle_services_only(sub_account):
    with pytest.raises(ValidationError) as raised:
        sub_account_update(sub_account=sub_account, status="closed")
    assert list(raised.value.message_dict) == ["status"]
    with pytest.raises(ValueError, match="active_from"):
        sub_account_update(sub_account=sub_account, active_from=OCT)


@pytest.mark.django_db
def test_a_closed_upstream_id_is_free_for_a_new_sub_account_from_the_next_day(alice, bob, october):
    sub_account_close(sub_account=october, on_day=OCT_20)
    same = {"upstream_account": october.upstream_account, "upstream_id": october.upstream_id}

    with pytest.raises(ValidationError) as raised:
        sub_account_create(customer=bob, active_from=OCT_20, **same)
    assert list(raised.value.message_dict) == ["active_from"]
    again = sub_account_create(customer=bob, **same)
    assert again.active_from == dt.date(2026, 10, 21)
    with pytest.raises(ValidationError):  # only one open sub-account per upstream id
        sub_account_create(customer=alice, active_from=NOV, **same)
    add_usage(again, dt.date(2026, 10, 21), 11, 10)  # the new one's own rows

    assert _billed_gib(alice) == (200, Decimal("200.00"))
    assert _billed_gib(bob) == (110, Decimal("110.00"))


# --- delete ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_never_billed_sub_account_is_deleted_with_its_empty_usage_rows(sub_account):
    UsageHour.objects.create(sub_account=sub_account, hour_start=utc(2026, 10, 1), bytes=0)
    UsageDay.objects.create(sub_account=sub_account, day=OCT, bytes=0)

    sub_account_delete(sub_account=sub_account)

    assert not SubAccount.objects.filter(pk=sub_account.pk).exists()
    assert not UsageDay.objects.exists() and not UsageHour.objects.exists()


@pytest.mark.django_db
def test_delete_is_refused_once_the_sub_account_is_billed_or_has_usage(alice, october):
    with pytest.raises(ApplicationError) as raised:
        sub_account_delete(sub_account=october)
    assert _code(raised) == ("sub_account_has_usage", 409)

    invoice, _ = invoice_create_draft(customer=alice, period_start=OCT, now=AFTER_OCT)
    with pytest.raises(ApplicationError) as raised:
        sub_account_delete(sub_account=october)
    assert _code(raised) == ("sub_account_billed", 409)
    assert raised.value.extra == {"invoices": ["draft"]}

    issued = invoice_finalize(invoice=invoice, now=AFTER_OCT, send_email=False)
    with pytest.raises(ApplicationError) as raised:
        sub_account_delete(sub_account=october)
    assert raised.value.extra == {"invoices": [issued.number]}
    assert SubAccount.objects.filter(pk=october.pk).exists()


# --- the migration that made the dates real ----------------------------------------------------


@pytest.mark.django_db
def test_the_migration_keeps_billing_every_byte_it_billed_before(
    reseller, customer, upstream_account
):
    """Dates were "for the records": a start after the first usage moves back to it, an end
    of a sub-account still open is cleared, a closed one ends no earlier than its usage."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("accounts.migrations.0005_sub_account_lifecycle")
    late_start = factories.SubAccountFactory(
        customer=customer, upstream_account=upstream_account, active_from=OCT_16
    )
    open_with_end = factories.SubAccountFactory(
        customer=customer, upstream_account=upstream_account, active_to=OCT_20
    )
    closed = factories.SubAccountFactory(
        customer=customer, upstream_account=upstream_account, status="closed", active_to=OCT_20
    )
    for sub in (late_start, open_with_end, closed):
        add_usage(sub, OCT, 25, 1)

    migration.forwards(apps, None)

    dates = {
        sub.pk: (sub.active_from, sub.active_to)
        for sub in SubAccount.objects.filter(pk__in=[late_start.pk, open_with_end.pk, closed.pk])
    }
    assert dates == {
        late_start.pk: (OCT, None),
        open_with_end.pk: (None, None),
        closed.pk: (None, dt.date(2026, 10, 25)),
    }


# --- admin -----------------------------------------------------------------------------------


def _admin_action(client, sub_account, name, data=None):
    url = reverse("admin:accounts_subaccount_action", args=[sub_account.pk, name])
    response = client.post(url, data or {}, follow=True)
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


@pytest.mark.django_db
def test_the_admin_moves_closes_and_deletes_through_the_same_services(
    client, reseller, alice, bob, october
):
    staff = factories.StaffUserFactory(reseller=reseller)
    client.force_login(staff)
    page = client.get(reverse("admin:accounts_subaccount_change", args=[october.pk]))
    move = next(a for a in page.context["flowbill_actions"] if a.action.name == "move")
    assert [label for _, label in move.inputs[0].choices] == ["Bob"]  # not the current holder
    stranger = factories.CustomerFactory()

    foreign = {"customer": stranger.pk, "from": "2026-10-16"}
    assert _admin_action(client, october, "move", foreign) == [
        ("error", "Refused: choose a customer and a day.")
    ]
    assert _admin_action(client, october, "move", {"customer": bob.pk, "from": "2026-10-16"}) == [
        ("success", f"{october} is held by Bob from 2026-10-16.")
    ]
    assert _admin_action(client, october, "close", {"on": "2026-10-15"}) == [
        (
            "error",
            "Refused: The last day 2026-10-15 is before 2026-10-16, when its current "
            "customer's period starts.",
        )
    ]
    assert _admin_action(client, october, "close", {"on": "2026-10-20"})[0][0] == "success"
    assert _admin_action(client, october, "delete")[0][0] == "error"  # it has usage

    october.refresh_from_db()
    assert (october.customer, october.active_from, october.active_to) == (bob, OCT_16, OCT_20)
    assert _billed_gib(alice) == (150, Decimal("150.00"))
    assert _billed_gib(bob) == (50, Decimal("50.00"))  # Oct 16-20

    typo = factories.SubAccountFactory(customer=alice, upstream_account=october.upstream_account)
    assert _admin_action(client, typo, "delete") == [("success", f"Sub-account {typo} deleted.")]
    assert not SubAccount.objects.filter(pk=typo.pk).exists()
