"""The recovery sweep (every 3 minutes): PDFs and emails a killed worker left undone are
recovered minutes later, each email still sent once. Ages are wall-clock: a batch's logical
`now` (its fan-out time, here a month before the tests run) never makes a row look old."""

import datetime as dt
import socket
import threading
import time

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from billing import outbox
from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.delivery import invoice_email_send, invoice_pdf_render, invoice_pdfs_save
from billing.invoicing.engine import IssueBatch
from billing.invoicing.finalizing import invoice_finalize
from billing.models import Invoice, InvoiceEmail
from billing.recovery import documents_recover
from billing.schedule import BEAT_SCHEDULE
from billing.tasks import documents_recover_all_task, documents_recover_task
from core import outbox as core_outbox
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

OCT = dt.date(2026, 10, 1)
T = dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC)  # the batch's logical now


def _ago(minutes: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=minutes)


@pytest.fixture
def killed_after_commit(reseller, customer, sub_account, settings, tmp_path, monkeypatch):
    """An invoice finalized (logical time T) by a worker killed right after the commit, which
    happened just now: no PDF stored, its email queued with no task message."""
    settings.MEDIA_ROOT = tmp_path
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    add_usage(sub_account, OCT, 31, 5)
    draft, _ = invoice_create_draft(customer=customer, period_start=OCT, now=T)
    with monkeypatch.context() as patch:
        patch.setattr(IssueBatch, "committed", lambda self, items: None)
        invoice = invoice_finalize(invoice=draft, now=T)
    assert not Invoice.objects.get(pk=invoice.pk).pdf
    assert InvoiceEmail.objects.get(invoice=invoice).status == "queued"
    return invoice


def test_the_sweep_renders_a_missing_pdf_two_minutes_after_the_row_was_written_not_its_batch_time(
    killed_after_commit,
):
    reseller = killed_after_commit.reseller
    # finalized_at is T, a month ago, but the row was written just now: a batch may still be
    # storing its PDF.
    assert documents_recover(reseller=reseller, now=timezone.now()).pdfs == []

    Invoice.objects.filter(pk=killed_after_commit.pk).update(updated_at=_ago(3))
    now = timezone.now()
    recovered = documents_recover(reseller=reseller, now=now)

    assert recovered.pdfs == [killed_after_commit.pk]
    stored = Invoice.objects.get(pk=killed_after_commit.pk)
    assert stored.pdf and stored.pdf_rendered_at == now
    with stored.pdf.open("rb") as fh:
        assert fh.read().startswith(b"%PDF")


def test_a_pdf_stored_first_by_the_batch_wins_and_the_sweeps_file_is_deleted(
    killed_after_commit, tmp_path
):
    listed_by_sweep = Invoice.objects.select_related("reseller").get(pk=killed_after_commit.pk)
    batch = Invoice.objects.select_related("reseller").get(pk=killed_after_commit.pk)
    data = invoice_pdf_render(invoice=batch)
    by_batch = invoice_pdfs_save(pdfs=[(batch, data)], now=T)

    by_sweep = invoice_pdfs_save(pdfs=[(listed_by_sweep, data)], now=T + dt.timedelta(minutes=3))

    stored = Invoice.objects.get(pk=batch.pk)
    assert (stored.pdf.name, stored.pdf_rendered_at) == (batch.pdf.name, T)
    files = [p.name for p in tmp_path.rglob("*.pdf")]
    assert files == [batch.pdf.name.rsplit("/", 1)[-1]]
    assert listed_by_sweep.pdf.name == batch.pdf.name
    assert (by_batch, by_sweep) == ({batch.pk}, set())


