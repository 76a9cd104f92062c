"""The dashboard's figures are the billing engine's and the usage tables' (seeded dataset)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from billing.costs import upstream_cost, upstream_gb_bytes
from billing.dashboard import dashboard_build
from billing.dashboard.attention import dashboard_invoices_attention
from billing.dashboard.figures import allocate, dashboard_period_figures
from billing.dashboard.health import dashboard_sync_health
from billing.dashboard.reconciliation import dashboard_reconciliation
from billing.dashboard.trend import dashboard_monthly_trend
from billing.invoicing.compute import invoice_preview
from billing.invoicing.periods import Period
from billing.invoicing.voiding import invoice_void
from billing.models import InvoiceEmail, InvoiceLine, Subscription
from billing.money import format_money
from billing.plans import subscription_end
from tests.admin.seed import GIB, NOV, NOW, OCT, SUBS, UTC, bucket_sum, hour_bytes
from usage.models import UsageDay

MIB = 1_048_576
DEC = dt.date(2026, 12, 1)


def _november_hours():
    first = dt.datetime(2026, 10, 31, 16, tzinfo=UTC)  # 2026-11-01 00:00 in Shanghai
    return [
        first + dt.timedelta(hours=i) for i in range(int((NOW - first).total_seconds()) // 3600)
    ]


def _expected_traffic(customer_key):
    """Bytes from the seed's own hourly formula, independent of what the database holds."""
    return sum(_expected_sub(key) for key, spec in SUBS.items() if spec[0] == customer_key)


def test_gb_of_an_upstream_follows_its_mb():
    assert upstream_gb_bytes(mb_bytes=1_048_576) == 1_073_741_824
    assert upstream_gb_bytes(mb_bytes=1_000_000) == 1_000_000_000


def test_allocation_splits_to_the_cent_and_adds_up():
    parts = allocate(Decimal("10.00"), {1: 1, 2: 1, 3: 1}, "USD")
    assert parts == {1: Decimal("3.34"), 2: Decimal("3.33"), 3: Decimal("3.33")}
    assert allocate(Decimal("100"), {1: 3, 2: 1}, "JPY") == {1: Decimal(75), 2: Decimal(25)}
    assert allocate(Decimal("-0.05"), {1: 1, 2: 1}, "USD") == {
        1: Decimal("-0.03"),
        2: Decimal("-0.02"),
    }
    assert allocate(Decimal("5.00"), {}, "USD") == {}


def test_period_figures_equal_the_billing_engine_and_the_usage_tables(alpha):
    figures = dashboard_period_figures(reseller=alpha.reseller, now=NOW)

    assert figures.period == Period(start=NOV, end=DEC)
    assert figures.day_of_period == 20
    rows = {row.customer_id: row for row in figures.customers}
    assert set(rows) == {c.pk for c in alpha.customers.values()}
    for key, customer in alpha.customers.items():
        row = rows[customer.pk]
        preview = invoice_preview(customer=customer, period_start=NOV)
        engine = sum(
            (line.amount for line in preview.lines if line.kind != "adjustment"), Decimal(0)
        )
        stored = UsageDay.objects.filter(
            sub_account__customer=customer, day__gte=NOV, day__lt=DEC
        ).aggregate(total=Sum("bytes"))["total"]
        assert row.revenue == engine, key
        assert row.traffic_bytes == (stored or 0) == _expected_traffic(key), key
        assert row.margin == row.revenue - row.cost

    acme, beta, gamma, delta = (
        rows[alpha.customers[k].pk] for k in ("acme", "beta", "gamma", "delta")
    )
    ipfoxy, dec, bf = (alpha.upstreams[k] for k in ("ipfoxy", "ipfoxy_dec", "bytesflows"))
    # Cost: bytes x price per upstream GB, rounded per (customer, upstream account).
    acme_1 = _expected_sub("acme-1")
    acme_2 = _expected_sub("acme-2")
    assert acme.cost == _round(acme_1 * Decimal("0.80") / GIB) + _round(
        acme_2 * Decimal("1.00") / 1_000_000_000
    )
    assert gamma.revenue == Decimal("0")  # no plan: traffic sold at a loss
    assert gamma.cost == _round(_expected_sub("gamma-1") * Decimal("0.80") / GIB) > 0
    assert gamma.margin == -gamma.cost
    assert delta.revenue == Decimal("20.00")  # the base fee only
    assert (delta.traffic_bytes, delta.cost) == (0, Decimal("0"))
    # Top customers first.
    assert [r.customer_id for r in figures.customers] == [
        alpha.customers[k].pk for k in ("acme", "beta", "delta", "gamma")
    ]
    assert figures.revenue == acme.revenue + beta.revenue + delta.revenue + gamma.revenue
    assert figures.cost == acme.cost + beta.cost + gamma.cost

    ups = {u.upstream_account_id: u for u in figures.upstreams}
    for upstream in (ipfoxy, dec, bf):
        stored = UsageDay.objects.filter(
            sub_account__upstream_account=upstream, day__gte=NOV, day__lt=DEC
        ).aggregate(total=Sum("bytes"))["total"]
        assert ups[upstream.pk].traffic_bytes == stored
    # Beta's 50 GB packs are scoped to BytesFlows: all of that plan's revenue is BytesFlows'.
    beta_packs = Subscription.objects.get(customer=alpha.customers["beta"], plan__code="packs")
    preview = invoice_preview(customer=alpha.customers["beta"], period_start=NOV)
    packs = sum(line.amount for line in preview.lines if line.subscription_id == beta_packs.pk)
    assert ups[bf.pk].revenue == packs == Decimal("200.00")
    # Delta's base fee (all upstreams, no traffic) belongs to no upstream account.
    assert figures.unallocated_revenue == Decimal("20.00")
    assert sum(u.revenue for u in figures.upstreams) + figures.unallocated_revenue == (
        figures.revenue
    )
    assert sum(u.cost for u in figures.upstreams) == figures.cost
    assert sum(u.traffic_bytes for u in figures.upstreams) == figures.traffic_bytes


