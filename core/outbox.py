"""An email outbox row sent exactly once: claim, send within a deadline, record, recover.

Every app that emails from a row (billing's document deliveries, usage alerts) keeps the
same five facts on it, under its own field names (`Outbox`): a status, the number of
attempts, when the current attempt claimed the row (`claimed_at`, the wall clock), the last
error and when it was sent. The rules are the same for all of them:

- `outbox_send` claims the row under a row lock (a claimable status -> sending, attempts+1,
  `claimed_at` = now), sends outside the transaction, then records sent, or failed and
  re-raises for the task's retry. A row already sending or sent is never sent again, so a
  task retried or delivered twice sends one email.
- A send is bounded in time by the send itself, whatever the worker's pool (prefork enforces
  the task's time limits, the embedded runtime's threads pool does not): it must end within
  `SEND_DEADLINE` of its claim. Building the message past it fails the send before any byte
  leaves; the SMTP connection is opened here and shut down by a timer at the deadline, so no
  command reaches the server after it (`send_within`). A send that ended records its outcome
  only if the claim is still its own (same `claimed_at`, still sending), so a late finisher
  never overwrites a row a recovery sweep took over.
- `outbox_stale_claims_take` is that recovery: a row claimed more than `STALE_CLAIM_AFTER`
  (the deadline plus a margin) ago and never finished has a dead sender. It is turned failed
  by an update conditional on that very claim (status and `claimed_at`), and returned (to be
  dispatched again) only if that update changed the row, so two sweeps never both take it.
  Its mail may already have left (a worker killed after the SMTP server accepted it): that is
  the one window where a recipient can get the same email twice; never more, since the
  resend is claimed like any send.

What is sent, to whom, and how a row is dispatched again stay with the app
(`billing.outbox`, `usage.alerts`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.mail import EmailMessage, get_connection
from django.db import models, transaction

from core.task_options import EMAIL_SEND_TIME_LIMITS

logger = logging.getLogger(__name__)

#: A send (building the message included) ends within this long of its claim, in any pool:
#: the send task's hard time limit (`EMAIL_SEND_TIME_LIMITS`, 3 minutes), enforced by the
#: send itself (`send_within`).
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


@dataclass(frozen=True)
class Outbox:
    """Where a model keeps its outbox state: the statuses and the names of its fields."""

    model: type[models.Model]
    claimable: tuple[str, ...]  # statuses a send may claim (queued/pending, failed)
    sending: str
    sent: str
    failed: str
    status: str = "status"
    attempts: str = "attempts"
    claimed_at: str = "claimed_at"
    last_error: str = "last_error"
    sent_at: str = "sent_at"
    select_related: tuple[str, ...] = ()  # what building the message reads

    def ours(self, pk: int, claimed_at: dt.datetime) -> models.QuerySet:
        """The row while it is still claimed by the attempt that claimed it at `claimed_at`."""
        return self.model.objects.filter(
            pk=pk, **{self.status: self.sending, self.claimed_at: claimed_at}
        )


def _claim(outbox: Outbox, pk: int, now: dt.datetime) -> Any | None:
    with transaction.atomic():
        row = (
            outbox.model.objects.select_for_update(of=("self",))
            .select_related(*outbox.select_related)
            .get(pk=pk)
        )
        if getattr(row, outbox.status) not in outbox.claimable:
            return None
        setattr(row, outbox.status, outbox.sending)
        setattr(row, outbox.attempts, getattr(row, outbox.attempts) + 1)
        setattr(row, outbox.claimed_at, now)
        row.save(update_fields=[outbox.status, outbox.attempts, outbox.claimed_at])
        return row


def outbox_send(
    *,
    outbox: Outbox,
    pk: int,
    now: dt.datetime,
    build_message: Callable[[Any, dt.datetime], EmailMessage],
    sent_fields: Callable[[EmailMessage], dict[str, Any]] | None = None,
) -> Any:
    """Send row `pk` at most once. Returns the row; its status says what happened.

    `now` is the wall clock (the claim's time, from which `SEND_DEADLINE` runs).
    `sent_fields` gives more fields to record with a send (a Message-ID). Errors while
    building or sending, and a send past its deadline, mark it failed (retryable) and
    propagate to the caller's retry.
    """
    claimed = _claim(outbox, pk, now)
    if claimed is None:
        return outbox.model.objects.get(pk=pk)
    deadline = time.monotonic() + SEND_DEADLINE.total_seconds()
    ours = outbox.ours(pk, now)
    try:
        message = build_message(claimed, now)
        send_within(message, deadline=deadline)
    except Exception as exc:
        # Exception text from SMTP carries the server's reply, never our credentials.
        failed = {
            outbox.status: outbox.failed,
            outbox.last_error: f"{type(exc).__name__}: {exc}"[:500],
        }
        for name, value in failed.items():
            setattr(claimed, name, value)
        ours.update(**failed)
        raise
    sent = {
        outbox.status: outbox.sent,
        outbox.sent_at: now,
        outbox.last_error: "",
        **(sent_fields(message) if sent_fields else {}),
    }
    for name, value in sent.items():
        setattr(claimed, name, value)
    if not ours.update(**sent):
        # Taken over after our deadline (cannot happen unless this thread stalled for
        # minutes between the send and this line): the row keeps the later attempt's record.
        logger.warning("%s %s sent after its claim was taken over", outbox.model.__name__, pk)
        return outbox.model.objects.get(pk=pk)
    return claimed


def send_within(message: EmailMessage, *, deadline: float) -> None:
    """Send `message` through a connection opened here, shut down at `deadline`
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


def outbox_stale_claims_take(
    *, outbox: Outbox, rows: models.QuerySet, now: dt.datetime
) -> list[int]:
    """Take the claims among `rows` older than `STALE_CLAIM_AFTER` (module text): each turned
    failed by an update conditional on its claim; returns the ids this call took, to be
    dispatched again by the caller. `now` is the wall clock: `claimed_at` is."""
    abandoned = rows.filter(
        **{outbox.status: outbox.sending, f"{outbox.claimed_at}__lt": now - STALE_CLAIM_AFTER}
    ).values_list("pk", outbox.claimed_at)
    taken = []
    for pk, claimed_at in abandoned.order_by("pk"):
        if outbox.ours(pk, claimed_at).update(
            **{outbox.status: outbox.failed, outbox.last_error: ABANDONED_NOTE}
        ):
            taken.append(pk)
    return taken
