"""Demo step of the usage app: start the built-in simulator and backfill 60 days of usage.

`manage.py demo` calls `demo_sync_usage`. It reuses a simulator already listening on
127.0.0.1:8765 (`manage.py upstream_simulator`; another port with `demo --simulator-port` or
`FLOWBILL_SIMULATOR_PORT`), else starts one on a background thread of this process (on that
port, or any free port when it is taken by something else; the thread lives as long as the
process, so `demo` then serves with the simulator running), points the reseller's upstream
accounts at it, and then:
- IPFoxy: syncs the last 60 reseller-local days of every active sub-account (hourly
  buckets, re-bucketed into the reseller's days);
- BytesFlows: with our own simulator, replays 60 days of ledger snapshots every 6 hours on
  the simulator's clock (a ledger has no history to fetch: usage is metered between
  snapshots), continuing after the last stored snapshot so a second run adds no duplicates;
  with a foreign simulator, takes one snapshot now.
Running it twice changes nothing that is already stored (syncs replace, snapshots are
stored once).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.request

from accounts.models import Provider, Reseller, SubAccount, UpstreamAccount
from usage.models import LedgerSnapshot, SyncRun
from usage.providers.ratelimit import UnlimitedBudget
from usage.services import usage_snapshot_bytesflows, usage_sync_sub_accounts
from usage.services.connectors import connector_for_upstream_account
from usage.services.discovery import usage_discover_sub_accounts

DEMO_HOST, DEMO_PORT = "127.0.0.1", 8765  # the port unless FLOWBILL_SIMULATOR_PORT says
BACKFILL_DAYS = 60
SNAPSHOT_EVERY = dt.timedelta(hours=6)
IPFOXY_DEMO_CREDENTIALS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}

_running = None  # the simulator this process started (kept alive for the dev server)


def _existing_simulator(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_sim/config", timeout=1) as response:  # noqa: S310
            json.loads(response.read())
            return True
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((DEMO_HOST, port))
        except OSError:
            return False
    return True


def demo_simulator_port() -> int:
    """The demo simulator's port: `FLOWBILL_SIMULATOR_PORT`, else `DEMO_PORT`."""
    value = os.environ.get("FLOWBILL_SIMULATOR_PORT", "").strip()
    return int(value) if value else DEMO_PORT


def demo_simulator(*, now: dt.datetime, port: int | None = None):
    """(url, RunningSimulator or None when it is someone else's). `port`: see
    `demo_simulator_port`; the first call of a process decides."""
    global _running
    if _running is not None:
        return _running.url, _running
    port = demo_simulator_port() if port is None else port
    url = f"http://{DEMO_HOST}:{port}"
    if port and _existing_simulator(url):
        return url, None
    from usage.simulator import SimulatorConfig, start_simulator

    # The simulator's clock follows the demo's `now` (real time shifted by the difference).
    offset = (now - dt.datetime.now(dt.UTC)).total_seconds()
    config = SimulatorConfig(
        anchor=now - dt.timedelta(days=BACKFILL_DAYS), clock_offset_seconds=offset
    )
    port = port if port and _port_free(port) else 0
    _running = start_simulator(host=DEMO_HOST, port=port, config=config)
    _running.set_rate_limit(enabled=False)  # our own, local simulator: no need to wait
    return _running.url, _running


