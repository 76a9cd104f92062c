import os

import pytest
from django.db import connection

from tests import factories

REQUIRE_SERVICES = os.environ.get("FLOWBILL_REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests skip on SQLite locally; CI runs them (and fails if it cannot)."""
    for item in items:
        if "postgres" in item.keywords and connection.vendor != "postgresql":
            if REQUIRE_SERVICES:
                raise pytest.UsageError("FLOWBILL_REQUIRE_SERVICES=1 but the database is not PG")
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))


@pytest.fixture(autouse=True)
def _fresh_request_budget():
    """Each test starts with the in-process upstream request budget empty: it is process-wide
    and keyed by upstream account id, which the next test's database reuses."""
    from usage.services.connectors import process_budget_clear

    process_budget_clear()


@pytest.fixture
def redis_url():
    """A Redis URL for tests that need a real Redis (db 15, flushed); skips when none runs."""
    import redis

    url = os.environ.get("FLOWBILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
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