def _expected_sub(key):
    _, _, tenths, _ = SUBS[key]
    return sum(hour_bytes(tenths, hour) for hour in _november_hours())


def _round(value):
    return value.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")


def test_dashboard_page_shows_the_engine_figures(client, alpha, pinned_now):
    client.force_login(alpha.staff)

    response = client.get("/admin/")

    assert response.status_code == 200
    figures = response.context["dashboard"].figures
    expected = dashboard_period_figures(reseller=alpha.reseller, now=NOW)
    assert (figures.revenue, figures.cost, figures.traffic_bytes) == (
        expected.revenue,
        expected.cost,
        expected.traffic_bytes,
    )
    html = response.content.decode()
    assert f'data-figure="revenue">{format_money(expected.revenue, "USD")}<' in html
    assert f'data-figure="margin">{format_money(expected.margin, "USD")}<' in html
    assert "November 2026 so far" in html
    assert 'class="flowbill-chart flowbill-trend-chart"' in html


def test_sync_health_lists_failing_and_stale_sub_accounts(alpha):
    health = {
        h.upstream_account_id: h for h in dashboard_sync_health(reseller=alpha.reseller, now=NOW)
    }
    ipfoxy = health[alpha.upstreams["ipfoxy"].pk]
    bytesflows = health[alpha.upstreams["bytesflows"].pk]
    decimal = health[alpha.upstreams["ipfoxy_dec"].pk]

    assert [s.sub_account_id for s in ipfoxy.failing] == [alpha.subs["gamma-1"].pk]
    assert ipfoxy.failing[0].error_code == "upstream_auth_failed"
    assert ipfoxy.failing[0].error.startswith("authentication failed")
    assert ipfoxy.last_success_at == dt.datetime(2026, 11, 20, 3, 30, tzinfo=UTC)
    assert ipfoxy.stale == []
    # Succeeded 8 hours ago; the skipped run since then does not count as a sync.
    assert [s.sub_account_id for s in bytesflows.stale] == [alpha.subs["beta-2"].pk]
    assert bytesflows.stale[0].last_success_at == NOW - dt.timedelta(hours=8)
    assert decimal.ok and decimal.active_sub_accounts == 1


def test_invoices_needing_attention(alpha):
    groups = {g.key: g for g in dashboard_invoices_attention(reseller=alpha.reseller, now=NOW)}

    acme, delta = alpha.invoices["acme"], alpha.invoices["delta"]
    assert [i.invoice_id for i in groups["overdue"].items] == [acme.pk]
    assert groups["overdue"].items[0].note == "4 days late"  # due Nov 16, today Nov 20
    assert [i.invoice_id for i in groups["stuck"].items] == [delta.pk]  # grace ended Nov 3
    assert groups["grace"].count == 0 and groups["unpaid"].count == 0  # Beta paid
    assert [i.invoice_id for i in groups["emails"].items] == [acme.pk]
    assert groups["overdue"].totals == {"USD": acme.total}

    # On Nov 2 (Shanghai) October's draft was still in its grace period, and unpaid not due.
    early = dt.datetime(2026, 11, 1, 20, tzinfo=UTC)
    groups = {g.key: g for g in dashboard_invoices_attention(reseller=alpha.reseller, now=early)}
    assert [i.invoice_id for i in groups["grace"].items] == [delta.pk]
    assert groups["grace"].items[0].when == dt.date(2026, 11, 3)
    assert [i.invoice_id for i in groups["unpaid"].items] == [acme.pk]

    # A later delivery that went out clears the failed one.
    InvoiceEmail.objects.create(
        invoice=acme, sequence=2, recipients=["x@example.com"], status="sent", queued_at=NOW
    )
    groups = {g.key: g for g in dashboard_invoices_attention(reseller=alpha.reseller, now=NOW)}
    assert groups["emails"].count == 0


