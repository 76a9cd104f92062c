"""The allocation ledger's rules without a network: what is refused before a row exists, and
how each upstream outcome moves a row (a fake connector answers)."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import Provider
from config.celery import app as celery_app
from core.errors import ApplicationError
from core.task_options import UPSTREAM_TIME_LIMITS
from tests import factories
from usage.models import Allocation
from usage.providers.base import (
    AuthError,
    InsufficientBalanceError,
    OutcomeUnknownError,
    RateLimitedError,
    TransientError,
)
from usage.schedule import BEAT_SCHEDULE
from usage.services.allocations import (
    LEASE,
    MAX_ATTEMPTS,
    REVIEW_AFTER,
    allocation_create,
    allocation_send,
)

NOW = dt.datetime(2026, 11, 3, 9, 30, tzinfo=dt.UTC)
MIB = 1_048_576
GIB = 1024 * MIB


class FakeUpstream:
    """Answers each `allocate_flow` with the next outcome (an exception is raised)."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls: list[dict] = []

    def allocate_flow(self, **kwargs):
        self.calls.append(kwargs)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def unknown() -> OutcomeUnknownError:
    return OutcomeUnknownError("timed out after sending", cause=TransientError("timeout"))


@pytest.fixture
def sub(customer, upstream_account):
    return factories.SubAccountFactory(
        customer=customer, upstream_account=upstream_account, upstream_id="FBRULES000001"
    )


def create(sub_account, nbytes=GIB, *, now=NOW, **kwargs):
    return allocation_create(
        sub_account=sub_account, bytes=nbytes, actor="key k7x2m9qa", now=now, **kwargs
    )


def send(allocation, fake, now=NOW):
    return allocation_send(allocation=allocation, now=now, connector=fake)


# --- refused before anything is recorded ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "nbytes",
    [MIB + MIB // 2, 0, -1, -GIB, 1, GIB + 1, True, "1073741824", 1.5, 1_000_000_001 * MIB],
    ids=["1.5 MB", "zero", "minus one", "minus 1 GiB", "one byte", "1 GiB + 1", "bool", "text",
         "float", "over IPFoxy's maximum"],
)  # fmt: skip
def test_bytes_must_be_a_positive_whole_number_of_mb(sub, nbytes):
    with pytest.raises(ApplicationError) as raised:
        create(sub, nbytes)
    assert raised.value.code == "invalid_amount"
    assert list(raised.value.extra["fields"]) == ["bytes"]
    assert not Allocation.objects.exists()


@pytest.mark.django_db
def test_mb_is_the_upstream_accounts_own(customer, reseller):
    decimal_mb = factories.UpstreamAccountFactory(reseller=reseller, mb_bytes=1_000_000)
    sub = factories.SubAccountFactory(
        customer=customer, upstream_account=decimal_mb, upstream_id="FBDECIMAL0001"
    )
    with pytest.raises(ApplicationError, match="1000000 bytes each"):
        create(sub, MIB)
    assert create(sub, 5_000_000).flow_mb == 5


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"expires_in_days": 7}, "expires_in_days"), ({"reason": "gift"}, "reason")],
)
def test_expiry_and_reason_come_from_their_lists(sub, kwargs, field):
    with pytest.raises(ApplicationError) as raised:
        create(sub, **kwargs)
    assert (raised.value.code, list(raised.value.extra["fields"])) == ("validation_error", [field])


@pytest.mark.django_db
def test_bytesflows_sub_accounts_have_no_allocations(customer, reseller):
    bytesflows = factories.UpstreamAccountFactory(
        reseller=reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    sub = factories.SubAccountFactory(
        customer=customer,
        upstream_account=bytesflows,
        upstream_id="alice-bytesflows",
        credentials={"token": "bf-alice"},
    )
    with pytest.raises(ApplicationError) as raised:
        create(sub)
    assert (raised.value.code, raised.value.http_status) == ("provider_has_no_reseller_api", 409)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("sub_account_closed", "sub_account_not_active"),
        ("sub_account_suspended", "sub_account_not_active"),
        ("customer_suspended", "customer_suspended"),
        ("upstream_inactive", "upstream_account_inactive"),
        ("short_upstream_id", "upstream_id_invalid"),
    ],
)
def test_allocations_go_only_to_active_sub_accounts_of_active_customers(sub, change, code):
    if change.startswith("sub_account_"):
        sub.status = change.removeprefix("sub_account_")
        sub.save()
    elif change == "customer_suspended":
        sub.customer.status, sub.customer.suspended_at = "suspended", NOW
        sub.customer.save()
    elif change == "upstream_inactive":
        sub.upstream_account.is_active = False
        sub.upstream_account.save()
    else:
        sub.upstream_id = "X" * 70
        sub.save()
    with pytest.raises(ApplicationError) as raised:
        create(sub)
    assert (raised.value.code, raised.value.http_status) == (code, 409)
    assert not Allocation.objects.exists()


@pytest.mark.django_db
def test_now_must_be_aware(sub):
    with pytest.raises(ApplicationError, match="aware"):
        create(sub, now=NOW.replace(tzinfo=None))


# --- one send, each outcome ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_send_carries_the_rows_key_amount_and_expiry(sub):
    allocation = create(sub, 3 * GIB, expires_in_days=90, reason="order")
    fake = FakeUpstream(None)
    sent = send(allocation, fake)
    assert fake.calls == [
        {
            "account": "FBRULES000001",
            "flow_mb": 3072,
            "idempotency_key": allocation.idempotency_key,
            "day": 90,
        }
    ]
    assert (sent.status, sent.reason, sent.created_by, sent.sent_at) == (
        "confirmed",
        "order",
        "key k7x2m9qa",
        NOW,
    )


