"""Subscription writes and their rules: create, end, and delete one that was never billed.

Rules (`subscription_rules_errors`, used by these services and the admin form alike):
the plan and the upstream account are the customer's reseller's; the plan is priced in the
customer's currency; a new subscription needs an active plan; `ends_on` (exclusive) is not
before `starts_on`, and `ends_on == starts_on` is a subscription that is never active (a
cancelled one: it bills nothing and overlaps nothing); subscriptions of one customer never
overlap when their scopes can meet (the same upstream account, or either covering all).
The customer row is locked while a rule that reads other rows is checked, so two requests
cannot both pass the overlap check.

Every change re-rates the customer's drafts in the same transaction
(`billing.invoicing.refresh.invoice_drafts_rerate`), so a draft never shows a plan the customer no
longer has; a draft left with nothing billable is discarded.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import models, transaction
from django.utils import timezone

from accounts.models import Customer, UpstreamAccount
from billing.models import Invoice, InvoiceLine, InvoiceStatus, InvoiceUsage, Plan, Subscription
from billing.plans.rules import Errors
from core.errors import ApplicationError, NotFoundError

logger = logging.getLogger(__name__)


def subscriptions_overlapping(subscription: Subscription) -> models.QuerySet[Subscription]:
    """Other subscriptions of the customer whose days and scope meet this one's. Never-active
    subscriptions (`ends_on == starts_on`) meet nothing."""
    if subscription.ends_on is not None and subscription.ends_on <= subscription.starts_on:
        return Subscription.objects.none()
    qs = (
        Subscription.objects.filter(customer=subscription.customer)
        .exclude(pk=subscription.pk)
        .exclude(ends_on=models.F("starts_on"))
        .filter(models.Q(ends_on__isnull=True) | models.Q(ends_on__gt=subscription.starts_on))
    )
    if subscription.ends_on:
        qs = qs.filter(starts_on__lt=subscription.ends_on)
    if subscription.upstream_account_id:
        qs = qs.filter(
            models.Q(upstream_account__isnull=True)
            | models.Q(upstream_account_id=subscription.upstream_account_id)
        )
    return qs.select_related("plan").order_by("starts_on", "pk")


def subscription_rules_errors(subscription: Subscription, *, new: bool) -> Errors:
    """Every rule the (unsaved) subscription breaks, by field name."""
    errors: Errors = {}
    customer, plan = subscription.customer, subscription.plan
    if plan.reseller_id != customer.reseller_id:
        errors["plan"] = ["Not one of the customer's reseller's plans."]
    else:
        if plan.currency != customer.currency:
            errors["plan"] = [
                f"The plan is priced in {plan.currency}; "
                f"the customer is billed in {customer.currency}."
            ]
        elif new and not plan.is_active:
            errors["plan"] = ["The plan is inactive: it takes no new subscriptions."]
    upstream = subscription.upstream_account
    if upstream is not None and upstream.reseller_id != customer.reseller_id:
        errors["upstream_account"] = ["Not one of the customer's reseller's upstream accounts."]
    if subscription.ends_on is not None and subscription.ends_on < subscription.starts_on:
        errors["ends_on"] = [
            "Cannot be before starts_on (ends_on is exclusive; equal means never active)."
        ]
    if not errors:
        clash = subscriptions_overlapping(subscription).first()
        if clash is not None:
            errors["starts_on"] = [
                f"Overlaps subscription #{clash.pk} ({clash.plan.code}, from "
                f"{clash.starts_on}) with the same or a wider scope."
            ]
    return errors


def _check(subscription: Subscription, *, new: bool) -> None:
    errors = subscription_rules_errors(subscription, new=new)
    if errors:
        code = "subscription_overlap" if "starts_on" in errors else "invalid_subscription"
        message = "; ".join(message for messages in errors.values() for message in messages)
        raise ApplicationError(code, message, extra=errors)


def _lock_customer(customer: Customer) -> None:
    Customer.objects.select_for_update().row_of(customer).first()


def _drafts_rerate(customer: Customer, now: dt.datetime | None) -> None:
    """Re-rate the customer's drafts after its subscriptions changed (customer row locked)."""
    # Deferred: invoicing imports billing.plans.terms, whose package imports this module.
    from billing.invoicing.refresh import invoice_drafts_rerate

    customer = Customer.objects.select_related("reseller").row_of(customer).get()
    invoice_drafts_rerate(customer=customer, now=now or timezone.now())


