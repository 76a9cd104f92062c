"""Upstream faults, one table per provider, against the simulator with fault injection.

Every case follows the same drill: a good sync stores usage; the upstream revises a stored
hour (so a partial write would show); the fault is armed for a chosen page; the sync runs.
Then either the sync recovered by itself (retried, restarted its page walk, or dropped a
harmless duplicate) and stored exactly what the upstream reports, or it failed with a
clear message on its SyncRun and left every stored row as it was (all fields). Finally a
good sync runs and the stored usage equals the upstream's, byte for byte.

Unit-level behaviour of each fault lives in tests/usage (providers, sync history, ledger);
this table checks them end to end through the sync services and the stored rows.
"""

from __future__ import annotations

import datetime as dt
import random
import socket
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
from django.db import OperationalError

from accounts.models import Provider
from tests import factories
from tests.reliability import tally
from tests.reliability.conftest import IPFOXY_CREDENTIALS, start_sim
from usage.models import LedgerSnapshot, SyncRun, UsageAnomaly, UsageDay, UsageHour
from usage.providers import build_connector
from usage.providers.ratelimit import UnlimitedBudget
from usage.services import usage_snapshot_bytesflows, usage_sync_sub_account
from usage.tasks import RETRYABLE_CODES

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
EARLIER = NOW - dt.timedelta(hours=3)
WINDOW = dt.timedelta(hours=120)  # two flow-list pages of 100
REVISED_HOUR = dt.datetime(2026, 3, 10, 4, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Case:
    label: str  # the fault, in the words
    faults: dict
    outcome: str  # "retried", "restarted", "tolerated" or "failed"
    page: int = 1  # the page (BytesFlows: the request number) the fault is armed for
    code: str = ""
    message: str = ""
    knobs: dict = field(default_factory=dict)


IPFOXY_CASES = [
    Case("timeout", {"slow": 1}, "retried", knobs={"slow_seconds": 1.5}),
    Case(
        "timeout, lasting",
        {"slow": 4},
        "failed",
        code="upstream_unavailable",
        message="timeout (ReadTimeout)",
        knobs={"slow_seconds": 1.5},
    ),
    Case(
        "connection refused",
        {},
        "failed",
        code="upstream_unavailable",
        message="connection error (ConnectError",
    ),
    Case("connection dropped", {"disconnect": 1}, "retried", page=2),
    Case("HTTP 500", {"http_5xx": 2}, "retried", knobs={"http_5xx_status": 500}),
    Case("HTTP 502", {"http_5xx": 1}, "retried", page=2, knobs={"http_5xx_status": 502}),
    Case(
        "HTTP 503, lasting",
        {"http_5xx": 4},
        "failed",
        code="upstream_unavailable",
        message="HTTP 503 from upstream",
    ),
    Case("429 with Retry-After", {"http_429": 1}, "retried", page=2, knobs={"retry_after": 7}),
    Case(
        "429, lasting",
        {"http_429": 4},
        "failed",
        code="upstream_rate_limited",
        message="HTTP 429 too many requests",
    ),
    Case("HTML instead of JSON", {"html": 1}, "retried", page=2),
    Case(
        "HTML instead of JSON, lasting",
        {"html": 4},
        "failed",
        page=2,
        code="upstream_bad_response",
        message="upstream sent HTML instead of JSON",
    ),
    Case("truncated body", {"malformed_json": 1}, "retried", page=2),
    Case(
        "truncated body, lasting",
        {"malformed_json": 4},
        "failed",
        code="upstream_bad_response",
        message="upstream sent non-JSON instead of JSON",
    ),
    Case("code 50000 (rate limit) with HTTP 200", {"code_50000": 1}, "retried"),
    Case("code 60500 (service error) with HTTP 200", {"code_60500": 2}, "retried", page=2),
    Case(
        "code 60500 with HTTP 200, lasting",
        {"code_60500": 4},
        "failed",
        code="upstream_unavailable",
        message="IPFoxy error code 60500",
    ),
    Case(
        "code 60401 (credentials refused) with HTTP 200",
        {},
        "failed",
        code="upstream_auth_failed",
        message="authentication failed: check the upstream account's API id and token",
    ),
    Case("truncated page (count above the rows)", {"count_mismatch": 1}, "restarted", page=2),
    Case("page changes between requests", {"count_changes": 1}, "restarted", page=2),
    Case(
        "count disagrees with the rows, lasting",
        {"count_mismatch": 9},
        "failed",
        code="upstream_bad_response",
        message="page empty after 121 of 124 rows",
    ),
    Case("duplicated row", {"duplicate_rows": 1}, "tolerated", page=2),
    Case("duplicated rows on every page", {"duplicate_rows": 9}, "tolerated"),
    Case(
        "negative flow",
        {"negative_flow": 1},
        "failed",
        page=2,
        code="upstream_bad_response",
        message="`flow` is negative",
    ),
    Case(
        "non-numeric flow",
        {"non_numeric_flow": 1},
        "failed",
        page=2,
        code="upstream_bad_response",
        message="`flow` is not a decimal number ('N/A')",
    ),
    Case(
        "missing flow",
        {"missing_flow": 1},
        "failed",
        code="upstream_bad_response",
        message="`flow` is missing",
    ),
    Case(
        "rows of another account",
        {"foreign_rows": 1},
        "failed",
        page=2,
        code="upstream_bad_response",
        message="row belongs to another account",
    ),
]


def _mib_bytes(flow: str) -> int:
    return int((Decimal(flow) * 1_048_576).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sleeps(list):
    """The transport's sleeps, recorded instead of slept (backoff, Retry-After, minute wait)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _connector(provider, base_url, *, credentials=None, hook=None, sleeps=None):
    hooks = {"request": [hook]} if hook else {}
    return build_connector(
        provider=provider,
        base_url=base_url,
        credentials=credentials if credentials is not None else IPFOXY_CREDENTIALS,
        client=httpx.Client(event_hooks=hooks),
        budget=UnlimitedBudget(),
        budget_key="drill",
        sleep=sleeps if sleeps is not None else Sleeps(),
        rng=random.Random(3),
        wall_clock=lambda: NOW,
        timeout=httpx.Timeout(0.5),
    )


def _arm_on(sim, case: Case, *, ipfoxy: bool):
    """A request hook arming `case`'s faults just before its page (or request) goes out."""
    seen = {"requests": 0, "armed": False}

    def hook(request: httpx.Request) -> None:
        seen["requests"] += 1
        if ipfoxy:
            due = request.url.params.get("page") == str(case.page)
        else:
            due = seen["requests"] == case.page
        if due and not seen["armed"]:
            seen["armed"] = True
            sim.set_faults(**case.faults, **case.knobs)

    return hook


def _rows(sub) -> tuple[list, list]:
    hours = UsageHour.objects.filter(sub_account=sub).order_by("hour_start")
    days = UsageDay.objects.filter(sub_account=sub).order_by("day")
    return (
        list(hours.values_list("hour_start", "bytes", "raw_value", "revision", "updated_at")),
        list(days.values_list("day", "bytes", "revision", "updated_at")),
    )


def _assert_exact(sim, sub, start: dt.datetime, end: dt.datetime) -> int:
    """Stored hours equal the upstream's report byte for byte; days are their sums."""
    expected = sim.expected_hourly_flows(account=sub.upstream_id, start=start, end=end)
    stored = dict(UsageHour.objects.filter(sub_account=sub).values_list("hour_start", "raw_value"))
    assert stored == expected
    hours = dict(UsageHour.objects.filter(sub_account=sub).values_list("hour_start", "bytes"))
    assert hours == {hour: _mib_bytes(flow) for hour, flow in expected.items()}
    by_day: dict[dt.date, int] = {}
    for hour, nbytes in hours.items():
        by_day[hour.date()] = by_day.get(hour.date(), 0) + nbytes
    assert dict(UsageDay.objects.filter(sub_account=sub).values_list("day", "bytes")) == by_day
    return len(hours)


@pytest.mark.django_db
@pytest.mark.parametrize("case", IPFOXY_CASES, ids=[c.label for c in IPFOXY_CASES])
def test_ipfoxy_fault_is_retried_or_recorded_and_the_next_sync_fills_the_gap(case, customer):
    with start_sim(EARLIER) as sim:
        upstream = factories.UpstreamAccountFactory(
            reseller=customer.reseller, base_url=sim.url, credentials=IPFOXY_CREDENTIALS
        )
        sub = factories.SubAccountFactory(
            customer=customer, upstream_account=upstream, upstream_id="SIM00001"
        )

        def sync(connector):
            return usage_sync_sub_account(
                sub_account=sub, start=sim.now() - WINDOW, end=sim.now(), now=sim.now(),
                connector=connector,
            )  # fmt: skip

        assert sync(_connector("ipfoxy", sim.url)).status == "succeeded"
        sim.set_clock(now=NOW)
        sim.revise(account="SIM00001", hour=REVISED_HOUR, flow="999.99")
        before = _rows(sub)

        sleeps = Sleeps()
        base_url, credentials = sim.url, IPFOXY_CREDENTIALS
        if case.label == "connection refused":
            base_url = f"http://127.0.0.1:{_closed_port()}"
        elif case.label.startswith("code 60401"):
            credentials = {"api_id": "demo-api-id", "api_token": "revoked-token"}
        hook = _arm_on(sim, case, ipfoxy=True)
        run = sync(
            _connector("ipfoxy", base_url, credentials=credentials, hook=hook, sleeps=sleeps)
        )
        injected = sim.stats()["faults_injected_total"]
        assert injected or not case.faults

        if case.outcome == "failed":
            assert (run.status, run.error_code) == ("failed", case.code)
            assert case.message in run.error
            assert "revoked-token" not in run.error
            assert run.rows_written == 0
            assert _rows(sub) == before  # nothing partially overwritten, not even a day
            # The task retries exactly the codes a retry can fix.
            retryable = case.code in RETRYABLE_CODES
            assert retryable == (case.code in ("upstream_unavailable", "upstream_rate_limited"))
        else:
            assert (run.status, run.error) == ("succeeded", "")
            if case.outcome == "retried":
                # 2 pages, plus one retry (after one sleep) per fault injected
                assert len(sleeps) == injected and run.requests == 2 + injected
            elif case.outcome == "restarted":
                assert not sleeps and run.pages == 4  # the walk began again from page 1
            else:
                assert not sleeps and run.requests == 2
            if "Retry-After" in case.label:
                assert sleeps == [7.0]
            if "50000" in case.label:  # waits for the next minute, as IPFoxy counts per minute
                assert sleeps == [60.0]
            _assert_exact(sim, sub, EARLIER.replace(minute=0) - WINDOW, NOW)

        sim.reset_faults()
        good = sync(_connector("ipfoxy", sim.url))
        assert good.status == "succeeded"
        hours = _assert_exact(sim, sub, EARLIER.replace(minute=0) - WINDOW, NOW)
        assert UsageHour.objects.get(sub_account=sub, hour_start=REVISED_HOUR).bytes == (
            _mib_bytes("999.99")
        )
    tally.add("upstream_fault_cases")
    tally.add("upstream_faults_injected", injected)
    tally.add("rows_checked_exact", hours)


@pytest.mark.django_db
def test_a_database_error_inside_the_write_rolls_back_the_whole_sync(customer, monkeypatch):
    """The worker's database connection dies after some hours were written: none stay."""
    from usage.services import history

    with start_sim(EARLIER) as sim:
        upstream = factories.UpstreamAccountFactory(
            reseller=customer.reseller, base_url=sim.url, credentials=IPFOXY_CREDENTIALS
        )
        sub = factories.SubAccountFactory(
            customer=customer, upstream_account=upstream, upstream_id="SIM00001"
        )
        sync = lambda: usage_sync_sub_account(  # noqa: E731
            sub_account=sub, start=sim.now() - WINDOW, end=sim.now(), now=sim.now(),
            connector=_connector("ipfoxy", sim.url),
        )  # fmt: skip
        sync()
        sim.set_clock(now=NOW)
        sim.revise(account="SIM00001", hour=REVISED_HOUR, flow="999.99")
        before = _rows(sub)

        def breaking(replace):
            def broken(**kwargs):
                written = replace(**kwargs)  # the hours (and days) are written, the link dies
                if written is None:  # the one-statement write is PostgreSQL's only
                    return None
                assert written
                raise OperationalError("server closed the connection unexpectedly")

            return broken

        # Both writes: rows and run in one statement (PostgreSQL), or rows in a transaction.
        with monkeypatch.context() as patch:
            for name in ("hours_and_days_replace", "hours_and_days_replace_recorded"):
                patch.setattr(history, name, breaking(getattr(history, name)))
            with pytest.raises(OperationalError):
                sync()
        assert _rows(sub) == before
        failed = SyncRun.objects.filter(sub_account=sub).first()
        assert (failed.status, failed.error_code) == ("failed", "internal_error")
        assert sync().status == "succeeded"
        _assert_exact(sim, sub, EARLIER.replace(minute=0) - WINDOW, NOW)
    tally.add("upstream_fault_cases")


# --------------------------------------------------------------------------- BytesFlows

BF_CASES = [
    Case("connection dropped", {"disconnect": 1}, "retried"),
    Case("HTTP 503", {"http_5xx": 1}, "retried", page=2),
    Case("429 with Retry-After", {"http_429": 1}, "retried", knobs={"retry_after": 7}),
    Case("HTML instead of JSON", {"html": 1}, "retried", page=2),
    Case(
        "HTML instead of JSON, lasting",
        {"html": 4},
        "failed",
        page=2,
        code="upstream_bad_response",
        message="upstream sent HTML instead of JSON",
    ),
    Case("truncated body", {"malformed_json": 1}, "retried", page=2),
    Case("duplicated record", {"duplicate_rows": 1}, "tolerated", page=2),
    Case("count above the records", {"count_mismatch": 1}, "restarted", page=2),
    Case(
        "count disagrees with the records, lasting",
        {"count_mismatch": 9},
        "failed",
        page=2,
        code="upstream_bad_response",
        message="walk stopped after",
    ),
    Case("counter goes backwards", {"counter_backwards": 1}, "tolerated", page=2),
    Case(
        "token expired",
        {},
        "failed",
        code="upstream_auth_failed",
        message="token expired: BytesFlows refused this account's token",
    ),
    Case(
        "database error inside the write",
        {},
        "failed",
        code="internal_error",
        message="unexpected OperationalError",
    ),
]


def _traffic_used(sim, token: str) -> dict[str, int]:
    """What BytesFlows itself says each grant has used, read straight from the simulator."""
    response = httpx.get(
        sim.url + "/api/v1/user/traffic/records",
        params={"pageNo": 1, "pageSize": 100},
        headers={"Authorization": f"Bearer {token}"},
    )
    return {str(r["id"]): r["trafficUsed"] for r in response.json()["data"]["records"]}


@pytest.mark.django_db
@pytest.mark.parametrize("case", BF_CASES, ids=[c.label for c in BF_CASES])
def test_bytesflows_fault_is_retried_or_recorded_and_the_next_snapshot_meters_it_all(
    case, customer, monkeypatch
):
    start = NOW - dt.timedelta(hours=3)
    with start_sim(start) as sim:
        upstream = factories.UpstreamAccountFactory(
            reseller=customer.reseller, provider=Provider.BYTESFLOWS, base_url=sim.url,
            credentials={},
        )  # fmt: skip
        sub = factories.SubAccountFactory(
            customer=customer, upstream_account=upstream, upstream_id="alice",
            credentials={"token": "bf-alice"},
        )  # fmt: skip

        def snapshot(**options):
            return usage_snapshot_bytesflows(
                sub_account=sub,
                now=sim.now(),
                connector=_connector("bytesflows", sim.url, **options),
            )

        baseline = _traffic_used(sim, "bf-alice")
        assert snapshot().status == "succeeded"  # the baseline: no usage derived
        sim.advance(3600)
        assert snapshot().status == "succeeded"
        sim.advance(3600)
        before = _rows(sub)
        snapshots_before = LedgerSnapshot.objects.filter(sub_account=sub).count()

        sleeps = Sleeps()
        if case.label == "token expired":
            sim.expire_token("bf-alice")
        with monkeypatch.context() as patch:
            if case.label.startswith("database error"):
                from usage.services import ledger

                def broken(**kwargs):
                    raise OperationalError("server closed the connection unexpectedly")

                patch.setattr(ledger, "days_recompute", broken)
            hook = _arm_on(sim, case, ipfoxy=False)
            try:
                run = snapshot(hook=hook, sleeps=sleeps)
            except OperationalError:
                run = SyncRun.objects.filter(sub_account=sub).first()
        injected = sim.stats()["faults_injected_total"]

        if case.outcome == "failed":
            assert (run.status, run.error_code) == ("failed", case.code)
            assert case.message in run.error
            assert "bf-alice" not in run.error
            assert _rows(sub) == before
            assert LedgerSnapshot.objects.filter(sub_account=sub).count() == snapshots_before
        else:
            assert run.status == "succeeded", run.error
            assert bool(sleeps) == (case.outcome == "retried")
            if "Retry-After" in case.label:
                assert sleeps == [7.0]
        if case.label == "counter goes backwards":
            anomaly = UsageAnomaly.objects.get(sub_account=sub)
            assert anomaly.kind == "counter_decreased"
            assert anomaly.current_value < anomaly.previous_value

        sim.reset_faults()
        sim.restore_token("bf-alice")
        sim.advance(3600)
        assert snapshot().status == "succeeded"
        final = _traffic_used(sim, "bf-alice")
        # Every byte used since the baseline is metered exactly once, fault or not.
        used = sum(final[r] - baseline.get(r, 0) for r in final)
        stored = sum(UsageHour.objects.filter(sub_account=sub).values_list("bytes", flat=True))
        assert stored == used > 0
        days = UsageDay.objects.filter(sub_account=sub).values_list("bytes", flat=True)
        assert sum(days) == stored
    tally.add("upstream_fault_cases")
    tally.add("upstream_faults_injected", injected)
