"""The demo step backfills 60 days from a simulator it starts, and a re-run adds nothing."""

import datetime as dt
from io import StringIO

import pytest

from accounts.demo import demo_seed
from usage import demo
from usage.models import LedgerSnapshot, SyncRun, UsageDay


@pytest.fixture
def own_simulator(monkeypatch):
    monkeypatch.setattr(demo, "DEMO_PORT", 0)  # any free port; never a developer's 8765
    monkeypatch.setattr(demo, "_running", None)
    yield
    if demo._running is not None:
        demo._running.stop()


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_backfills_sixty_days_for_every_demo_sub_account(own_simulator):
    now = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
    seeded = demo_seed(stdout=StringIO())
    out = StringIO()
    demo.demo_sync_usage(reseller=seeded.reseller, now=now, stdout=out)
    assert "IPFoxy 5 ok, 0 failed" in out.getvalue()
    assert "0 failed." in out.getvalue()
    assert not SyncRun.objects.filter(status="failed").exists()
    days = UsageDay.objects.for_reseller(seeded.reseller)
    first = dt.date(2026, 3, 10) - dt.timedelta(days=60)
    ipfoxy_days = days.filter(sub_account__upstream_account__provider="ipfoxy")
    assert ipfoxy_days.filter(day=first).count() == 5
    assert days.filter(sub_account__upstream_id="acme-bf", bytes__gt=0).count() >= 50
    # every 6 hours from the first local day (00:00 Asia/Shanghai = 16:00Z), plus `now`
    assert LedgerSnapshot.objects.filter(sub_account__upstream_id="acme-bf").count() == 245

    before = list(days.order_by("sub_account", "day").values_list("bytes", flat=True))
    demo.demo_sync_usage(reseller=seeded.reseller, now=now, stdout=StringIO())
    assert list(days.order_by("sub_account", "day").values_list("bytes", flat=True)) == before


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_lists_the_upstream_sub_accounts_so_reconciliation_has_figures(own_simulator):
    from usage.selectors import usage_counter_cross_check

    now = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
    seeded = demo_seed(stdout=StringIO())
    demo.demo_sync_usage(reseller=seeded.reseller, now=now, stdout=StringIO())

    checks = usage_counter_cross_check(reseller=seeded.reseller)
    assert sorted(c.upstream_id for c in checks) == [f"SIM0000{i}" for i in range(1, 6)]
    for check in checks:
        # 60 days of counter growth against the stored whole hours of the same span; the
        # counter also holds the current half hour (12:00-12:30), which the hours leave out.
        assert check.counter_growth_bytes > 10 * 2**30
        assert check.difference_bytes < 0
        assert abs(check.difference_bytes) < check.counter_growth_bytes / 500, check
