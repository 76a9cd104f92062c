"""The settings and task options the crash drills rely on, checked for every task of every
app (Celery's own `celery.*` tasks aside):

- a task is acknowledged only after it ran (a worker killed mid-task leaves its message to be
  delivered again), so every one of them must be safe to run twice;
- every task has a soft and a hard time limit sized to its work, and whatever a task holds
  while it runs (a sync lock, a discovery run, an email claim, a webhook lease) outlives its
  hard limit, so nothing is taken over while its owner still runs and nothing stays stuck
  after the worker kills it; a task cut at its soft limit releases or marks what it held
  (an email retried and sent once, a sync's lock freed, a webhook sent again after its lease);
- webhook sends have their own queue, so receivers that hang hold no other work's worker.
"""

import datetime as dt

import httpx
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.finalizing import invoice_finalize
from billing.models import InvoiceEmail
from config.celery import app
from core.outbox import STALE_CLAIM_AFTER
from core.task_options import LONGEST_HARD_TIME_LIMIT, VISIBILITY_TIMEOUT_MARGIN
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from tests.usage.fakes import FakeHistory, utc
from usage import tasks as usage_tasks
from usage.locks import DEFAULT_TTL_SECONDS
from usage.models import SyncRun, UsageHour
from usage.services import usage_sync_sub_account
from usage.services.discovery import STALE_RUN_AFTER
from webhooks import delivery
from webhooks.events import webhook_event_emit
from webhooks.services import webhook_endpoint_create

#: Redis redelivers a message not acknowledged within this many seconds (kombu's default);
#: a task still running then would run twice at once.
DEFAULT_VISIBILITY_TIMEOUT = 3600


def _flowbill_tasks():
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def _seconds(value) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def test_every_app_has_its_tasks_checked_here():
    apps = {name.split(".", 1)[0] for name in _flowbill_tasks()}
    assert {"usage", "billing", "webhooks", "idempotency"} <= apps
    assert len(_flowbill_tasks()) >= 19


def test_every_task_is_acknowledged_late_and_requeued_when_its_worker_dies():
    tasks = _flowbill_tasks()
    early = sorted(name for name, task in tasks.items() if not task.acks_late)
    assert early == []
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1  # a dead worker holds one message at most


def test_every_task_has_a_soft_time_limit_below_its_hard_one():
    tasks = _flowbill_tasks()
    limits = {name: (task.soft_time_limit, task.time_limit) for name, task in tasks.items()}
    unlimited = sorted(name for name, (soft, hard) in limits.items() if not (soft and hard))
    assert unlimited == []
    inverted = sorted(name for name, (soft, hard) in limits.items() if not soft < hard)
    assert inverted == []
    # The cleanup after the soft limit (a rollback, a run or claim recorded) gets >= 15 s.
    assert min(hard - soft for soft, hard in limits.values()) >= 15
    # A task still running when Redis redelivers its message would run twice at once.
    visibility = app.conf.broker_transport_options.get(
        "visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT
    )
    assert max(hard for _, hard in limits.values()) < visibility
    # The fallback for any task without its own (Celery's built-ins).
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit < visibility


def _longest_countdown(name: str, task) -> float:
    """The longest a message of `task` can wait in a worker for its countdown: its retry
    backoff (autoretry), or a wave of the hourly sync fan-out."""
    delays = [0.0]
    if getattr(task, "autoretry_for", ()):
        delays.append(task.retry_backoff_max if task.retry_backoff else task.default_retry_delay)
    if name in {"usage.tasks.usage_sync_sub_account_task", "usage.tasks.usage_sync_all_task"}:
        delays.append(usage_tasks.SPREAD_WAVE_SECONDS)
    return max(delays)


def test_every_message_is_acknowledged_within_the_visibility_timeout_even_after_a_countdown():
    """A message scheduled for later is held unacknowledged by a worker from the moment it
    is queued until its task ends: were that longer than the visibility timeout, Redis would
    hand it to a second worker and the task would run twice. Default: the longest hard
    limit (1800 s) + 5 minutes, so a killed worker's task runs again after 35 minutes."""
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility == LONGEST_HARD_TIME_LIMIT + VISIBILITY_TIMEOUT_MARGIN == 2100
    held = {
        name: _longest_countdown(name, task) + task.time_limit
        for name, task in _flowbill_tasks().items()
    }
    assert {name: seconds for name, seconds in held.items() if seconds >= visibility} == {}
    assert max(task.time_limit for task in _flowbill_tasks().values()) == LONGEST_HARD_TIME_LIMIT


