"""Issue 15, the measurement: one reseller's 20 webhook endpoints that never answer cannot
stall the other work, and hold their own worker only as the rules say.

Real workers as docker-compose.yml runs them, on PostgreSQL with Redis as the broker: the
default worker (`-Q celery`, prefork, 4 processes) and the webhooks worker (`-Q webhooks`,
prefork, 8 processes). The receiver is a local TCP server that accepts every connection,
reads the request and never answers (local addresses are allowed to the drill's workers by
`FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS`, a test and demo switch). With every webhooks
process busy on it, an invoice is finalized and mailed and a sub-account synced from the
simulator, each on time; meanwhile the receiver sees at most one connection per endpoint
at a time, never the same delivery twice at once, and every attempt cut at its deadline.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from billing.models import Invoice, InvoiceEmail
from core.http import TIMED_OUT
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from tests.reliability.conftest import IPFOXY_CREDENTIALS, start_sim
from tests.reliability.workers import wait_until
from usage.models import SyncRun
from webhooks import delivery as webhook_delivery
from webhooks.catalogue import EVENT_TYPES
from webhooks.events import webhook_event_emit
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.services import MAX_ENDPOINTS_PER_RESELLER, webhook_endpoint_create

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

ENDPOINTS = MAX_ENDPOINTS_PER_RESELLER  # 20: as many as one reseller may have
EVENTS_PER_ENDPOINT = 3
WEBHOOK_PROCESSES = 8  # docker-compose.yml: webhooks-worker --concurrency=8
DEFAULT_PROCESSES = 4  # docker-compose.yml: worker --concurrency=4
#: "On time": the invoice finalized and mailed, the sync run succeeded, within this many
#: seconds of their tasks being sent (unloaded, both take about a second), and in fact
#: within one attempt's deadline: they never waited for a hanging send.
ON_TIME = 20.0
#: The receiver notices a connection's end a moment after the sender dropped it; two
#: attempts of one endpoint that overlap by less than this are back to back, not parallel
#: (a second send in parallel would overlap by seconds: both hang until their deadline).
CLOSE_NOTICE = 1.0

MARCH = dt.date(2026, 3, 1)
# April 3rd 06:00 UTC: March is closed and its grace is over, so one cycle run creates,
# finalizes and mails the invoice.
CLOSE_AT = dt.datetime(2026, 4, 3, 6, tzinfo=dt.UTC)


def _seconds(value) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


@dataclass
class Connection:
    path: str
    event_id: str
    opened: float
    closed: float | None = None


@dataclass
class BlackHole:
    """Accepts, reads the request, never answers; remembers who came and for how long."""

    connections: list[Connection] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> BlackHole:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{index}"

    def stop(self) -> None:
        self._stopping.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        head, record = b"", None
        try:
            while not self._stopping.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:  # the sender gave up (its deadline) or its process died
                    break
                if record is None:
                    head += chunk
                    if b"\r\n\r\n" in head:
                        record = self._opened(head)
        except OSError:
            pass
        finally:
            if record is not None:
                record.closed = time.monotonic()
            conn.close()

    def _opened(self, head: bytes) -> Connection:
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        headers = {name.strip().lower(): value.strip() for name, value in headers.items()}
        record = Connection(
            path=lines[0].split(" ")[1],
            event_id=headers.get("flowbill-event-id", ""),
            opened=time.monotonic(),
        )
        with self._lock:
            self.connections.append(record)
        return record

    def snapshot(self) -> list[Connection]:
        with self._lock:
            return list(self.connections)

    def open_now(self) -> int:
        return sum(c.closed is None for c in self.snapshot())


def _most_at_once(connections: list[Connection], key) -> dict:
    """The most connections each key had open at once (ignoring back-to-back ends)."""
    now = time.monotonic()
    by_key = defaultdict(list)
    for c in connections:
        by_key[key(c)].append((c.opened, (c.closed or now) - CLOSE_NOTICE))
    most = {}
    for k, spans in by_key.items():
        edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
        level = peak = 0
        for _, step in edges:  # at equal times an end (-1) sorts before a start
            level += step
            peak = max(peak, level)
        most[k] = peak
    return most


def _world(sim, hole):
    """A reseller with 20 endpoints on the black hole (every event type), a customer whose
    March invoice is due, and a sub-account of another customer to sync from the simulator."""
    reseller = factories.ResellerFactory(invoice_prefix="ISO", sender_email="billing@drill.test")
    for index in range(ENDPOINTS):
        webhook_endpoint_create(reseller=reseller, url=hole.url(index), enabled_events=EVENT_TYPES)
    plan = PlanFactory(reseller=reseller)
    payer = factories.CustomerFactory(reseller=reseller, email="payer@drill.test")
    SubscriptionFactory(customer=payer, plan=plan)
    billed = factories.SubAccountFactory(
        customer=payer, upstream_account=factories.UpstreamAccountFactory(reseller=reseller)
    )
    add_usage(billed, MARCH, 31, 5)
    synced = factories.SubAccountFactory(
        customer=factories.CustomerFactory(reseller=reseller),
        upstream_account=factories.UpstreamAccountFactory(
            reseller=reseller, base_url=sim.url, credentials=IPFOXY_CREDENTIALS
        ),
        upstream_id="SIM00001",
    )
    return reseller, payer, synced


def _mailed(payer) -> bool:
    return InvoiceEmail.objects.filter(invoice__customer=payer, status="sent").exists()


def _synced(sub) -> bool:
    return SyncRun.objects.filter(sub_account=sub, status="succeeded").exists()


def test_endpoints_that_never_answer_hold_only_the_webhooks_worker_one_send_each(drill, settings):
    deadline = _seconds(webhook_delivery.ATTEMPT_DEADLINE)
    assert deadline < _seconds(webhook_delivery.LEASE)
    settings.FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS = True  # endpoints on 127.0.0.1 (test only)
    hole = BlackHole().start()
    try:
        with start_sim(CLOSE_AT) as sim:
            reseller, payer, synced = _world(sim, hole)
            drill.set_clock(CLOSE_AT)
            env = {"DRILL_POOL": "prefork", "FLOWBILL_WEBHOOK_ALLOW_PRIVATE_HOSTS": "1"}
            workers = [
                drill.worker(
                    **env, DRILL_QUEUES="celery", DRILL_CONCURRENCY=str(DEFAULT_PROCESSES)
                ),
                drill.worker(
                    **env, DRILL_QUEUES="webhooks", DRILL_CONCURRENCY=str(WEBHOOK_PROCESSES)
                ),
            ]

            # 60 deliveries due at once, queued one endpoint after the other (so without the
            # one-send-per-endpoint rule the first processes would all take endpoint 0), and
            # beat's sweep on top: every delivery queued twice, the duplicates must not send.
            for n in range(EVENTS_PER_ENDPOINT):
                webhook_event_emit(
                    reseller_id=reseller.pk, event_type="sync.failed", data={"n": n}, now=CLOSE_AT
                )
            due = WebhookDelivery.objects.order_by("endpoint_id", "pk")
            for delivery_id in due.values_list("pk", flat=True):
                drill.send("webhooks.tasks.webhook_delivery_send_task", delivery_id)
            drill.send("webhooks.tasks.webhook_deliveries_send_due_task")
            wait_until(
                lambda: hole.open_now() >= WEBHOOK_PROCESSES,
                timeout=30,
                what=f"{WEBHOOK_PROCESSES} sends hanging on the receiver",
            )

            # Every webhooks process is stuck on a receiver: now the other work.
            started = time.monotonic()
            drill.send(
                "billing.tasks.invoice_cycle_reseller_task", reseller.pk, CLOSE_AT.isoformat()
            )
            window_end = CLOSE_AT.replace(minute=0) + dt.timedelta(hours=1)
            drill.send(
                "usage.tasks.usage_sync_sub_account_task",
                synced.pk,
                (window_end - dt.timedelta(hours=73)).isoformat(),
                window_end.isoformat(),
                CLOSE_AT.isoformat(),
            )
            wait_until(
                lambda: _mailed(payer) and _synced(synced),
                timeout=ON_TIME,
                what="the invoice mailed and the sync done while the webhooks hang",
            )
            took = time.monotonic() - started
            assert hole.open_now() >= 1, "the webhook sends were not hanging meanwhile"
            # Not even one deadline: the work never queued behind a hanging send (a worker
            # consuming both queues makes it wait for one, about 10 s).
            assert took < deadline, f"{took:.1f}s: waited behind the webhook sends"
            # The payer's invoice, mailed once. (The synced customer is billed for the March
            # days its sync wrote when the sync lands before the cycle reads its customers:
            # the two run side by side, so that mail may or may not be there.)
            to_payer = [m for m in drill.smtp.accepted if payer.email in m.recipients]
            assert len(to_payer) == 1, [m.recipients for m in drill.smtp.accepted]
            invoice = Invoice.objects.get(customer=payer)
            assert invoice.status == "finalized"
            # ...whose invoice.finalized event went to the 20 hanging endpoints too.
            assert WebhookDelivery.objects.filter(event__type="invoice.finalized").count() == 20

            # Let the hanging sends go on for two more rounds of deadlines, then look.
            time.sleep(2 * deadline + 3)
            connections = hole.snapshot()
            for worker in workers:
                worker.kill()
    finally:
        hole.stop()

    per_endpoint = _most_at_once(connections, key=lambda c: c.path)
    per_delivery = _most_at_once(connections, key=lambda c: (c.path, c.event_id))
    assert len(per_endpoint) >= WEBHOOK_PROCESSES  # the load really spread over endpoints
    assert max(per_endpoint.values()) == 1, per_endpoint
    assert max(per_delivery.values()) == 1, per_delivery
    # Every send was claimed first: the receiver saw no more sends of a delivery than the
    # attempts its row counts.
    sends = defaultdict(int)
    for c in connections:
        sends[(c.path, c.event_id)] += 1
    endpoints = list(reseller.webhook_endpoints.order_by("pk").values_list("pk", flat=True))
    claimed = {
        (f"/hook/{endpoints.index(endpoint_id)}", f"evt_{event_id}"): attempts
        for endpoint_id, event_id, attempts in WebhookDelivery.objects.values_list(
            "endpoint_id", "event_id", "attempts"
        )
    }
    assert all(count <= claimed[key] for key, count in sends.items()), (sends, claimed)
    # Each attempt ended at its deadline: seen from the receiver and in the delivery log.
    lasted = [c.closed - c.opened for c in connections if c.closed is not None]
    assert lasted and max(lasted) < deadline + 2, max(lasted)
    logged = WebhookAttempt.objects.filter(delivery__endpoint__reseller=reseller)
    assert logged.exists()
    # (the library's text follows in parentheses in DEBUG, as the drill's workers run)
    reasons = {error.split(" (", 1)[0] for error in logged.values_list("error", flat=True)}
    assert reasons == {TIMED_OUT}
    assert max(logged.values_list("duration_ms", flat=True)) < (deadline + 2) * 1000
    # The deadline ended them, not the task's time limit.
    assert not any(
        w.log_count("Hard time limit") or w.log_count("Soft time limit") for w in workers
    )
    print(
        f"on time: invoice mailed and sync done {took:.1f}s after queueing, while "
        f"{len(connections)} webhook sends hung on {len(per_endpoint)} endpoints"
    )
