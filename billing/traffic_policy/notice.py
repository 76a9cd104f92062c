"""What a customer whose credit limit stopped a top-up is told: the webhook's `data.object`
and the email.

The email is a `CreditLimitEmail` row created when `credit_limit_reached_at` goes from empty
to set, under the customer's row lock in the deciding transaction
(`billing.traffic_policy.policy`), so a policy run retried, repeated or run by two workers
makes one per reaching; it is sent at most once through `billing.outbox` (claimed under its
row lock; a stuck one is dispatched again by the hourly cycle). A row whose reaching is over
before it is sent (the limit was cleared, top-ups resumed) is not sent: it is marked failed
with that reason.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from accounts.models import Customer, Reseller
from billing import outbox
from billing.models import CreditLimitEmail
from billing.traffic_policy.exposure import Exposure, customer_exposure

TASK = "billing.tasks.credit_limit_email_send_task"


def _gb(nbytes: int) -> str:
    return f"{Decimal(nbytes) / Decimal(1_073_741_824):.2f} GB"


def credit_limit_notice_enqueue(*, customer: Customer, now: dt.datetime) -> CreditLimitEmail:
    """Record the email of this reaching and queue its send once the deciding transaction
    commits (by task name: services do not import task modules)."""
    delivery = CreditLimitEmail.objects.create(
        customer=customer,
        reached_at=customer.credit_limit_reached_at,
        recipients=customer.billing_emails,
        queued_at=now,
    )
    credit_limit_email_dispatch(delivery_id=delivery.pk)
    return delivery


def credit_limit_email_dispatch(*, delivery_id: int) -> None:
    from celery import current_app as celery_app

    task = celery_app.tasks[TASK]
    transaction.on_commit(lambda: task.delay(delivery_id), robust=True)


def credit_limit_emails_redispatch(*, reseller: Reseller, now: dt.datetime) -> list[int]:
    """Dispatch again the reseller's stuck credit-limit emails (`billing.outbox`)."""
    return outbox.email_deliveries_redispatch(
        model=CreditLimitEmail,
        reseller=reseller,
        now=now,
        dispatch=lambda pk: credit_limit_email_dispatch(delivery_id=pk),
    )


def credit_limit_email_build(
    *, delivery: CreditLimitEmail, exposure: Exposure
) -> EmailMultiAlternatives:
    customer = delivery.customer
    reseller = customer.reseller
    context = {
        "customer": customer,
        "reseller": reseller,
        "currency": exposure.currency,
        "credit_limit": customer.credit_limit,
        "exposure": exposure,
        "topup": _gb(customer.topup_bytes or 0),
        "payment_instructions": reseller.payment_instructions.strip(),
    }
    subject = f"Credit limit reached with {reseller.name}: automatic top-ups paused"
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string("billing/credit_limit_email.txt", context),
        **outbox.email_envelope(delivery=delivery, idstring=f"creditlimit{delivery.pk}"),
    )
    message.attach_alternative(
        render_to_string("billing/credit_limit_email.html", context), "text/html"
    )
    return message


STALE_NOTE = "not sent: the credit limit was no longer reached when it was due to go out"


def credit_limit_email_send(*, delivery_id: int, now: dt.datetime) -> str:
    """Send one credit-limit email at most once; returns its status (`stale` when its
    reaching was over before it went out: marked failed, nothing sent)."""
    delivery = CreditLimitEmail.objects.select_related("customer__reseller").get(pk=delivery_id)
    customer = delivery.customer
    if (
        delivery.status == CreditLimitEmail.Status.QUEUED
        and customer.credit_limit_reached_at != delivery.reached_at
    ):
        CreditLimitEmail.objects.filter(pk=delivery.pk, status=delivery.status).update(
            status=CreditLimitEmail.Status.FAILED, last_error=STALE_NOTE
        )
        return "stale"
    # The figures of the moment the limit was reached (the email says why it stopped).
    exposure = customer_exposure(customer=customer, now=delivery.reached_at)
    sent = outbox.email_delivery_send(
        delivery=delivery,
        now=now,
        build_message=lambda claimed, _now: credit_limit_email_build(
            delivery=claimed, exposure=exposure
        ),
    )
    return sent.status