def test_the_sweep_sends_an_email_whose_task_message_is_five_minutes_old_once(
    killed_after_commit, django_capture_on_commit_callbacks
):
    reseller = killed_after_commit.reseller
    delivery = InvoiceEmail.objects.get(invoice=killed_after_commit)
    dispatched = []
    with django_capture_on_commit_callbacks(execute=True):  # queued_at is T: not a reason
        dispatched.append(documents_recover(reseller=reseller, now=timezone.now()).invoice_emails)
    InvoiceEmail.objects.filter(pk=delivery.pk).update(dispatched_at=_ago(6))
    for hourly in (False, False, True):
        with django_capture_on_commit_callbacks(execute=True):  # the task runs, in-process
            recovered = documents_recover(reseller=reseller, now=timezone.now(), hourly=hourly)
        dispatched.append(recovered.invoice_emails)

    assert dispatched == [[], [delivery.pk], [], []]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].attachments[0][1].startswith(b"%PDF")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 1, "")


def test_a_queued_email_gets_more_messages_at_doubling_intervals_and_never_an_error_text(
    killed_after_commit,
):
    """A delivery merely waiting behind a long queue is not given a message every sweep."""
    reseller = killed_after_commit.reseller
    delivery = InvoiceEmail.objects.get(invoice=killed_after_commit)
    base = timezone.now()
    InvoiceEmail.objects.filter(pk=delivery.pk).update(dispatched_at=base)
    sent: list[int] = []

    def sweep(minutes: int) -> list[int]:
        return outbox.email_deliveries_redispatch(
            model=InvoiceEmail,
            reseller=reseller,
            now=base + dt.timedelta(minutes=minutes),
            dispatch=sent.append,
        )

    swept = {n: sweep(n) for n in range(3, 150, 3)}

    # waits of 5, 10, 20, 40, then 60 minutes after each message
    assert [n for n, ids in swept.items() if ids] == [6, 18, 39, 81, 141]
    assert sent == [delivery.pk] * 5
    stored = InvoiceEmail.objects.get(pk=delivery.pk)
    assert (stored.status, stored.last_error, stored.redispatches) == ("queued", "", 5)


def test_an_email_claimed_by_a_dead_worker_is_sent_again_after_the_threshold_and_never_twice(
    killed_after_commit, django_capture_on_commit_callbacks
):
    reseller = killed_after_commit.reseller
    delivery = InvoiceEmail.objects.get(invoice=killed_after_commit)
    claimed_at = _ago(4)  # past the send's 3-minute deadline, within the margin
    InvoiceEmail.objects.filter(pk=delivery.pk).update(
        status="sending", claimed_at=claimed_at, attempts=1
    )
    dispatched = []
    for minutes in (0, 2, 8):
        with django_capture_on_commit_callbacks(execute=True):
            now = timezone.now() + dt.timedelta(minutes=minutes)
            dispatched.append(documents_recover(reseller=reseller, now=now).invoice_emails)
    invoice_email_send(delivery=delivery, now=timezone.now())  # its message, redelivered

    assert dispatched == [[], [delivery.pk], []]
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert core_outbox.SEND_DEADLINE + dt.timedelta(minutes=2) == core_outbox.STALE_CLAIM_AFTER