def demo_sync_usage(
    *, reseller: Reseller, now: dt.datetime, stdout, simulator_port: int | None = None
) -> None:
    url, sim = demo_simulator(now=now, port=simulator_port)
    stdout.write(f"Upstream simulator at {url}" + (" (started here)" if sim else ""))
    upstreams = list(UpstreamAccount.objects.for_reseller(reseller).filter(is_active=True))
    for upstream in upstreams:
        fields = []
        if upstream.base_url.rstrip("/") != url:
            upstream.base_url = url
            fields.append("base_url")
        if upstream.provider == Provider.IPFOXY and not upstream.credentials:
            upstream.credentials = IPFOXY_DEMO_CREDENTIALS
            fields.append("credentials")
        if fields:
            upstream.save(update_fields=fields)

    subs = list(
        SubAccount.objects.for_reseller(reseller)
        .filter(status=SubAccount.Status.ACTIVE, upstream_account__in=upstreams)
        .select_related("upstream_account__reseller")
        .order_by("pk")
    )
    budget = UnlimitedBudget() if sim else None  # a foreign simulator may rate-limit

    def factory(upstream):
        return connector_for_upstream_account(upstream_account=upstream, budget=budget)

    ipfoxy = [s for s in subs if s.upstream_account.provider == Provider.IPFOXY]
    if sim is not None:
        # A sub-account Flowbill provisioned in an earlier demo run lived in that run's
        # simulator (its state is in memory): this one would answer synthetic traffic for it.
        gone = [s for s in ipfoxy if s.provisioned_at and sim.sub_account(s.upstream_id) is None]
        for sub in gone:
            stdout.write(f"  {sub}: provisioned in an earlier run, unknown to this simulator")
        ipfoxy = [s for s in ipfoxy if s not in gone]
    bytesflows = [s for s in subs if s.upstream_account.provider == Provider.BYTESFLOWS]
    tz = reseller.tzinfo
    first_day = now.astimezone(tz).date() - dt.timedelta(days=BACKFILL_DAYS)
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=tz)

    def report(run: SyncRun) -> None:
        state = run.status if run.status != SyncRun.Status.FAILED else f"FAILED: {run.error}"
        stdout.write(
            f"  {run.sub_account}: {run.rows_written} rows, {run.requests} requests ({state})"
        )

    ipfoxy_upstreams = [u for u in upstreams if u.provider == Provider.IPFOXY]
    if sim is not None:
        # The upstream's own sub-account list and counters at the start of the backfill,
        # so the dashboard's reconciliation has the upstream's figures to compare with.
        sim.set_clock(now=start)
        for upstream in ipfoxy_upstreams:
            usage_discover_sub_accounts(
                upstream_account=upstream, now=start, connector=factory(upstream)
            )
        # Hold the simulator at `now` while syncing, so the current hour's partial traffic
        # is the same however long the sync takes (and a re-run with the same `now` writes
        # the same rows); it runs on with real time again at the end.
        sim.set_clock(now=now)
    stdout.write(f"IPFoxy: syncing {len(ipfoxy)} sub-accounts from {first_day} ...")
    summary = usage_sync_sub_accounts(
        sub_accounts=ipfoxy,
        start=start,
        end=now,
        now=now,
        connector_factory=factory,
        on_done=report,
    )
    snapshots = failed = 0
    for sub in bytesflows:
        connector = factory(sub.upstream_account)
        last = (
            LedgerSnapshot.objects.filter(sub_account=sub)
            .order_by("-taken_at")
            .values_list("taken_at", flat=True)
            .first()
        )
        times = [now]
        if sim is not None:
            moment = last + SNAPSHOT_EVERY if last else start
            times = []
            while moment < now:
                times.append(moment)
                moment += SNAPSHOT_EVERY
            times.append(now)
        elif last and last >= now:
            times = []
        for moment in times:
            if sim is not None:
                sim.set_clock(now=moment)
            run = usage_snapshot_bytesflows(sub_account=sub, now=moment, connector=connector)
            snapshots += 1
            if run.status == SyncRun.Status.FAILED:
                failed += 1
                report(run)
                break
        stdout.write(f"  {sub}: {len(times)} ledger snapshots")
    if sim is not None:
        for upstream in ipfoxy_upstreams:  # the counters now, against the synced hours
            usage_discover_sub_accounts(
                upstream_account=upstream, now=now, connector=factory(upstream)
            )
    if sim is not None:  # back to running time, in step with the demo's `now`
        sim.set_clock(offset_seconds=(now - dt.datetime.now(dt.UTC)).total_seconds())
    stdout.write(
        f"Usage sync: IPFoxy {summary.ok} ok, {summary.failed} failed, "
        f"{summary.rows_written} rows, {summary.requests} requests; "
        f"BytesFlows {len(bytesflows)} sub-accounts, {snapshots} snapshots, {failed} failed."
    )
