"""Sending document emails (invoices, credit notes) exactly once: the `EmailDelivery` rows.

`email_delivery_send` claims a row under a row lock (queued/failed -> sending), sends outside
the transaction, then records `sent`, or `failed` and re-raises for the task's retry. A row
already `sending` or `sent` is never sent again, so a task retried or delivered twice sends
one email. A resend is a new row (`email_delivery_next_sequence`).

`email_deliveries_redispatch` is the repair, run by the recovery sweep every few minutes
(`billing.recovery`) and by the hourly cycle:
- a row claimed more than `STALE_CLAIM_AFTER` ago and never finished: its worker died
  mid-send (the send task's hard time limit ends any send before that). It is first turned
  `failed` by a status-conditional update, so two sweeps never both take it, then dispatched
  again. Its mail may already have left (a worker killed after the SMTP server accepted it):
  that is the one window where a customer can get the same document twice, both Message-IDs
  naming the same delivery; never more, since the resend is claimed like any send.
- a row still `queued` more than `REDISPATCH_AFTER` after queueing: its task message was
  lost (the worker was killed before it dispatched it, the broker was down at the commit).
  The sweep dispatches it again once (noted in `last_error`, `REDISPATCHED_NOTE`): a row
  merely waiting behind a long queue is not given a new message every few minutes. The
  hourly cycle (`again=True`) dispatches every row still queued after
  `REDISPATCH_AGAIN_AFTER`, noted or not, in case the second message was lost too.
A second message for a row is harmless: the claim lets one send through.

Who a document email is from and to (`email_envelope`) is decided by
`accounts.email_identity`, like every email sent for a reseller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.mail import EmailMessage
from django.db import models, transaction

from accounts.email_identity import reseller_email_envelope
from accounts.models import Reseller
from billing.models import EmailDelivery
from core.task_options import EMAIL_SEND_TIME_LIMITS

Delivery = TypeVar("Delivery", bound=EmailDelivery)

#: A queued delivery not claimed after this long is dispatched again (once) by the sweep.
REDISPATCH_AFTER = dt.timedelta(minutes=5)
#: ... and by the hourly cycle, every hour, while it is still queued this long after.
REDISPATCH_AGAIN_AFTER = dt.timedelta(minutes=15)
#: A send claimed this long ago and not finished: its worker died. The send task's hard time
#: limit (`EMAIL_SEND_TIME_LIMITS`, 3 minutes) kills any send before, plus a margin.
STALE_CLAIM_AFTER = dt.timedelta(seconds=EMAIL_SEND_TIME_LIMITS["time_limit"] + 120)

ABANDONED_NOTE = (
    "the worker stopped while sending; sent again (the first attempt may have been delivered)"
)
REDISPATCHED_NOTE = "not taken by a worker within minutes of queueing; dispatched again"


def email_delivery_next_sequence(*, deliveries: models.QuerySet) -> int:
    """The next sequence among one document's deliveries (the document's row lock or the
    unique constraint keeps two writers from taking the same)."""
    last = deliveries.order_by("-sequence").first()
    return last.sequence + 1 if last else 1


def email_envelope(*, delivery: EmailDelivery, idstring: str) -> dict[str, Any]:
    """`from_email`, `to`, `cc`, `reply_to` and `headers` (the Message-ID, naming the delivery
    by `idstring`) of a document email, for its builder: the delivery's recipients, sent for
    the document's reseller (`accounts.email_identity.reseller_email_envelope`)."""
    reseller = getattr(delivery, delivery.document_field).reseller
    return reseller_email_envelope(
        reseller=reseller, recipients=delivery.recipients, idstring=idstring
    ).as_kwargs()


def _claim(model: type[Delivery], delivery_id: int, now: dt.datetime) -> Delivery | None:
    with transaction.atomic():
        delivery = (
            model.objects.select_for_update(of=("self",))
            .select_related(f"{model.document_field}__reseller")
            .get(pk=delivery_id)
        )
        if delivery.status not in (model.Status.QUEUED, model.Status.FAILED):
            return None
        delivery.status = model.Status.SENDING
        delivery.attempts += 1
        delivery.claimed_at = now
        delivery.save(update_fields=["status", "attempts", "claimed_at"])
        return delivery


def email_delivery_send(
    *,
    delivery: Delivery,
    now: dt.datetime,
    build_message: Callable[[Delivery, dt.datetime], EmailMessage],
) -> Delivery:
    """Send one delivery at most once. Returns the row; `status` says what happened.

    Errors while building or sending mark it `failed` (retryable) and propagate to the
    caller's retry.
    """
    model = type(delivery)
    claimed = _claim(model, delivery.pk, now)
    if claimed is None:
        return model.objects.get(pk=delivery.pk)
    try:
        message = build_message(claimed, now)
        message.send(fail_silently=False)
    except Exception as exc:
        claimed.status = model.Status.FAILED
        # Exception text from SMTP carries the server's reply, never our credentials.
        claimed.last_error = f"{type(exc).__name__}: {exc}"[:500]
        claimed.save(update_fields=["status", "last_error"])
        raise
    claimed.status = model.Status.SENT
    claimed.sent_at = now
    claimed.message_id = message.extra_headers.get("Message-ID", "")[:300]
    claimed.last_error = ""
    claimed.save(update_fields=["status", "sent_at", "message_id", "last_error"])
    return claimed


def email_deliveries_redispatch(
    *,
    model: type[EmailDelivery],
    reseller: Reseller,
    now: dt.datetime,
    dispatch: Callable[[int], None],
    again: bool = False,
) -> list[int]:
    """Dispatch again the reseller's stuck deliveries (see the module text); returns them.
    `again`: also those dispatched again before and still queued (the hourly cycle)."""
    deliveries = model.objects.for_reseller(reseller)
    abandoned = list(
        deliveries.filter(
            status=model.Status.SENDING, claimed_at__lt=now - STALE_CLAIM_AFTER
        ).values_list("pk", flat=True)
    )
    for pk in abandoned:
        model.objects.filter(pk=pk, status=model.Status.SENDING).update(
            status=model.Status.FAILED, last_error=ABANDONED_NOTE
        )
    queued = deliveries.filter(status=model.Status.QUEUED)
    lost = queued.filter(queued_at__lt=now - REDISPATCH_AFTER, last_error="")
    if again:
        lost = lost | queued.filter(queued_at__lt=now - REDISPATCH_AGAIN_AFTER)
    lost_ids = list(lost.order_by("pk").values_list("pk", flat=True))
    for pk in abandoned + lost_ids:
        dispatch(pk)
    model.objects.filter(pk__in=lost_ids, status=model.Status.QUEUED, last_error="").update(
        last_error=REDISPATCHED_NOTE
    )
    return abandoned + lost_ids
