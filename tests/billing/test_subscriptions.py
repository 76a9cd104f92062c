"""Subscriptions: cancelled ones (`ends_on == starts_on`) bill nothing; one never billed can
be deleted (drafts re-rated without it), one on an issued invoice cannot."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from billing.invoicing.compute import invoice_preview
from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, InvoiceLine, Subscription
from billing.plans import (
    subscription_create,
    subscription_delete,
    subscription_update,
)
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, add_usage, in_thread

OCT = dt.date(2026, 10, 1)
NOV = dt.date(2026, 11, 1)
NOW = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)


@pytest.fixture
def plan(reseller):
    """Base 10.00 a month, first 100 GB free, then 2.50 per GB."""
    return PlanFactory(reseller=reseller, code="pro")


@pytest.fixture
def used_october(sub_account):
    add_usage(sub_account, OCT, 31, 5)  # 155 GiB: 10.00 + 55 x 2.50 = 147.50
    return sub_account


def test_a_subscription_ending_on_its_start_bills_nothing(customer, plan, used_october):
    cancelled = subscription_create(
        customer=customer, plan=plan, starts_on=dt.date(2026, 10, 10), ends_on=OCT.replace(day=10)
    )
    assert cancelled.ends_on == cancelled.starts_on
    preview = invoice_preview(customer=customer, period_start=OCT)
    assert preview.lines == [] and preview.totals.total == Decimal(0)
    # It overlaps nothing: a real subscription covers the same days.
    subscription_create(customer=customer, plan=plan, starts_on=OCT)
    preview = invoice_preview(customer=customer, period_start=OCT)
    assert preview.totals.subtotal == Decimal("147.50")


def test_cancelling_an_open_subscription_frees_its_days(customer, plan, used_october):
    open_ended = subscription_create(customer=customer, plan=plan, starts_on=OCT)
    with pytest.raises(ApplicationError) as exc:
        subscription_create(customer=customer, plan=plan, starts_on=dt.date(2026, 10, 15))
    assert exc.value.code == "subscription_overlap"
    subscription_update(subscription=open_ended, ends_on=OCT)
    assert invoice_preview(customer=customer, period_start=OCT).totals.total == Decimal(0)
    assert subscription_create(customer=customer, plan=plan, starts_on=dt.date(2026, 10, 15))


def test_the_database_refuses_an_end_before_the_start_but_allows_it_equal(customer, plan):
    subscription = subscription_create(customer=customer, plan=plan, starts_on=OCT)
    Subscription.objects.filter(pk=subscription.pk).update(ends_on=OCT)
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(ends_on=dt.date(2026, 9, 30))


def test_a_new_subscription_needs_an_active_plan_in_the_customers_currency(customer, plan):
    plan.is_active = False
    plan.save()
    with pytest.raises(ApplicationError) as exc:
        subscription_create(customer=customer, plan=plan, starts_on=OCT)
    assert exc.value.extra == {"plan": ["The plan is inactive: it takes no new subscriptions."]}
    euro = PlanFactory(reseller=customer.reseller, currency="EUR")
    with pytest.raises(ApplicationError) as exc:
        subscription_create(customer=customer, plan=euro, starts_on=OCT)
    assert exc.value.extra == {
        "plan": ["The plan is priced in EUR; the customer is billed in USD."]
    }


def test_a_subscription_never_billed_is_deleted(customer, plan):
    subscription = subscription_create(customer=customer, plan=plan, starts_on=OCT)
    subscription_delete(subscription=subscription, actor="staff1", now=NOW)
    assert not Subscription.objects.exists()


def test_deleting_drops_it_from_drafts_and_discards_a_draft_left_empty(
    customer, plan, reseller, upstream_account
):
    """Two subscriptions on two upstreams: deleting one re-rates the draft with the other;
    deleting the other leaves the draft with nothing, so it is discarded."""
    other_upstream = factories.UpstreamAccountFactory(reseller=reseller)
    first = subscription_create(
        customer=customer, plan=plan, starts_on=OCT, upstream_account=upstream_account
    )
    second = subscription_create(
        customer=customer,
        plan=PlanFactory(reseller=reseller, base_fee=Decimal("30")),
        starts_on=OCT,
        upstream_account=other_upstream,
    )
    draft, _ = invoice_create_draft(customer=customer, period_start=OCT, now=NOW)
    assert draft.subtotal == Decimal("40.00")  # 10.00 + 30.00 base fees, no usage

    subscription_delete(subscription=first, actor="staff1", now=NOW)
    draft.refresh_from_db()
    assert draft.subtotal == Decimal("30.00")
    assert set(draft.lines.values_list("subscription_id", flat=True)) == {second.pk}

    subscription_delete(subscription=second, actor="staff1", now=NOW)
    assert not Invoice.objects.exists()
    assert not InvoiceLine.objects.exists()


@pytest.fixture
def finalized(customer, plan, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    subscription = subscription_create(customer=customer, plan=plan, starts_on=OCT)
    draft, _ = invoice_create_draft(customer=customer, period_start=OCT, now=NOW)
    return subscription, invoice_finalize(invoice=draft, now=NOW, send_email=False)


def test_a_subscription_on_an_issued_invoice_is_kept_even_after_a_void(finalized):
    subscription, invoice = finalized
    with pytest.raises(ApplicationError) as exc:
        subscription_delete(subscription=subscription, actor="staff1", now=NOW)
    assert exc.value.code == "subscription_billed"
    assert exc.value.extra == {"invoices": [invoice.number]}
    invoice_void(invoice=invoice, now=NOW, reason="wrong plan")
    with pytest.raises(ApplicationError) as exc:
        subscription_delete(subscription=subscription, actor="staff1", now=NOW)
    assert exc.value.code == "subscription_billed"
    assert f"{invoice.number} (void)" in exc.value.message
    # Cancelling it instead is allowed: the voided period then bills nothing for it.
    subscription_update(subscription=subscription, ends_on=subscription.starts_on)
    assert invoice_preview(customer=subscription.customer, period_start=OCT).lines == []


# --- admin ---------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, reseller):
    client.force_login(factories.StaffUserFactory(reseller=reseller))
    return client


def test_admin_subscription_form_uses_the_same_rules(staff_client, customer, plan):
    subscription_create(customer=customer, plan=plan, starts_on=OCT)
    add = reverse("admin:billing_subscription_add")
    body = {"customer": customer.pk, "plan": plan.pk, "starts_on": "2026-10-15"}
    response = staff_client.post(add, body)
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["starts_on"]
    assert "Overlaps subscription" in response.context["adminform"].form.errors["starts_on"][0]
    # Cancelled on creation (ends on its start): allowed, overlaps nothing.
    response = staff_client.post(add, {**body, "ends_on": "2026-10-15"})
    assert response.status_code == 302
    assert Subscription.objects.count() == 2


def test_admin_changes_only_the_end_of_a_subscription(staff_client, customer, plan):
    subscription = subscription_create(customer=customer, plan=plan, starts_on=OCT)
    url = reverse("admin:billing_subscription_change", args=[subscription.pk])
    response = staff_client.post(url, {"ends_on": "2026-09-01", "starts_on": "2026-01-01"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "ends_on": ["Cannot be before starts_on (ends_on is exclusive; equal means never active)."]
    }
    response = staff_client.post(url, {"ends_on": "2026-12-01", "starts_on": "2026-01-01"})
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.starts_on, subscription.ends_on) == (OCT, dt.date(2026, 12, 1))


def test_admin_deletes_through_the_service(staff_client, finalized, customer, plan):
    billed, _ = finalized
    delete = reverse("admin:billing_subscription_delete", args=[billed.pk])
    response = staff_client.post(delete, {"post": "yes"}, follow=True)
    assert Subscription.objects.filter(pk=billed.pk).exists()
    assert f"Refused: Subscription #{billed.pk} is on issued invoices" in response.content.decode()
    subscription_update(subscription=billed, ends_on=NOV)
    spare = subscription_create(
        customer=customer, plan=plan, starts_on=NOV, ends_on=dt.date(2026, 12, 1)
    )
    delete = reverse("admin:billing_subscription_delete", args=[spare.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Subscription.objects.filter(pk=spare.pk).exists()


# --- PostgreSQL: two requests at once ------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_subscriptions_at_once_make_one():
    customer = factories.CustomerFactory()
    plan = PlanFactory(reseller=customer.reseller)
    barrier = threading.Barrier(2)

    def create(day):
        try:
            return subscription_create(
                customer=customer, plan=plan, starts_on=dt.date(2026, 10, day)
            ).pk
        except ApplicationError as exc:
            return exc.code

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda day: in_thread(barrier, lambda: create(day))(), (1, 15)))
    assert sorted(map(str, results))[-1] == "subscription_overlap"
    assert Subscription.objects.filter(customer=customer).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_delete_racing_a_finalization_never_loses_a_billed_subscription(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer = factories.CustomerFactory()
    subscription = subscription_create(
        customer=customer, plan=PlanFactory(reseller=customer.reseller), starts_on=OCT
    )
    draft, _ = invoice_create_draft(customer=customer, period_start=OCT, now=NOW)
    barrier = threading.Barrier(2)

    def finalize():
        return invoice_finalize(invoice=draft, now=NOW, send_email=False).status

    def delete():
        try:
            subscription_delete(subscription=subscription, actor="staff1", now=NOW)
            return "deleted"
        except ApplicationError as exc:
            return exc.code

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(in_thread(barrier, job)) for job in (finalize, delete)]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except ApplicationError as exc:
                outcomes.append(exc.code)
    if "deleted" in outcomes:  # the delete won: the draft was discarded, nothing finalized
        assert not Invoice.objects.exists()
        assert not Subscription.objects.exists()
    else:  # the finalization won: the subscription stays on the issued invoice
        assert outcomes == ["finalized", "subscription_billed"]
        assert Subscription.objects.filter(pk=subscription.pk).exists()