def test_what_a_task_holds_outlives_its_hard_time_limit():
    tasks = _flowbill_tasks()

    def hard(name: str) -> int:
        return tasks[name].time_limit

    for name in (
        "usage.tasks.usage_sync_sub_account_task",
        "usage.tasks.usage_snapshot_bytesflows_task",
    ):  # the sub-account's sync lock (Redis TTL) is never lost while its sync runs
        assert hard(name) < DEFAULT_TTL_SECONDS, name
    # A discovery running is never closed as "worker_lost" by the next one while it runs.
    assert hard("usage.tasks.usage_discover_sub_accounts_task") < _seconds(STALE_RUN_AFTER)
    for name in (
        "billing.tasks.invoice_email_send_task",
        "billing.credit_notes.tasks.credit_note_email_send_task",
    ):  # a send in progress is never taken for abandoned and sent again meanwhile
        assert hard(name) < _seconds(STALE_CLAIM_AFTER), name
    # A webhook attempt is bounded by its deadline, its task by the hard limit, and the
    # delivery's lease outlives both: no second worker sends it while the first may.
    send = tasks["webhooks.tasks.webhook_delivery_send_task"]
    deadline = _seconds(delivery.ATTEMPT_DEADLINE)
    assert deadline < send.soft_time_limit < send.time_limit <= _seconds(delivery.LEASE)


def test_webhook_tasks_have_their_own_queue_and_everything_else_the_default():
    assert app.conf.task_default_queue == "celery"
    assert {queue.name for queue in settings.CELERY_TASK_QUEUES} == {"celery", "webhooks"}
    routed = {name: app.amqp.router.route({}, name)["queue"].name for name in _flowbill_tasks()}
    assert {name for name, queue in routed.items() if queue == "webhooks"} == {
        name for name in routed if name.startswith("webhooks.tasks.")
    }
    assert {queue for name, queue in routed.items() if not name.startswith("webhooks.")} == {
        "celery"
    }


# What a task cut at its soft time limit leaves behind: released or marked, never stuck.
# (`SoftTimeLimitExceeded` is raised where the task happens to be; here, where it waits.)

NOW = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_an_email_cut_at_its_soft_time_limit_is_marked_failed_and_its_retry_sends_once(
    customer, sub_account, settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=customer.reseller))
    add_usage(sub_account, dt.date(2026, 10, 1), 31, 5)
    draft, _ = invoice_create_draft(customer=customer, period_start=dt.date(2026, 10, 1), now=NOW)
    real_send = EmailBackend.send_messages
    calls = []

    def cut_once(self, messages):
        calls.append(len(messages))
        if len(calls) == 1:
            raise SoftTimeLimitExceeded()
        return real_send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", cut_once)
    with django_capture_on_commit_callbacks(execute=True):  # the send task runs (eagerly)
        invoice = invoice_finalize(invoice=draft, now=NOW)

    delivery = InvoiceEmail.objects.get(invoice=invoice)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert delivery.last_error == "" and len(calls) == 2 and len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_sync_cut_at_its_soft_time_limit_records_a_failed_run_and_frees_the_sub_account(
    sub_account,
):
    start, end = utc(2026, 3, 6), utc(2026, 3, 7)

    with pytest.raises(SoftTimeLimitExceeded):
        usage_sync_sub_account(
            sub_account=sub_account,
            start=start,
            end=end,
            now=end,
            connector=FakeHistory(error=SoftTimeLimitExceeded()),
        )
    cut = SyncRun.objects.get(sub_account=sub_account)
    assert (cut.status, cut.error_code) == ("failed", "internal_error")

    hours = {start + dt.timedelta(hours=i): 1000 for i in range(24)}
    run = usage_sync_sub_account(
        sub_account=sub_account, start=start, end=end, now=end, connector=FakeHistory(hours)
    )
    assert run.status == "succeeded"  # not skipped: the cut sync let go of its lock
    assert UsageHour.objects.filter(sub_account=sub_account).count() == 24


@pytest.mark.django_db
def test_a_webhook_send_cut_at_its_soft_time_limit_is_sent_again_when_its_lease_expires(
    reseller, monkeypatch
):
    answers = [SoftTimeLimitExceeded(), httpx.Response(204)]

    def handler(request):
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(delivery, "http_transport", lambda: httpx.MockTransport(handler))
    webhook_endpoint_create(
        reseller=reseller, url="https://hooks.example.com/flowbill", enabled_events=["sync.failed"]
    )
    event = webhook_event_emit(reseller_id=reseller.pk, event_type="sync.failed", data={}, now=NOW)
    (pending,) = event.new_deliveries

    with pytest.raises(SoftTimeLimitExceeded):
        delivery.webhook_delivery_send(delivery_id=pending.pk, now=NOW)
    # Leased, so not sent again while the cut attempt might still be on the wire...
    assert delivery.webhook_deliveries_due(now=NOW + delivery.LEASE / 2) == []
    assert delivery.webhook_delivery_send(delivery_id=pending.pk, now=NOW) is None
    # ...and due again once the lease is over: the sweep sends it.
    later = NOW + delivery.LEASE
    assert delivery.webhook_deliveries_due(now=later) == [pending.pk]
    sent = delivery.webhook_delivery_send(delivery_id=pending.pk, now=later)
    assert (sent.status, sent.attempts, answers) == ("succeeded", 2, [])
