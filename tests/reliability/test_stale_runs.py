"""A run a dead worker left `running` does not stay so: the next run closes it."""

import datetime as dt

import pytest

from tests import factories
from tests.reliability.conftest import IPFOXY_CREDENTIALS, start_sim
from usage.models import SyncRun
from usage.services import usage_discover_sub_accounts

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_a_discovery_left_running_by_a_dead_worker_is_closed_by_the_next_one(reseller):
    with start_sim(NOW) as sim:
        upstream = factories.UpstreamAccountFactory(
            reseller=reseller, base_url=sim.url, credentials=IPFOXY_CREDENTIALS
        )
        # What a worker SIGKILLed mid-discovery leaves behind (discovery records its run
        # as running first, so staff see it in progress), and one still legitimately running.
        dead = SyncRun.objects.create(
            upstream_account=upstream, kind="discovery", status="running",
            started_at=NOW - dt.timedelta(hours=1),
        )  # fmt: skip
        recent = SyncRun.objects.create(
            upstream_account=upstream, kind="discovery", status="running",
            started_at=NOW - dt.timedelta(minutes=2),
        )  # fmt: skip
        run = usage_discover_sub_accounts(upstream_account=upstream, now=NOW)
    assert run.status == "succeeded", run.error
    dead.refresh_from_db()
    recent.refresh_from_db()
    assert (dead.status, dead.error_code) == ("failed", "worker_lost")
    assert "worker stopped before this run finished" in dead.error
    assert recent.status == "running"