@pytest.mark.django_db
def test_a_definitive_refusal_fails_even_after_an_uncertain_send(sub):
    """IPFoxy replays an applied key's success, so 60300 on a resend proves nothing was
    applied by the earlier, uncertain send either."""
    allocation = create(sub)
    fake = FakeUpstream(unknown(), InsufficientBalanceError("60300"))
    assert send(allocation, fake).status == "pending"
    sent = send(allocation, fake, NOW + dt.timedelta(minutes=1))
    assert (sent.status, sent.error_code, sent.maybe_applied) == (
        "failed",
        "upstream_insufficient_balance",
        False,
    )
    assert {call["idempotency_key"] for call in fake.calls} == {allocation.idempotency_key}


@pytest.mark.django_db
def test_refused_credentials_after_an_uncertain_send_keep_it_pending_not_failed(sub):
    allocation = create(sub)
    fake = FakeUpstream(unknown(), AuthError("60401"))
    send(allocation, fake)
    sent = send(allocation, fake, NOW + dt.timedelta(minutes=1))
    # The first send may have been applied: "failed" would be a lie. It keeps trying.
    assert (sent.status, sent.error_code, sent.maybe_applied) == (
        "pending",
        "upstream_auth_failed",
        True,
    )


@pytest.mark.django_db
def test_a_rate_limited_send_is_retried_later_and_known_not_applied(sub):
    allocation = create(sub)
    fake = FakeUpstream(RateLimitedError("50000"), None)
    sent = send(allocation, fake)
    assert (sent.status, sent.maybe_applied) == ("pending", False)
    assert sent.next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert send(allocation, fake, NOW + dt.timedelta(seconds=59)) is None  # not due
    assert send(allocation, fake, NOW + dt.timedelta(seconds=60)).status == "confirmed"


@pytest.mark.django_db
def test_an_argument_the_connector_refuses_fails_the_row_without_a_request(sub):
    allocation = create(sub)
    sent = send(allocation, FakeUpstream(ValueError("day must be one of ...")))
    assert (sent.status, sent.error_code) == ("failed", "upstream_bad_parameter")


@pytest.mark.django_db
def test_outcomes_that_stay_unknown_go_to_review_after_the_last_attempt(sub):
    allocation = create(sub)
    fake = FakeUpstream(*[unknown() for _ in range(MAX_ATTEMPTS)])
    when = NOW
    for attempt in range(1, MAX_ATTEMPTS):
        sent = send(allocation, fake, when)
        assert (sent.status, sent.attempts) == ("pending", attempt)
        when = sent.next_attempt_at
    sent = send(allocation, fake, when)
    assert (sent.status, sent.attempts, sent.error_code) == (
        "needs_review",
        MAX_ATTEMPTS,
        "upstream_outcome_unknown",
    )
    assert send(allocation, fake, when + dt.timedelta(days=1)) is None
    assert len(fake.calls) == MAX_ATTEMPTS


@pytest.mark.django_db
def test_a_row_pending_a_day_gives_up_failed_if_never_applied_else_for_review(sub):
    never_applied, maybe_applied = create(sub), create(sub)
    send(never_applied, FakeUpstream(RateLimitedError("50000")))
    send(maybe_applied, FakeUpstream(unknown()))
    later = NOW + REVIEW_AFTER
    fake = FakeUpstream()
    assert send(never_applied, fake, later).status == "failed"
    assert send(maybe_applied, fake, later).status == "needs_review"
    assert fake.calls == []


@pytest.mark.django_db
def test_a_sub_account_suspended_before_the_send_fails_it_unless_already_sent(sub):
    unsent, uncertain = create(sub), create(sub)
    send(uncertain, FakeUpstream(unknown()))
    sub.status = "suspended"
    sub.save()
    fake = FakeUpstream()
    sent = send(unsent, fake)
    assert (sent.status, sent.error_code) == ("failed", "sub_account_not_active")
    later = send(uncertain, fake, NOW + dt.timedelta(minutes=1))
    assert (later.status, later.error_code) == ("needs_review", "sub_account_not_active")
    assert fake.calls == []


@pytest.mark.django_db
def test_a_claimed_send_is_not_sent_again_while_its_lease_runs(sub):
    allocation = create(sub)

    class SendsTwice(FakeUpstream):
        def allocate_flow(self, **kwargs):
            # While this send is in flight, a duplicate task arrives.
            self.inner = allocation_send(allocation=allocation, now=NOW, connector=self)
            return super().allocate_flow(**kwargs)

    fake = SendsTwice(None)
    assert send(allocation, fake).status == "confirmed"
    assert fake.inner is None and len(fake.calls) == 1


# --- tasks and schedule --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["usage.tasks.allocation_send_task", "usage.tasks.upstream_write_send_task"]
)
def test_the_lease_outlives_the_send_tasks_hard_time_limit(name):
    task = celery_app.tasks[name]
    assert task.time_limit == UPSTREAM_TIME_LIMITS["time_limit"]
    assert task.acks_late
    assert task.time_limit < LEASE.total_seconds()


def test_beat_sweeps_pending_upstream_writes_every_minute():
    entry = BEAT_SCHEDULE["usage-upstream-writes-resend-pending"]
    assert entry["task"] == "usage.tasks.upstream_writes_resend_pending_task"
    assert entry["task"] in celery_app.tasks
    assert str(entry["schedule"]) == str(__import__("celery").schedules.crontab())
