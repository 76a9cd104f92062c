"""Sending document emails (invoices, credit notes) exactly once: the `EmailDelivery` rows.

`email_delivery_send` sends a row at most once through `core.outbox` (claimed under a row
lock, queued/failed -> sending, sent outside the transaction within `SEND_DEADLINE` of its
claim, recorded only while the claim is its own; see there). A resend is a new row
(`email_delivery_next_sequence`).

`email_deliveries_redispatch` is the repair, run by the recovery sweep every few minutes
(`billing.recovery`) and by the hourly cycle; it measures with the wall clock it is given:
- a row claimed more than `STALE_CLAIM_AFTER` ago and never finished: its sender is dead,
  and the claim is taken by `core.outbox.outbox_stale_claims_take` (one sweep wins it) and
  dispatched again. Both Message-IDs of a mail that had left before the kill name the same
  delivery.
- a row still `queued` whose last task message was sent (`dispatched_at`, the wall-clock
  time of its insert, whose commit publishes the message, or of the last redispatch) more
  than `REDISPATCH_AFTER` ago, doubled at each redispatch (`redispatches`) up to
  `REDISPATCH_MAX_AFTER`: its message was lost (the worker was killed before it dispatched
  it, the broker was down at the commit) or is still waiting behind a long queue. It gets
  one more message, taken by a conditional update of `dispatched_at`, so a row waiting
  behind 10,000 others gets a handful of extra messages (5, 10, 20, 40 minutes, then one
  an hour), not one every sweep.
A second message for a row is harmless: the claim lets one send through.

Who a document email is from and to (`email_envelope`) is decided by
`accounts.email_identity`, like every email sent for a reseller.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.mail import EmailMessage
from django.db import models

from accounts.email_identity import reseller_email_envelope
from accounts.models import Reseller
from billing.abstract_models import EmailDelivery
from core.outbox import Outbox, outbox_send, outbox_stale_claims_take

Delivery = TypeVar("Delivery", bound=EmailDelivery)

#: A queued delivery whose task message was sent this long ago and not claimed gets another;
#: the wait doubles at each redispatch, up to `REDISPATCH_MAX_AFTER`.
REDISPATCH_AFTER = dt.timedelta(minutes=5)
REDISPATCH_MAX_AFTER = dt.timedelta(hours=1)


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


@functools.cache
def _outbox(model: type[EmailDelivery]) -> Outbox:
    return Outbox(
        model=model,
        claimable=(model.Status.QUEUED, model.Status.FAILED),
        sending=model.Status.SENDING,
        sent=model.Status.SENT,
        failed=model.Status.FAILED,
        select_related=(f"{model.document_field}__reseller",),
    )


def _message_id(message: EmailMessage) -> dict[str, str]:
    return {"message_id": message.extra_headers.get("Message-ID", "")[:300]}


def email_delivery_send(
    *,
    delivery: Delivery,
    now: dt.datetime,
    build_message: Callable[[Delivery, dt.datetime], EmailMessage],
) -> Delivery:
    """Send one delivery at most once (`core.outbox.outbox_send`). Returns the row; `status`
    says what happened. `now` is the wall clock. Errors while building or sending, and a send
    past its deadline, mark it `failed` (retryable) and propagate to the caller's retry."""
    return outbox_send(
        outbox=_outbox(type(delivery)),
        pk=delivery.pk,
        now=now,
        build_message=build_message,
        sent_fields=_message_id,
    )


def email_deliveries_redispatch(
    *,
    model: type[EmailDelivery],
    reseller: Reseller,
    now: dt.datetime,
    dispatch: Callable[[int], None],
) -> list[int]:
    """Dispatch again the reseller's stuck deliveries (see the module text); returns them.
    `now` is the wall clock: the stamps compared with it are."""
    deliveries = model.objects.for_reseller(reseller)
    taken = outbox_stale_claims_take(outbox=_outbox(model), rows=deliveries, now=now)
    queued = deliveries.filter(
        status=model.Status.QUEUED, dispatched_at__lt=now - REDISPATCH_AFTER
    ).values_list("pk", "dispatched_at", "redispatches")
    for pk, dispatched_at, redispatches in queued.order_by("pk"):
        if now - dispatched_at < redispatch_wait(redispatches=redispatches):
            continue
        if model.objects.filter(
            pk=pk, status=model.Status.QUEUED, dispatched_at=dispatched_at
        ).update(dispatched_at=now, redispatches=models.F("redispatches") + 1):
            taken.append(pk)
    for pk in taken:
        dispatch(pk)
    return taken


def redispatch_wait(*, redispatches: int) -> dt.timedelta:
    """How long a queued delivery waits after its last message before it gets another:
    `REDISPATCH_AFTER`, doubled at each redispatch, at most `REDISPATCH_MAX_AFTER`."""
    return min(REDISPATCH_AFTER * 2 ** min(redispatches, 10), REDISPATCH_MAX_AFTER)