def test_reconciliation_counts_unassigned_unbilled_and_mismatch(alpha):
    rows = {r.upstream_account_id: r for r in dashboard_reconciliation(reseller=alpha.reseller)}
    ipfoxy = rows[alpha.upstreams["ipfoxy"].pk]
    since = dt.datetime(2026, 11, 18, tzinfo=UTC)
    until = dt.datetime(2026, 11, 20, 3, tzinfo=UTC)
    acme = bucket_sum(alpha.subs["acme-1"], since, until)
    gamma = bucket_sum(alpha.subs["gamma-1"], since, until)

    assert (ipfoxy.since, ipfoxy.until) == (since, until)
    assert ipfoxy.reported_bytes == acme + 12 * MIB + gamma + 5 * GIB  # main account left out
    assert ipfoxy.metered_bytes == acme + gamma
    assert ipfoxy.billed_bytes == acme  # Gamma has no plan
    assert ipfoxy.unassigned_bytes == 5 * GIB
    assert ipfoxy.unbilled_bytes == gamma
    assert ipfoxy.mismatch_bytes == 12 * MIB
    assert ipfoxy.difference_bytes == gamma + 5 * GIB + 12 * MIB
    assert ipfoxy.flagged
    assert ipfoxy.lost_cost == upstream_cost(
        nbytes=ipfoxy.difference_bytes, upstream=alpha.upstreams["ipfoxy"], currency="USD"
    )
    assert [r.upstream_id for r in ipfoxy.top_rows] == [
        "ALPHA-GAMMA-1",
        "ALPHA-FREE",
        "ALPHA-ACME-1",
    ]
    assert not rows[alpha.upstreams["ipfoxy_dec"].pk].available  # never discovered


def test_reconciliation_bills_only_the_days_a_subscription_covers(alpha):
    subscription = Subscription.objects.get(customer=alpha.customers["acme"])
    subscription_end(subscription=subscription, ends_on=dt.date(2026, 11, 19))
    rows = {r.upstream_account_id: r for r in dashboard_reconciliation(reseller=alpha.reseller)}

    # Nov 19 starts at 2026-11-18T16:00Z in Shanghai: only the hours before it are billed.
    start = dt.datetime(2026, 11, 18, tzinfo=UTC)
    billed = bucket_sum(alpha.subs["acme-1"], start, dt.datetime(2026, 11, 18, 16, tzinfo=UTC))
    assert rows[alpha.upstreams["ipfoxy"].pk].billed_bytes == billed > 0


def test_monthly_trend_uses_invoices_for_closed_months_and_the_estimate_for_this_one(alpha):
    invoice_void(invoice=alpha.invoices["acme"], now=NOW, actor="test")  # counts for nothing
    figures = dashboard_period_figures(reseller=alpha.reseller, now=NOW)

    trend = {
        m.period.start: m for m in dashboard_monthly_trend(reseller=alpha.reseller, current=figures)
    }

    october = sum(
        line.amount
        for line in InvoiceLine.objects.filter(
            invoice__in=[alpha.invoices["beta"], alpha.invoices["delta"]]
        ).exclude(kind="adjustment")
    )
    assert trend[OCT].revenue == october
    # 31 days: Acme 8 GiB/day at 0.80 + 2 GiB/day at 1.00 per 10^9 bytes, Beta 5 GiB/day at
    # 0.80 + 1 GiB/day at 1.10.
    assert trend[OCT].cost == Decimal("198.40") + Decimal("66.57") + Decimal("124.00") + Decimal(
        "34.10"
    )
    assert trend[dt.date(2026, 9, 1)].revenue == Decimal("0.00")  # usage but no invoice
    assert trend[dt.date(2026, 9, 1)].cost == Decimal("218.36")
    assert (trend[NOV].revenue, trend[NOV].cost, trend[NOV].estimated) == (
        figures.revenue,
        figures.cost,
        True,
    )
    assert len(trend) == 6  # empty months before September are left out


@pytest.mark.slow
def test_build_collects_every_section(alpha):
    dashboard = dashboard_build(reseller=alpha.reseller, now=NOW)
    assert dashboard.failing_count == 1
    assert dashboard.stale_count == 1
    assert [r.name for r in dashboard.flagged_reconciliation] == ["Alpha IPFoxy main"]
    assert dashboard.attention_count == 3
    assert not dashboard.all_clear
