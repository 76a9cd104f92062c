import datetime as dt

import httpx
import pytest

from usage.simulator import SimulatorConfig, start_simulator

NOW = dt.datetime(2026, 11, 20, 12, 30, tzinfo=dt.UTC)
IPFOXY_HEADERS = {"api-id": "demo-api-id", "api-token": "demo-api-token"}
FLOW_LIST = "/ip/open-api/get-account-use-flow-list"
SUB_ACCOUNTS = "/ip/open-api/get-sub-account-list"
ASSET = "/api/v1/dashboard/asset"
RECORDS = "/api/v1/user/traffic/records"


def epoch(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def flow_params(account="SIM00001", *, hours=72, end=NOW, **extra):
    params = {
        "account": account,
        "start_time": epoch(end - dt.timedelta(hours=hours)),
        "end_time": epoch(end),
        "unit": 1,
    }
    params.update(extra)
    return params


@pytest.fixture
def sim():
    with start_simulator(port=0, seed=7, config=SimulatorConfig(now=NOW)) as running:
        yield running


@pytest.fixture
def ipfoxy(sim):
    with httpx.Client(base_url=sim.url, headers=IPFOXY_HEADERS, timeout=5) as client:
        yield client


@pytest.fixture
def bf(sim):
    with httpx.Client(
        base_url=sim.url, headers={"Authorization": "Bearer bf-alice"}, timeout=5
    ) as client:
        yield client
