"""Workers SIGKILLed mid-sync, mid-finalization and mid-send, then restarted on the normal
schedule: nothing lost, nothing billed, numbered or (outside the documented window) mailed
twice, nothing stuck.

Each drill runs the production worker (`tests/reliability/drill_worker.py`) on the test
database with Redis as the broker, stalls it at a known point, kills it with SIGKILL (no
handler runs, no ack is sent), starts a fresh worker and sends the beat tasks by name.
The broker's visibility timeout is cut to 4 s so the killed task's message comes back
within the drill (production: an hour; the same redelivery, later). Workers run on the
drill's clock (`timezone.now()` shifted to the drill's dates).
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from pypdf import PdfReader

from billing.models import Invoice, InvoiceEmail, InvoiceEvent, InvoiceSequence
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from tests.reliability import tally
from tests.reliability.conftest import IPFOXY_CREDENTIALS, start_sim
from tests.reliability.workers import wait_until
from usage.models import SyncRun, UsageDay, UsageHour

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

MARCH = dt.date(2026, 3, 1)
# April 3rd 06:00 UTC: March is closed and its 2-day grace is over, so one cycle run
# creates and finalizes the drafts.
CLOSE_AT = dt.datetime(2026, 4, 3, 6, tzinfo=dt.UTC)


def _billing_world(n_customers: int):
    reseller = factories.ResellerFactory(invoice_prefix="DRL", sender_email="billing@drill.test")
    plan = PlanFactory(reseller=reseller)
    upstream = factories.UpstreamAccountFactory(reseller=reseller)
    customers = []
    for i in range(n_customers):
        customer = factories.CustomerFactory(reseller=reseller, email=f"payer{i}@drill.test")
        SubscriptionFactory(customer=customer, plan=plan)
        sub = factories.SubAccountFactory(customer=customer, upstream_account=upstream)
        add_usage(sub, MARCH, 31, 4 + i)
        customers.append(customer)
    return reseller, customers


def _pdf_text(invoice: Invoice) -> str:
    with invoice.pdf.open("rb") as fh:
        return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(fh.read())).pages)


def _assert_invoices_whole(reseller, customers) -> list[Invoice]:
    """One finalized invoice per customer, gapless numbers, one finalization event each,
    a PDF showing its own number, and exactly one delivery each, sent."""
    invoices = list(Invoice.objects.filter(reseller=reseller).order_by("sequence_number"))
    assert sorted(i.customer_id for i in invoices) == sorted(c.pk for c in customers)
    assert {i.status for i in invoices} == {"finalized"}
    assert [i.sequence_number for i in invoices] == list(range(1, len(customers) + 1))
    assert InvoiceSequence.objects.get(reseller=reseller).last_number == len(customers)
    for invoice in invoices:
        events = InvoiceEvent.objects.filter(invoice=invoice, to_status="finalized")
        assert events.count() == 1
        assert invoice.pdf, f"{invoice.number} has no PDF"
        assert invoice.number in _pdf_text(invoice)
        deliveries = list(InvoiceEmail.objects.filter(invoice=invoice))
        assert [(d.sequence, d.status) for d in deliveries] == [(1, "sent")]
    return invoices


def _all_sent(reseller, n: int) -> bool:
    return (
        InvoiceEmail.objects.filter(invoice__reseller=reseller, status="sent").count() == n
        and not Invoice.objects.filter(reseller=reseller, pdf="").exists()
    )


def test_kill_between_numbering_and_pdf_leaves_no_gap_duplicate_or_half_invoice(drill):
    reseller, customers = _billing_world(3)
    drill.set_clock(CLOSE_AT)
    stalled = drill.worker(DRILL_STALL="pdf:2")
    drill.send("billing.tasks.invoice_cycle_reseller_task", reseller.pk, CLOSE_AT.isoformat())
    wait_until(lambda: (drill.workdir / "stalled").exists(), timeout=60, what="the PDF stall")
    stalled.kill()
    tally.add("worker_kills")

    # The crash point: the second invoice is numbered and committed, its PDF not stored.
    issued = Invoice.objects.filter(reseller=reseller).exclude(status="draft")
    numbers = sorted(issued.values_list("sequence_number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 2
    assert issued.filter(pdf="").exists()

    drill.worker()
    # The killed cycle message is redelivered (acks_late); then the next hourly beat.
    wait_until(
        lambda: not Invoice.objects.filter(reseller=reseller, status="draft").exists(),
        timeout=60,
        what="the redelivered cycle task to finalize the last draft",
    )
    drill.send("billing.tasks.invoice_cycle_task", (CLOSE_AT + dt.timedelta(hours=1)).isoformat())
    wait_until(lambda: _all_sent(reseller, 3), timeout=60, what="all 3 invoices mailed")
    wait_until(drill.broker_idle, timeout=30, what="the queue to drain")

    invoices = _assert_invoices_whole(reseller, customers)
    assert sorted(drill.smtp.message_ids()) == sorted(
        InvoiceEmail.objects.filter(invoice__in=invoices).values_list("message_id", flat=True)
    )
    assert len(set(drill.smtp.message_ids())) == 3
    tally.add("crashes_survived")


SYNC_NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)


def _sync_world(sim, names):
    reseller = factories.ResellerFactory()
    customer = factories.CustomerFactory(reseller=reseller)
    subs = []
    for name in names:  # one upstream account each: the hourly fan-out queues them at once
        upstream = factories.UpstreamAccountFactory(
            reseller=reseller, base_url=sim.url, credentials=IPFOXY_CREDENTIALS
        )
        subs.append(
            factories.SubAccountFactory(
                customer=customer, upstream_account=upstream, upstream_id=name
            )
        )
    return subs


def _stored(sub) -> dict:
    return dict(UsageHour.objects.filter(sub_account=sub).values_list("hour_start", "raw_value"))


def test_kill_mid_sync_loses_no_usage_once_the_schedule_runs_again(drill):
    from usage.locks import DEFAULT_TTL_SECONDS

    names = ["SIM00001", "SIM00002", "SIM00003"]
    with start_sim(SYNC_NOW) as sim:
        subs = _sync_world(sim, names)
        victim = subs[1]
        sim.set_faults(slow={"next": 1, "account": "SIM00002"}, slow_seconds=600)
        drill.set_clock(SYNC_NOW)
        stalled = drill.worker()
        drill.send("usage.tasks.usage_sync_all_task", now=SYNC_NOW.isoformat())
        wait_until(
            lambda: sim.stats()["faults_injected"].get("slow"),
            timeout=60,
            what="the sync of SIM00002 to stall in the upstream request",
        )
        stalled.kill()
        tally.add("worker_kills")

        # Nothing half-written: the killed sync stored no hour, no day and no run.
        assert not UsageHour.objects.filter(sub_account=victim).exists()
        assert not UsageDay.objects.filter(sub_account=victim).exists()
        assert not SyncRun.objects.filter(sub_account=victim).exists()
        # The dead worker's sync lock expires by itself (Redis TTL), so it cannot block
        # the sub-account for good.
        lock_key = f"flowbill:lock:sync:sub:{victim.pk}"
        assert 0 < drill.redis.pttl(lock_key) <= DEFAULT_TTL_SECONDS * 1000

        drill.worker()
        # The killed message comes back (acks_late) while the lock still lives: skipped,
        # and said so on the run; the other sub-accounts sync normally.
        wait_until(
            lambda: (
                SyncRun.objects.filter(sub_account=victim, status="skipped").exists()
                and all(
                    SyncRun.objects.filter(sub_account=s, status="succeeded").exists()
                    for s in subs
                    if s != victim
                )
            ),
            timeout=60,
            what="the redelivered sync (skipped) and the other two syncs",
        )
        assert not UsageHour.objects.filter(sub_account=victim).exists()

        # Time passes: the lock's TTL runs out (done by hand here), the next hour's beat.
        drill.redis.pexpire(lock_key, 1)
        later = SYNC_NOW + dt.timedelta(hours=1)
        sim.set_clock(now=later)
        drill.set_clock(later)
        drill.send("usage.tasks.usage_sync_all_task", now=later.isoformat())
        wait_until(
            lambda: (
                SyncRun.objects.filter(sub_account=victim, status="succeeded").exists()
                and SyncRun.objects.filter(status="succeeded").count() == 5
            ),
            timeout=60,
            what="the next hourly sync of all three sub-accounts",
        )
        wait_until(drill.broker_idle, timeout=30, what="the queue to drain")

        # Each hour is in 72 successive hourly windows, so a sync lost for a while loses
        # nothing: the victim holds the whole second window, the others both windows.
        for sub in subs:
            first = (SYNC_NOW if sub != victim else later).replace(minute=0)
            expected = sim.expected_hourly_flows(
                account=sub.upstream_id,
                start=first - dt.timedelta(hours=72),
                end=later + dt.timedelta(hours=1),
            )
            assert _stored(sub) == expected, sub.upstream_id
            days = UsageDay.objects.filter(sub_account=sub).values_list("bytes", flat=True)
            hours = UsageHour.objects.filter(sub_account=sub).values_list("bytes", flat=True)
            assert sum(days) == sum(hours) > 0
    assert not SyncRun.objects.filter(status="running").exists()
    tally.add("crashes_survived")


def _one_invoice_mailed(drill, plan):
    """A customer whose March invoice the worker finalizes and mails; SMTP follows `plan`."""
    reseller, customers = _billing_world(1)
    drill.smtp.plan.extend(plan)
    drill.set_clock(CLOSE_AT)
    worker = drill.worker(DRILL_FAST_RETRY="1")
    drill.send("billing.tasks.invoice_cycle_reseller_task", reseller.pk, CLOSE_AT.isoformat())
    return reseller, customers, worker


def test_smtp_temporary_failures_retry_and_send_exactly_once(drill):
    reseller, customers, _ = _one_invoice_mailed(drill, ["temp_fail", "temp_fail"])
    wait_until(lambda: _all_sent(reseller, 1), timeout=60, what="the third attempt to send")
    wait_until(drill.broker_idle, timeout=30, what="the queue to drain")
    _assert_invoices_whole(reseller, customers)
    delivery = InvoiceEmail.objects.get(invoice__reseller=reseller)
    assert (delivery.attempts, len(drill.smtp.accepted)) == (3, 1)


def test_kill_before_the_smtp_server_accepted_sends_the_email_once_later(drill):
    reseller, customers, worker = _one_invoice_mailed(drill, ["stall_before_accept"])
    wait_until(drill.smtp.stalled.is_set, timeout=60, what="the SMTP server to stall")
    worker.kill()
    tally.add("worker_kills")
    assert drill.smtp.accepted == [] and len(drill.smtp.abandoned) == 1
    assert InvoiceEmail.objects.get(invoice__reseller=reseller).status == "sending"

    drill.worker()
    drill.send("billing.tasks.invoice_cycle_task", (CLOSE_AT + dt.timedelta(hours=1)).isoformat())
    wait_until(lambda: _all_sent(reseller, 1), timeout=12, what="the email to be sent")
    wait_until(drill.broker_idle, timeout=30, what="the queue to drain")
    _assert_invoices_whole(reseller, customers)
    assert len(drill.smtp.accepted) == 1
    tally.add("crashes_survived")


def test_kill_after_the_smtp_server_accepted_mails_at_most_twice_and_ends_sent(drill):
    """The documented window: the server took the message, the worker died before
    recording it. The resend after the stale-claim timeout makes it two, never more."""
    reseller, customers, worker = _one_invoice_mailed(drill, ["stall_after_accept"])
    wait_until(drill.smtp.stalled.is_set, timeout=60, what="the SMTP server to stall")
    worker.kill()
    tally.add("worker_kills")
    assert len(drill.smtp.accepted) == 1

    drill.worker()
    for hours in (1, 2):  # two more hourly cycles: the second must not send a third
        now = CLOSE_AT + dt.timedelta(hours=hours)
        drill.send("billing.tasks.invoice_cycle_task", now.isoformat())
        wait_until(drill.broker_idle, timeout=20, what=f"cycle +{hours}h to finish")
    wait_until(lambda: _all_sent(reseller, 1), timeout=10, what="the delivery to end sent")
    (invoice,) = _assert_invoices_whole(reseller, customers)
    ids = drill.smtp.message_ids()  # both copies are delivery #1 of this invoice
    assert len(ids) == 2 and all(f".{invoice.pk}.1@" in i for i in ids)
    tally.add("crashes_survived")
