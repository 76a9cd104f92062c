"""IPFoxy reseller writes through the connector: typed results and errors, exactly-once
allocation across retries (same idempotency key), against the simulator and scripted
upstreams."""

import datetime as dt
import json
import random
import socket
from decimal import Decimal

import httpx
import pytest

from usage.providers import build_connector
from usage.providers.base import (
    AuthError,
    DiscoveredSubAccount,
    InsufficientBalanceError,
    OutcomeUnknownError,
    ParameterError,
    RateLimitedError,
    RetryableRefusalError,
    TransientError,
)
from usage.providers.ratelimit import InProcessBudget, UnlimitedBudget
from usage.providers.reseller import (
    Allocation,
    CreatedSubAccount,
    ResellerConnector,
    new_idempotency_key,
)
from usage.providers.transport import RetryPolicy
from usage.simulator import SimulatorConfig, start_simulator
from usage.simulator.server import parse_form

from .conftest import API_ID, API_TOKEN, SleepRecorder

NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=dt.UTC)
MIB = 1_048_576
HOUR = dt.timedelta(hours=1)
ALLOCATE_PATH = "/ip/open-api/allocate-flow-sub-account"
CREATE_PATH = "/ip/open-api/create-sub-account"


@pytest.fixture
def sim():
    config = SimulatorConfig(now=NOW, ipfoxy_pool_mb=100_000, rate_limit_enabled=False)
    with start_simulator(port=0, seed=7, config=config) as running:
        yield running


def connect(url, *, api_token="demo-api-token", budget=None, sleeps=None, read=5.0, **options):
    retry = options.pop("retry", RetryPolicy(max_attempts=3, base_delay=0.01))
    return build_connector(
        provider="ipfoxy",
        base_url=url,
        credentials={"api_id": "demo-api-id", "api_token": api_token},
        client=httpx.Client(),
        budget=budget or InProcessBudget(),
        budget_key="upstream:1",
        retry=retry,
        timeout=httpx.Timeout(connect=2.0, read=read, write=2.0, pool=2.0),
        sleep=sleeps if sleeps is not None else SleepRecorder(),
        wall_clock=lambda: NOW,
        rng=random.Random(1),
        **options,
    )


@pytest.fixture
def foxy(sim):
    return connect(sim.url)


def test_create_then_allocate_returns_typed_results_in_bytes(sim, foxy):
    created = foxy.create_sub_account(
        account="FBalpha00001", password="Secret12345", flow_mb=1024,
        idempotency_key="create-alpha-1", day=0,
    )  # fmt: skip
    allocated = foxy.allocate_flow(
        account="FBalpha00001", flow_mb=512, idempotency_key="alloc-alpha-01", day=30
    )

    assert isinstance(foxy, ResellerConnector)
    assert created == CreatedSubAccount(
        account="FBalpha00001", password="Secret12345", flow_mb=1024,
        allocated_bytes=1024 * MIB, day=0, idempotency_key="create-alpha-1", attempts=1,
    )  # fmt: skip
    assert "Secret12345" not in repr(created)
    assert allocated == Allocation(
        account="FBalpha00001", flow_mb=512, bytes=512 * MIB, day=30,
        idempotency_key="alloc-alpha-01", attempts=1,
    )  # fmt: skip
    assert sim.pool()["allocated_mb"] == "1536"
    assert sim.sub_account("FBalpha00001")["allocated_mb"] == "1536"


def test_counters_agree_in_bytes_after_consumption(sim, foxy):
    foxy.create_sub_account(
        account="FBalpha00001", password="Secret12345", flow_mb=2048,
        idempotency_key="create-alpha-1",
    )  # fmt: skip
    sim.advance(5 * 3600)

    flow = foxy.sub_account_flow(account="FBalpha00001")
    (row,) = foxy.sub_accounts_page(page=1, page_size=10, account="FBalpha00001").rows
    report = foxy.fetch_hourly_usage(
        upstream_id="FBalpha00001", start=NOW.replace(minute=0), end=NOW + 6 * HOUR,
        now=sim.now(),
    )  # fmt: skip
    hourly_mb = sum(Decimal(h.raw_value) for h in report.hours)

    assert flow.used_bytes > 0
    assert flow.used_bytes + flow.remaining_bytes == 2048 * MIB  # allocated == used + surplus
    assert (row.used_bytes, row.remaining_bytes) == (flow.used_bytes, flow.remaining_bytes)
    assert hourly_mb * 1024 == Decimal(flow.raw_used)  # the flow list sums to use_flow (KB)
    # Bytes are rounded per hour: the hourly sum is within half a byte per hour of use_flow.
    assert abs(sum(h.bytes for h in report.hours) - flow.used_bytes) <= len(report.hours)
    assert flow.max_age == dt.timedelta(minutes=1) and flow.raw_unit == "KB"
    assert row.password == "Secret12345" and row.expires_at is None


