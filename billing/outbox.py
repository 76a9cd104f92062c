"""Sending document emails (invoices, credit notes) exactly once: the `EmailDelivery` rows.

`email_delivery_send` claims a row under a row lock (queued/failed -> sending), sends outside
the transaction, then records `sent`, or `failed` and re-raises for the task's retry. A row
already `sending` or `sent` is never sent again, so a task retried or delivered twice sends
one email. A resend is a new row (`email_delivery_next_sequence`).

A send is bounded in time by the send itself, whatever the worker's pool (prefork enforces
the task's time limits, the embedded runtime's threads pool does not): it must end within
`SEND_DEADLINE` of its claim. Building the message past it fails the send before any byte
leaves; the SMTP connection is opened by the outbox and shut down by a timer at the
deadline, so no command reaches the server after it (`_send_within`). A send that ended
records its outcome only if the claim is still its own (same `claimed_at`, still
`sending`), so a late finisher never overwrites a row the sweep took over.

`email_deliveries_redispatch` is the repair, run by the recovery sweep every few minutes
(`billing.recovery`) and by the hourly cycle; it measures with the wall clock it is given:
- a row claimed more than `STALE_CLAIM_AFTER` (the deadline plus a margin) ago and never
  finished: its sender is dead or past its deadline, so nothing it does can send any more.
  It is first turned `failed` by an update conditional on that very claim (status and
  `claimed_at`), and dispatched again only if that update changed the row, so two sweeps
  (or a sweep and the cycle) never both take it. Its mail may already have left (a worker
  killed after the SMTP server accepted it): that is the one window where a customer can
  get the same document twice, both Message-IDs naming the same delivery; never more, since
  the resend is claimed like any send.
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

import contextlib
import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.mail import EmailMessage, get_connection
from django.db import models, transaction

from accounts.email_identity import reseller_email_envelope
from accounts.models import Reseller
from billing.models import EmailDelivery
from core.task_options import EMAIL_SEND_TIME_LIMITS

Delivery = TypeVar("Delivery", bound=EmailDelivery)

logger = logging.getLogger(__name__)

#: A queued delivery whose task message was sent this long ago and not claimed gets another;
#: the wait doubles at each redispatch, up to `REDISPATCH_MAX_AFTER`.
REDISPATCH_AFTER = dt.timedelta(minutes=5)
REDISPATCH_MAX_AFTER = dt.timedelta(hours=1)
#: A send (building the message included) ends within this long of its claim, in any pool:
#: the send task's hard time limit (`EMAIL_SEND_TIME_LIMITS`, 3 minutes), enforced by the
#: send itself (`_send_within`).
SEND_DEADLINE = dt.timedelta(seconds=EMAIL_SEND_TIME_LIMITS["time_limit"])
#: A send claimed this long ago and not finished is dead: past its deadline, plus a margin for
#: recording its outcome.
STALE_CLAIM_AFTER = SEND_DEADLINE + dt.timedelta(minutes=2)

ABANDONED_NOTE = (
    "the sender stopped or ran past its deadline; sent again (the first attempt may have "
    "been delivered)"
)


class SendDeadlinePassed(Exception):
    """The send did not finish within `SEND_DEADLINE` of its claim; nothing more was sent."""


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

    `now` is the wall clock (the claim's time, from which `SEND_DEADLINE` runs). Errors while
    building or sending, and a send past its deadline, mark it `failed` (retryable) and
    propagate to the caller's retry.
    """
    model = type(delivery)
    claimed = _claim(model, delivery.pk, now)
    if claimed is None:
        return model.objects.get(pk=delivery.pk)
    deadline = time.monotonic() + SEND_DEADLINE.total_seconds()
    ours = model.objects.filter(pk=claimed.pk, status=model.Status.SENDING, claimed_at=now)
    try:
        message = build_message(claimed, now)
        _send_within(message, deadline=deadline)
    except Exception as exc:
        # Exception text from SMTP carries the server's reply, never our credentials.
        claimed.status = model.Status.FAILED
        claimed.last_error = f"{type(exc).__name__}: {exc}"[:500]
        ours.update(status=claimed.status, last_error=claimed.last_error)
        raise
    claimed.status = model.Status.SENT
    claimed.sent_at = now
    claimed.message_id = message.extra_headers.get("Message-ID", "")[:300]
    claimed.last_error = ""
    if not ours.update(
        status=claimed.status, sent_at=now, message_id=claimed.message_id, last_error=""
    ):
        # Taken over after our deadline (cannot happen unless this thread stalled for
        # minutes between the send and this line): the row keeps the later attempt's record.
        logger.warning("delivery %s sent after its claim was taken over", claimed.pk)
        return model.objects.get(pk=claimed.pk)
    return claimed


def _send_within(message: EmailMessage, *, deadline: float) -> None:
    """Send `message` through a connection the outbox opens, shut down at `deadline`
    (`time.monotonic()`): a server answering every command just within the per-command
    timeout (`EMAIL_TIMEOUT`) cannot stretch a send past it. Backends without a socket (the
    `.eml` files, locmem) only get the check before sending."""
    if time.monotonic() >= deadline:
        raise SendDeadlinePassed("the message was built after the send's deadline")
    connection = get_connection(fail_silently=False)
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        sock = getattr(getattr(connection, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(deadline - time.monotonic(), 0.0), cut)
    timer.daemon = True
    timer.start()
    try:
        connection.open()
        if expired.is_set():
            raise SendDeadlinePassed("the SMTP connection opened after the send's deadline")
        message.connection = connection
        message.send(fail_silently=False)
    except Exception as exc:
        if expired.is_set():
            raise SendDeadlinePassed(f"cut at the send's deadline ({exc})") from exc
        raise
    finally:
        timer.cancel()
        try:
            connection.close()
        except Exception:  # a half-closed socket: the outcome is decided already
            logger.debug("closing the email connection failed", exc_info=True)


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
    taken: list[int] = []
    abandoned = deliveries.filter(
        status=model.Status.SENDING, claimed_at__lt=now - STALE_CLAIM_AFTER
    ).values_list("pk", "claimed_at")
    for pk, claimed_at in abandoned.order_by("pk"):
        if model.objects.filter(pk=pk, status=model.Status.SENDING, claimed_at=claimed_at).update(
            status=model.Status.FAILED, last_error=ABANDONED_NOTE
        ):
            taken.append(pk)
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
