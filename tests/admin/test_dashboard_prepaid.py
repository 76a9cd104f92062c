"""The dashboard's prepaid traffic: per IPFoxy upstream account, the pool left, traffic
allocated through the ledger, used and left as IPFoxy counts it, and billed."""

import datetime as dt

import pytest
from django.db.models import Sum

from billing.dashboard.prepaid import dashboard_prepaid_traffic
from billing.models import InvoiceUsage
from tests.admin.seed import NOW
from usage.models import Allocation, SubAccountTraffic, UpstreamPoolBalance

MIB = 1_048_576
GIB = 1024 * MIB


def _allocation(sub, nbytes, status, key):
    return Allocation.objects.create(
        sub_account=sub, idempotency_key=key, bytes=nbytes, flow_mb=nbytes // MIB,
        created_by="system", status=status, next_attempt_at=NOW, created_at=NOW,
        confirmed_at=NOW if status == "confirmed" else None,
    )  # fmt: skip


def test_allocated_used_billed_and_the_pool_per_upstream_account(client, alpha, pinned_now):
    upstream = alpha.upstreams["ipfoxy"]
    subs = [s for s in alpha.subs.values() if s.upstream_account_id == upstream.pk]
    _allocation(subs[0], 10 * GIB, "confirmed", "prepaid-key-0001")
    _allocation(subs[0], 5 * GIB, "confirmed", "prepaid-key-0002")
    _allocation(subs[0], 1 * GIB, "pending", "prepaid-key-0003")
    _allocation(subs[0], 7 * GIB, "failed", "prepaid-key-0004")
    SubAccountTraffic.objects.create(
        sub_account=subs[0], allocated_bytes=15 * GIB, used_bytes=9 * GIB,
        remaining_bytes=6 * GIB, as_of=NOW,
    )  # fmt: skip
    UpstreamPoolBalance.objects.create(
        upstream_account=upstream, total_bytes=500 * GIB, remaining_bytes=485 * GIB, as_of=NOW
    )
    billed = (
        InvoiceUsage.objects.filter(
            sub_account__upstream_account=upstream,
            invoice__status__in=["finalized", "paid"],
            subscription__isnull=False,
        ).aggregate(total=Sum("bytes"))["total"]
        or 0
    )

    rows = {r.upstream_account_id: r for r in dashboard_prepaid_traffic(reseller=alpha.reseller)}

    row = rows[upstream.pk]
    assert (row.allocated_bytes, row.in_flight_bytes) == (15 * GIB, 1 * GIB)
    assert (row.used_bytes, row.remaining_bytes, row.counted_sub_accounts) == (9 * GIB, 6 * GIB, 1)
    assert (row.pool_total_bytes, row.pool_remaining_bytes) == (500 * GIB, 485 * GIB)
    assert row.billed_bytes == billed
    assert row.unbilled_bytes == max(9 * GIB - billed, 0)
    assert set(rows) == {alpha.upstreams["ipfoxy"].pk, alpha.upstreams["ipfoxy_dec"].pk}
    assert rows[alpha.upstreams["ipfoxy_dec"].pk].pool_as_of is None  # never read

    client.force_login(alpha.staff)
    html = client.get("/admin/").content.decode()
    assert 'id="fb-prepaid"' in html
    assert (
        'data-figure="allocated">15.0 GB <span class="fb-muted fb-small">+ 1.00 GB pending' in html
    )
    assert 'data-figure="pool">pool: 485.0 GB left of 500.0 GB<' in html


@pytest.mark.slow
def test_other_resellers_figures_never_show(alpha, bravo):
    upstream = bravo.upstreams["ipfoxy"]
    UpstreamPoolBalance.objects.create(
        upstream_account=upstream, total_bytes=GIB, remaining_bytes=GIB,
        as_of=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    rows = dashboard_prepaid_traffic(reseller=alpha.reseller)
    assert upstream.pk not in {r.upstream_account_id for r in rows}
    assert all(r.pool_as_of is None for r in rows)