def test_a_timeout_after_apply_is_retried_with_the_same_key_and_allocates_once(sim):
    foxy = connect(sim.url, read=0.3)
    foxy.create_sub_account(
        account="FBalpha00001", password="Secret12345", flow_mb=0, idempotency_key="create-alpha-1"
    )
    sim.set_faults(timeout_after_apply="next:1,target:ipfoxy.allocate_flow", slow_seconds=1.0)
    sim.reset_stats()

    allocation = foxy.allocate_flow(
        account="FBalpha00001", flow_mb=700, idempotency_key="alloc-retry-01"
    )

    assert allocation.attempts == 2  # the first answer was lost, the replay answered
    assert sim.stats()["requests_by_endpoint"] == {"ipfoxy.allocate_flow": 2}
    assert sim.pool()["allocated_mb"] == "700"  # the pool proves it: once
    assert sim.sub_account("FBalpha00001")["allocated_mb"] == "700"


def test_an_outcome_never_settled_raises_outcome_unknown_and_a_later_resend_is_exactly_once(sim):
    foxy = connect(sim.url, read=0.3)
    foxy.create_sub_account(
        account="FBalpha00001", password="Secret12345", flow_mb=0, idempotency_key="create-alpha-1"
    )
    sim.set_faults(timeout_after_apply=3, slow_seconds=1.0)

    with pytest.raises(OutcomeUnknownError) as info:
        foxy.allocate_flow(account="FBalpha00001", flow_mb=700, idempotency_key="alloc-lost-001")
    resent = foxy.allocate_flow(
        account="FBalpha00001", flow_mb=700, idempotency_key="alloc-lost-001"
    )

    error = info.value
    assert error.code == "upstream_outcome_unknown" and not error.retryable
    assert isinstance(error.cause, TransientError)
    assert error.context["idempotency_key"] == "alloc-lost-001"
    assert error.context["attempt"] == 3 and error.context["last_error"] == "upstream_unavailable"
    assert resent.attempts == 1
    assert sim.pool()["allocated_mb"] == "700"
    assert sim.sub_account("FBalpha00001")["allocated_mb"] == "700"


def test_insufficient_pool_is_a_typed_error_sent_once(sim, foxy):
    sim.set_pool(total_mb=100)
    sim.reset_stats()

    with pytest.raises(InsufficientBalanceError) as info:
        foxy.create_sub_account(
            account="FBalpha00001", password="Secret12345", flow_mb=101,
            idempotency_key="create-alpha-1",
        )  # fmt: skip

    assert info.value.context["upstream_code"] == 60300
    assert sim.stats()["requests_total"] == 1
    assert sim.pool()["allocated_mb"] == "0"
    assert sim.sub_account("FBalpha00001") is None


def test_a_bad_token_is_auth_failed_and_changes_nothing(sim):
    foxy = connect(sim.url, api_token="not-the-token")

    with pytest.raises(AuthError) as info:
        foxy.allocate_flow(account="SIM00001", flow_mb=5, idempotency_key="alloc-auth-001")

    assert info.value.context["upstream_code"] == 60401
    assert "not-the-token" not in str(info.value)
    assert sim.pool()["allocated_mb"] == "0"


def test_upstream_rate_limit_is_retried_after_the_minute_then_fails_unapplied(sim):
    sleeps = SleepRecorder()
    foxy = connect(sim.url, budget=UnlimitedBudget(), sleeps=sleeps)
    sim.set_rate_limit(enabled=True, per_minute=2)
    foxy.sub_accounts_page(page_size=10)
    foxy.sub_accounts_page(page_size=10)

    with pytest.raises(RateLimitedError) as info:
        foxy.allocate_flow(account="SIM00001", flow_mb=5, idempotency_key="alloc-limited1")

    assert info.value.context["upstream_code"] == 50000
    assert not isinstance(info.value, OutcomeUnknownError)  # 50000 is a refusal: not applied
    assert sleeps.calls == [60.0, 60.0]  # to the next minute boundary (the wall clock is :00)
    assert sim.pool()["allocated_mb"] == "0"


def test_a_service_error_is_retried_and_allocates_once(sim, foxy):
    sim.set_faults(code_60500="next:1,target:ipfoxy_writes")

    allocation = foxy.allocate_flow(account="SIM00001", flow_mb=5, idempotency_key="alloc-60500-1")

    assert allocation.attempts == 2
    assert sim.pool()["allocated_mb"] == "5"