def test_a_sweep_that_loses_an_abandoned_claim_to_another_sweep_dispatches_nothing(
    killed_after_commit,
):
    reseller = killed_after_commit.reseller
    delivery = InvoiceEmail.objects.get(invoice=killed_after_commit)
    InvoiceEmail.objects.filter(pk=delivery.pk).update(
        status="sending", claimed_at=_ago(10), attempts=1
    )
    resent_claim = timezone.now()
    raced = []

    def other_sweep_between_list_and_update(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not raced and sql.lstrip().upper().startswith("SELECT") and "claimed_at" in sql:
            raced.append(sql)  # the other sweep took it, and its resend claimed it
            InvoiceEmail.objects.filter(pk=delivery.pk).update(
                status="sending", claimed_at=resent_claim, attempts=2
            )
        return result

    sent: list[int] = []
    with connection.execute_wrapper(other_sweep_between_list_and_update):
        taken = outbox.email_deliveries_redispatch(
            model=InvoiceEmail, reseller=reseller, now=timezone.now(), dispatch=sent.append
        )

    assert raced and taken == [] and sent == []
    stored = InvoiceEmail.objects.get(pk=delivery.pk)
    assert (stored.status, stored.claimed_at, stored.attempts) == ("sending", resent_claim, 2)


def test_a_sender_finishing_after_the_sweep_took_its_claim_over_keeps_the_later_record(
    killed_after_commit,
):
    delivery = InvoiceEmail.objects.get(invoice=killed_after_commit)
    later = timezone.now() + dt.timedelta(minutes=6)

    def build_then_stall(claimed, now):
        from billing.invoicing.delivery import _build_message

        message = _build_message(claimed, now)
        # Meanwhile the sweep took the claim over and its resend finished.
        InvoiceEmail.objects.filter(pk=claimed.pk).update(
            status="sent", claimed_at=later, sent_at=later, message_id="<resent@example>"
        )
        return message

    outbox.email_delivery_send(
        delivery=delivery, now=timezone.now(), build_message=build_then_stall
    )

    stored = InvoiceEmail.objects.get(pk=delivery.pk)
    assert (stored.status, stored.sent_at, stored.message_id) == (
        "sent",
        later,
        "<resent@example>",
    )


class _TarpitSmtp:
    """An SMTP server answering each command `delay` seconds late (a greylisting relay):
    every reply is within a 30-second timeout, the whole send is not short."""

    def __init__(self, delay: float):
        self.delay = delay
        self.delivered = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 tarpit\r\n")
            in_data = False
            for raw in lines:
                line = raw.rstrip(b"\r\n")
                if in_data:
                    if line == b".":
                        in_data = False
                        time.sleep(self.delay)
                        self.delivered.set()
                        conn.sendall(b"250 queued\r\n")
                    continue
                time.sleep(self.delay)
                verb = line[:4].upper()
                try:
                    if verb == b"DATA":
                        in_data = True
                        conn.sendall(b"354 go on\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    else:
                        conn.sendall(b"250 ok\r\n")
                except OSError:
                    return

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=10)


def test_a_send_slower_than_its_deadline_is_cut_whatever_the_pool_and_sends_nothing(
    killed_after_commit, settings, monkeypatch
):
    """The embedded runtime's threads pool enforces no time limit: the send bounds itself,
    so a claim older than `STALE_CLAIM_AFTER` is really dead."""
    server = _TarpitSmtp(delay=0.5)  # 7 replies: 3.5 s for the whole send
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 30
    settings.EMAIL_USE_TLS = False
    monkeypatch.setattr(core_outbox, "SEND_DEADLINE", dt.timedelta(seconds=1.5))
    delivery = InvoiceEmail.objects.get(invoice=killed_after_commit)
    invoice_pdf_render(invoice=killed_after_commit)  # warm the renderer: the deadline is short

    raised = None
    try:
        invoice_email_send(delivery=delivery, now=timezone.now())
    except Exception as exc:
        raised = exc
    finally:
        server.close()

    assert not server.delivered.is_set()
    assert type(raised).__name__ == "SendDeadlinePassed"
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("SendDeadlinePassed")


def test_beat_runs_the_sweep_every_few_minutes_and_its_messages_expire_before_the_next(
    killed_after_commit, monkeypatch
):
    entry = BEAT_SCHEDULE["billing-documents-recover"]
    assert entry["schedule"] <= 300
    Invoice.objects.filter(pk=killed_after_commit.pk).update(updated_at=_ago(3))
    sent = []
    apply_async = documents_recover_task.apply_async

    def spy(args=None, kwargs=None, **options):
        sent.append(options.get("expires"))
        return apply_async(args, kwargs, **options)

    monkeypatch.setattr(documents_recover_task, "apply_async", spy)

    documents_recover_all_task.apply(args=[T.isoformat()])  # fan-out time: long ago

    assert sent == [entry["options"]["expires"]] and sent[0] < entry["schedule"]
    assert Invoice.objects.get(pk=killed_after_commit.pk).pdf
