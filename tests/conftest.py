import os

import pytest
from django.db import connection

from tests import factories
from tests.reliability import tally

REQUIRE_SERVICES = os.environ.get("FLOWBILL_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("FLOWBILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BROKER_URL = os.environ.get("FLOWBILL_TEST_BROKER_URL", "redis://127.0.0.1:6379/9")


def xdist_worker_index() -> int:
    """This pytest-xdist worker's number (gw0 -> 0, gw1 -> 1, ...); 0 without xdist."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def worker_redis_url(url: str) -> str:
    """`url` on this xdist worker's own Redis database: the base db counting down by worker
    (gw0 the base, gw1 the one below, ...), so parallel workers never flush each other's keys.
    The test Redis (15 by default) and the drill broker (9 by default) stay apart up to six
    workers; a run that would overlap them, or go below db 0, is refused."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    bases = [int(base.rsplit("/", 1)[1] or 0) for base in (REDIS_URL, BROKER_URL)]
    ranges = [set(range(base - workers + 1, base + 1)) for base in bases]
    if min(min(dbs) for dbs in ranges) < 0 or ranges[0] & ranges[1]:
        raise pytest.UsageError(
            f"{workers} xdist workers need Redis dbs {bases[0]}..{bases[0] - workers + 1} "
            f"(FLOWBILL_TEST_REDIS_URL) and {bases[1]}..{bases[1] - workers + 1} "
            "(FLOWBILL_TEST_BROKER_URL), apart and not below 0: run fewer workers (-n) "
            "or move those URLs"
        )
    base, _, db = url.rpartition("/")
    return f"{base}/{int(db or 0) - xdist_worker_index()}"


def pytest_itemcollected(item):
    """The drills with real Celery workers run one at a time, on one xdist worker
    (`--dist loadgroup`): their timeouts assume the CPUs are theirs. Marked as each test is
    collected, before xdist reads the groups; pytest-xdist 3.8 ignores them under pytest 9.2
    (pytest-xdist#1386), so for now the drills are spread like the other tests."""
    if "drill" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.xdist_group("drills"))


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests skip on SQLite locally; CI runs them (and fails if it cannot)."""
    for item in items:
        if "postgres" in item.keywords and connection.vendor != "postgresql":
            if REQUIRE_SERVICES:
                raise pytest.UsageError("FLOWBILL_REQUIRE_SERVICES=1 but the database is not PG")
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))


def pytest_sessionfinish(session):
    """An xdist worker hands its drill figures (tests/reliability/tally.py) to the controller."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["drill_figures"] = dict(tally.FIGURES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    tally.FIGURES.update(getattr(node, "workeroutput", {}).get("drill_figures", {}))


def pytest_terminal_summary(terminalreporter):
    lines = tally.summary_lines()
    if lines:
        terminalreporter.section("reliability drill figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _fresh_request_budget():
    """Each test starts with the in-process upstream request budget empty: it is process-wide
    and keyed by upstream account id, which the next test's database reuses."""
    from usage.services.connectors import process_budget_clear

    process_budget_clear()


@pytest.fixture
def redis_url():
    """A Redis URL for tests that need a real Redis (db 15, one below per xdist worker,
    flushed); skips when none runs."""
    import redis

    url = worker_redis_url(REDIS_URL)
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if REQUIRE_SERVICES:
            raise
        pytest.skip("needs Redis at " + url)
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture
def reseller(db):
    return factories.ResellerFactory()


@pytest.fixture
def customer(reseller):
    return factories.CustomerFactory(reseller=reseller)


@pytest.fixture
def upstream_account(reseller):
    return factories.UpstreamAccountFactory(reseller=reseller)


@pytest.fixture
def sub_account(customer, upstream_account):
    return factories.SubAccountFactory(customer=customer, upstream_account=upstream_account)


@pytest.fixture
def upstream_lists_every_id(monkeypatch):
    """An IPFoxy that lists whatever sub-account id the manual add asks about
    (`usage.services.provisioning.upstream_sub_account_check`), for tests of something else
    than that check (tests/usage/test_provisioning.py tests it against the simulator)."""
    from usage.services import provisioning

    monkeypatch.setattr(provisioning, "upstream_sub_account_check", lambda **kwargs: {})