def test_a_parameter_error_is_not_retried(sim, foxy):
    with pytest.raises(ParameterError):
        foxy.allocate_flow(account="FBnobody0001", flow_mb=5, idempotency_key="alloc-nobody-1")


def test_connection_refused_is_transient_not_unknown():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the connector tries it
    foxy = connect(f"http://127.0.0.1:{port}")

    with pytest.raises(TransientError) as info:
        foxy.allocate_flow(account="SIM00001", flow_mb=5, idempotency_key="alloc-refused1")

    assert not isinstance(info.value, OutcomeUnknownError)
    assert info.value.context["attempt"] == 3


def test_password_and_whitelist_updates(sim, foxy):
    foxy.create_sub_account(
        account="FBalpha00001", password="Secret12345", flow_mb=1, idempotency_key="create-alpha-1"
    )

    rotated = foxy.update_password(account="FBalpha00001", password="Rotated12345")
    listed = foxy.update_ip_whitelist(account="FBalpha00001", ips=["203.0.113.9", "203.0.113.9"])
    (row,) = foxy.sub_accounts_page(account="FBalpha00001").rows
    cleared = foxy.update_ip_whitelist(account="FBalpha00001", ips=[])
    (after,) = foxy.sub_accounts_page(account="FBalpha00001").rows

    assert (rotated.account, rotated.attempts, listed.attempts, cleared.attempts) == (
        "FBalpha00001", 1, 1, 1,
    )  # fmt: skip
    assert (row.password, row.ip_whitelist) == ("Rotated12345", ("203.0.113.9",))
    assert after.ip_whitelist == ()


def test_iterating_the_list_takes_one_request_per_hundred_rows():
    config = SimulatorConfig(now=NOW, ipfoxy_sub_account_count=250, rate_limit_enabled=False)
    with start_simulator(config=config) as sim:
        foxy = connect(sim.url)
        foxy.create_sub_account(
            account="FBalpha00001", password="Secret12345", flow_mb=1,
            idempotency_key="create-alpha-1",
        )  # fmt: skip
        sim.reset_stats()
        rows = list(foxy.iter_sub_accounts())
        requests = sim.stats()["requests_by_endpoint"]

    assert len(rows) == 252 and len({r.upstream_id for r in rows}) == 252
    assert all(isinstance(r, DiscoveredSubAccount) for r in rows)
    assert rows[0].is_main and not rows[-1].is_main
    assert rows[-1].upstream_id == "FBalpha00001"
    assert requests == {"ipfoxy.sub_accounts": 3}


def test_pool_balance_reads_the_main_account_and_a_sub_account(sim, foxy):
    foxy.create_sub_account(
        account="FBalpha00001",
        password="Secret12345",
        flow_mb=300,
        idempotency_key="create-alpha-1",
    )

    pool = foxy.pool_balance()
    sub = foxy.pool_balance(account="FBalpha00001")

    assert (pool.total_bytes, pool.remaining_bytes) == (100_000 * MIB, 99_700 * MIB)
    assert (pool.account, pool.raw_remaining) == (None, "99700")
    assert (sub.total_bytes, sub.remaining_bytes) == (300 * MIB, 300 * MIB)


def test_kb_size_is_configurable(sim):
    foxy = connect(sim.url, kb_bytes=1000, mb_bytes=1_000_000)
    foxy.create_sub_account(
        account="FBalpha00001", password="Secret12345", flow_mb=2, idempotency_key="create-alpha-1"
    )

    flow = foxy.sub_account_flow(account="FBalpha00001")

    assert flow.raw_remaining == "2048" and flow.remaining_bytes == 2_048_000


def test_urlencoded_forms_work_against_the_simulator(sim):
    foxy = connect(sim.url, form_encoding="urlencoded")

    created = foxy.create_sub_account(
        account="FBalpha00001", password="Secret12345", flow_mb=3, idempotency_key="create-alpha-1"
    )

    assert created.allocated_bytes == 3 * MIB
    assert sim.pool()["allocated_mb"] == "3"


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("create_sub_account", {"account": "short", "password": "Secret12345", "flow_mb": 1}),
        ("create_sub_account", {"account": "FBalpha00001", "password": "short", "flow_mb": 1}),
        (
            "create_sub_account",
            {"account": "FBalpha00001", "password": "Secret12345", "flow_mb": -1},
        ),
        ("allocate_flow", {"account": "FBalpha00001", "flow_mb": 0}),
        ("allocate_flow", {"account": "FBalpha00001", "flow_mb": 1.5}),
        ("allocate_flow", {"account": "FBalpha00001", "flow_mb": 1, "day": 7}),
        ("allocate_flow", {"account": "FBalpha00001", "flow_mb": 1, "idempotency_key": "k"}),
    ],
)
def test_arguments_outside_the_published_rules_are_refused_before_sending(foxy, method, kwargs):
    kwargs = {"idempotency_key": "valid-key-0001", **kwargs}

    with pytest.raises(ValueError, match=r"account|password|flow_mb|day|idempotency_key"):
        getattr(foxy, method)(**kwargs)

    assert foxy.requests == 0


