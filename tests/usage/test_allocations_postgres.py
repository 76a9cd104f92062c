"""PostgreSQL: workers racing to send the same allocation send it once (the claim is taken
under the row lock; the one that loses finds it leased, or settled, and sends nothing)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from tests import factories
from usage.models import Allocation
from usage.services import allocations as ledger
from usage.services.allocations import allocation_create, allocation_send
from usage.services.connectors import connector_for_upstream_account
from usage.simulator import SimulatorConfig, start_simulator

CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
MIB = 1_048_576
ACCOUNT = "FBRACE0000001"
WORKERS = 6


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_racing_to_send_one_allocation_send_it_once(monkeypatch):
    config = SimulatorConfig(seed=5, now=dt.datetime(2026, 11, 3, tzinfo=dt.UTC))
    with start_simulator(port=0, config=config) as sim:
        sim.set_faults(latency_ms=300)  # each send stays in flight while the others arrive
        upstream = factories.UpstreamAccountFactory(base_url=sim.url, credentials=CREDS)
        customer = factories.CustomerFactory(reseller=upstream.reseller)
        connector_for_upstream_account(upstream_account=upstream).create_sub_account(
            account=ACCOUNT, password="Passw0rd1234", flow_mb=0, idempotency_key="race-create-01"
        )
        sub = factories.SubAccountFactory(
            customer=customer, upstream_account=upstream, upstream_id=ACCOUNT
        )
        # The send queued on commit would run in-process at once; here the racers send it.
        monkeypatch.setattr(ledger, "write_enqueue_on_commit", lambda *args: None)
        now = timezone.now()
        allocation = allocation_create(
            sub_account=sub, bytes=5 * 1024 * MIB, actor="system", now=now
        )
        start = threading.Barrier(WORKERS)
        results, errors = [], []

        def worker():
            try:
                start.wait()
                sent = allocation_send(allocation=allocation, now=now)
                results.append(None if sent is None else sent.status)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert errors == []
        assert sorted(results, key=str) == [None] * (WORKERS - 1) + ["confirmed"]
        assert sim.stats()["requests_by_endpoint"]["ipfoxy.allocate_flow"] == 1
        assert Decimal(sim.sub_account(ACCOUNT)["allocated_mb"]) == 5 * 1024
        row = Allocation.objects.get()
        assert (row.status, row.attempts) == ("confirmed", 1)
