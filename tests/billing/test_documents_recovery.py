"""The recovery sweep (every 3 minutes): PDFs and emails a killed worker left undone are
recovered minutes later, each email still sent once."""

import datetime as dt

import pytest
from django.core import mail

from billing import outbox
from billing.invoicing import invoice_create_draft, invoice_finalize
from billing.invoicing.engine import IssueBatch
from billing.models import Invoice, InvoiceEmail
from billing.recovery import documents_recover
from billing.schedule import BEAT_SCHEDULE
from billing.tasks import documents_recover_all_task, invoice_email_send_task
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

OCT = dt.date(2026, 10, 1)
T = dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC)


def _minutes(n: int) -> dt.datetime:
    return T + dt.timedelta(minutes=n)


@pytest.fixture
def killed_after_commit(reseller, customer, sub_account, settings, tmp_path, monkeypatch):
    """An invoice finalized at T by a worker killed right after the commit: no PDF stored,
    its email queued with no task message."""
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


def test_the_sweep_renders_a_missing_pdf_three_minutes_after_finalization(killed_after_commit):
    reseller = killed_after_commit.reseller
    assert documents_recover(reseller=reseller, now=_minutes(1)).pdfs == []  # maybe still busy

    recovered = documents_recover(reseller=reseller, now=_minutes(3))

    assert recovered.pdfs == [killed_after_commit.pk]
    stored = Invoice.objects.get(pk=killed_after_commit.pk)
    assert stored.pdf and stored.pdf_rendered_at == _minutes(3)
    with stored.pdf.open("rb") as fh:
        assert fh.read().startswith(b"%PDF")


def test_the_sweep_sends_an_email_left_queued_five_minutes_once(
    killed_after_commit, django_capture_on_commit_callbacks
):
    reseller = killed_after_commit.reseller
    delivery = InvoiceEmail.objects.get(invoice=killed_after_commit)
    dispatched = []
    for minutes, hourly in ((3, False), (6, False), (9, False), (70, True)):
        with django_capture_on_commit_callbacks(execute=True):  # the task runs, in-process
            recovered = documents_recover(reseller=reseller, now=_minutes(minutes), hourly=hourly)
        dispatched.append(recovered.invoice_emails)

    assert dispatched == [[], [delivery.pk], [], []]

    assert len(mail.outbox) == 1
    assert mail.outbox[0].attachments[0][1].startswith(b"%PDF")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_an_email_claimed_by_a_dead_worker_is_sent_again_after_the_threshold_and_never_twice(
    killed_after_commit, django_capture_on_commit_callbacks
):
    reseller = killed_after_commit.reseller
    delivery = InvoiceEmail.objects.get(invoice=killed_after_commit)
    # A worker claimed it at T and was killed mid-send.
    InvoiceEmail.objects.filter(pk=delivery.pk).update(status="sending", claimed_at=T, attempts=1)
    dispatched = []
    # 4 minutes: past the send task's 3-minute hard limit, but within the margin.
    for minutes in (4, 6, 12):
        with django_capture_on_commit_callbacks(execute=True):
            recovered = documents_recover(reseller=reseller, now=_minutes(minutes))
        dispatched.append(recovered.invoice_emails)
    invoice_email_send_task.apply(args=[delivery.pk])  # the dead worker's message, redelivered

    assert dispatched == [[], [delivery.pk], []]

    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert dt.timedelta(minutes=5) == outbox.STALE_CLAIM_AFTER


def test_a_queued_email_gets_one_more_message_from_the_sweep_and_then_one_an_hour(
    killed_after_commit,
):
    """A delivery merely waiting behind a long queue is not given a message every sweep."""
    reseller = killed_after_commit.reseller
    delivery = InvoiceEmail.objects.get(invoice=killed_after_commit)
    sent: list[int] = []

    def sweep(minutes: int, *, again: bool = False) -> list[int]:
        return outbox.email_deliveries_redispatch(
            model=InvoiceEmail,
            reseller=reseller,
            now=_minutes(minutes),
            dispatch=sent.append,
            again=again,
        )

    assert [sweep(n) for n in (3, 6, 9, 12)] == [[], [delivery.pk], [], []]
    assert InvoiceEmail.objects.get(pk=delivery.pk).last_error == outbox.REDISPATCHED_NOTE
    assert sweep(20, again=True) == [delivery.pk]  # the hourly cycle, while still queued
    assert sent == [delivery.pk, delivery.pk]


def test_beat_runs_the_sweep_every_few_minutes_for_every_reseller(killed_after_commit):
    entry = BEAT_SCHEDULE["billing-documents-recover"]
    assert entry["schedule"] <= 300

    documents_recover_all_task.apply(args=[_minutes(3).isoformat()])

    assert Invoice.objects.get(pk=killed_after_commit.pk).pdf