@transaction.atomic
def subscription_create(
    *,
    customer: Customer,
    plan: Plan,
    starts_on: dt.date,
    ends_on: dt.date | None = None,
    upstream_account: UpstreamAccount | None = None,
    now: dt.datetime | None = None,
) -> Subscription:
    """Subscribe a customer from `starts_on` to `ends_on` (exclusive; None: open-ended); its
    drafts are re-rated (`now`: their refresh time, default the clock)."""
    _lock_customer(customer)
    subscription = Subscription(
        customer=customer,
        plan=plan,
        starts_on=starts_on,
        ends_on=ends_on,
        upstream_account=upstream_account,
    )
    _check(subscription, new=True)
    subscription.save()
    _drafts_rerate(customer, now)
    return subscription


@transaction.atomic
def subscription_update(
    *, subscription: Subscription, ends_on: dt.date | None, now: dt.datetime | None = None
) -> Subscription:
    """Set when a subscription ends (exclusive): `starts_on` cancels it (never active), None
    reopens it. Customer, plan, start and scope are fixed: to change plan, end it and
    subscribe again from that day (or delete it while it was never billed). The customer's
    drafts are re-rated."""
    _lock_customer(subscription.customer)
    subscription.ends_on = ends_on
    _check(subscription, new=False)
    subscription.save(update_fields=["ends_on"])
    _drafts_rerate(subscription.customer, now)
    return subscription


def subscription_end(
    *, subscription: Subscription, ends_on: dt.date, now: dt.datetime | None = None
) -> Subscription:
    """End a subscription on `ends_on` (exclusive: the first day no longer billed)."""
    return subscription_update(subscription=subscription, ends_on=ends_on, now=now)


def _invoices_using(subscription: Subscription) -> models.QuerySet[Invoice]:
    return Invoice.objects.filter(
        models.Q(pk__in=InvoiceLine.objects.filter(subscription=subscription).values("invoice"))
        | models.Q(pk__in=InvoiceUsage.objects.filter(subscription=subscription).values("invoice"))
    ).order_by("pk")


@transaction.atomic
def subscription_delete(*, subscription: Subscription, actor: str, now: dt.datetime) -> None:
    """Delete a subscription no issued invoice used (a mistake), or refuse with 409
    `subscription_billed` naming the invoices. Void invoices count as issued: they keep
    their lines, which name the subscription (cancel it instead: `ends_on = starts_on`).

    The customer's drafts are re-rated without it (`invoice_drafts_rerate`); one left with
    nothing billable is discarded, and comes back at the next cycle only if the customer
    still has something to bill.
    """
    _lock_customer(subscription.customer)
    if not Subscription.objects.row_of(subscription).exists():
        raise NotFoundError("No such subscription.")
    # Lock the drafts first: a finalization running now commits before we read the statuses.
    drafts = list(
        _invoices_using(subscription).filter(status=InvoiceStatus.DRAFT).select_for_update()
    )
    issued = list(
        _invoices_using(subscription)
        .exclude(status=InvoiceStatus.DRAFT)
        .values_list("number", "status")
    )
    if issued:
        named = ", ".join(f"{number} ({status})" for number, status in issued)
        raise ApplicationError(
            "subscription_billed",
            f"Subscription #{subscription.pk} is on issued invoices ({named}) and stays for "
            "the record; end it instead (ends_on = starts_on: never active).",
            extra={"invoices": [number for number, _ in issued]},
        )
    draft_ids = [draft.pk for draft in drafts]
    InvoiceLine.objects.filter(invoice_id__in=draft_ids, subscription=subscription).delete()
    InvoiceUsage.objects.filter(invoice_id__in=draft_ids, subscription=subscription).delete()
    pk = subscription.pk
    subscription.delete()
    _drafts_rerate(subscription.customer, now)
    logger.info(
        "subscription %s of customer %s deleted by %s (drafts re-rated: %s)",
        pk,
        subscription.customer_id,
        actor,
        draft_ids,
    )