def test_new_idempotency_keys_fit_the_rules_and_differ():
    keys = {new_idempotency_key() for _ in range(100)}

    assert len(keys) == 100 and all(len(k) == 24 and k.isalnum() for k in keys)


# --------------------------------------------------------------------------- scripted upstream


class Scripted:
    """Answers each write from a list (callables may raise), recording the forms sent."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.forms = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.forms.append(parse_form(request.headers["content-type"], request.content))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, content=json.dumps(answer).encode())


def scripted(upstream, sleeps=None, **options):
    return build_connector(
        provider="ipfoxy",
        base_url="https://upstream.test",
        credentials={"api_id": API_ID, "api_token": API_TOKEN},
        client=httpx.Client(transport=httpx.MockTransport(upstream)),
        budget=InProcessBudget(),
        budget_key="upstream:1",
        retry=RetryPolicy(max_attempts=3, base_delay=1.0),
        sleep=sleeps or SleepRecorder(),
        wall_clock=lambda: NOW,
        rng=random.Random(7),
        **options,
    )


def allocate(connector, key="alloc-key-0001"):
    return connector.allocate_flow(account="FBalpha00001", flow_mb=64, idempotency_key=key)


OK = {"code": 0, "msg": "Success", "data": {}}


def test_every_retry_resends_the_same_idempotency_key():
    upstream = Scripted(httpx.Response(502), httpx.ReadTimeout("lost"), OK)

    allocation = allocate(scripted(upstream))

    assert allocation.attempts == 3
    assert (
        upstream.forms
        == [
            {
                "account": "FBalpha00001",
                "flow": "64",
                "idempotency_key": "alloc-key-0001",
                "day": "0",
            }
        ]
        * 3
    )


def test_a_definitive_refusal_after_an_uncertain_attempt_settles_it():
    # The resend with the same key got 60300: the upstream holds no earlier success.
    upstream = Scripted(httpx.ReadTimeout("lost"), {"code": 60300, "msg": "no", "data": None})

    with pytest.raises(InsufficientBalanceError):
        allocate(scripted(upstream))


@pytest.mark.parametrize(
    "uncertain",
    [
        httpx.Response(503),
        httpx.ReadTimeout("read"),
        httpx.RemoteProtocolError("closed"),
        httpx.Response(200, content=b"<html>maintenance</html>"),
        {"code": 10086, "msg": "request error", "data": None},
    ],
)
def test_uncertain_failures_until_the_last_attempt_are_outcome_unknown(uncertain):
    upstream = Scripted(uncertain)

    with pytest.raises(OutcomeUnknownError) as info:
        allocate(scripted(upstream))

    assert len(upstream.forms) == 3
    assert info.value.context["idempotency_key"] == "alloc-key-0001"


def test_an_unreadable_success_of_a_single_attempt_is_unknown_not_retried():
    upstream = Scripted({"code": 0, "msg": "Success", "data": {"account": "SOMEONEELSE1"}})
    connector = scripted(upstream)

    with pytest.raises(OutcomeUnknownError) as info:
        connector.create_sub_account(
            account="FBalpha00001", password="Secret12345", flow_mb=1,
            idempotency_key="create-alpha-1",
        )  # fmt: skip

    assert len(upstream.forms) == 1
    assert info.value.cause.code == "upstream_bad_response"


@pytest.mark.parametrize(
    "refusal",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("no route"),
        httpx.Response(429),
        {"code": 50000, "msg": "slow down", "data": None},
    ],
)
def test_refusals_and_unsent_requests_keep_their_own_error(refusal):
    upstream = Scripted(refusal)

    with pytest.raises((TransientError, RateLimitedError)) as info:
        allocate(scripted(upstream))

    assert not isinstance(info.value, OutcomeUnknownError)


def test_order_failed_8700_is_retried_and_not_uncertain():
    upstream = Scripted({"code": 8700, "msg": "order failed", "data": None})

    with pytest.raises(RetryableRefusalError):
        allocate(scripted(upstream))

    assert len(upstream.forms) == 3


def test_the_password_never_appears_in_an_error():
    echo = {"code": 60400, "msg": "bad password Secret12345 for tok", "data": None}
    upstream = Scripted(echo)

    with pytest.raises(ParameterError) as info:
        scripted(upstream).update_password(account="FBalpha00001", password="Secret12345")

    text = str(info.value) + repr(info.value.context)
    assert "Secret12345" not in text and "***" in text
