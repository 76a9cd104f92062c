"""End to end on the upstream simulator: a Shanghai reseller's October is synced over HTTP,
closed, finalized, rendered and emailed; a late upstream revision of October is re-synced and
becomes an adjustment on November's invoice.

Every expected figure is computed here from the simulator's own account of what it reports
(`expected_hourly_flows`, MB per UTC hour) and the plan, independently of Flowbill's sync and
rating code, and pinned to the literal it gives for seed 11.
"""

import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from django.core import mail
from pypdf import PdfReader

from billing.invoicing.cycle import invoice_cycle_run
from billing.models import Invoice
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory
from usage.services import usage_sync_upstream_account
from usage.simulator import SimulatorConfig, start_simulator

GIB = 1_073_741_824
MIB = 1_048_576
CENT = Decimal("0.01")
ACCOUNTS = ("SIM00001", "SIM00002")
CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}
# Months in Asia/Shanghai (UTC+8) as UTC instants.
OCT_START = dt.datetime(2026, 9, 30, 16, tzinfo=dt.UTC)
NOV_START = dt.datetime(2026, 10, 31, 16, tzinfo=dt.UTC)
DEC_START = dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC)
# 02:00 local on the 2nd: the month is over and in its two days of grace; 00:30 local on the
# 3rd: grace is over, the draft is finalized.
OCT_CLOSED = dt.datetime(2026, 11, 1, 18, tzinfo=dt.UTC)
OCT_DUE = dt.datetime(2026, 11, 2, 16, 30, tzinfo=dt.UTC)
LATE_REVISION = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
NOV_CLOSED = dt.datetime(2026, 12, 1, 18, tzinfo=dt.UTC)
NOV_DUE = dt.datetime(2026, 12, 2, 16, 30, tzinfo=dt.UTC)
REVISED_HOUR = dt.datetime(2026, 10, 25, 5, tzinfo=dt.UTC)  # 13:00 on Oct 25th in Shanghai


def _stored_bytes(flow: str) -> int:
    """What an hour of `flow` MB is in bytes (1 MB = 1,048,576 bytes, half up)."""
    return int((Decimal(flow) * MIB).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _month_bytes(sim, start: dt.datetime, end: dt.datetime) -> int:
    return sum(
        _stored_bytes(flow)
        for account in ACCOUNTS
        for flow in sim.expected_hourly_flows(account=account, start=start, end=end).values()
    )


def _expected(usage_bytes: int, adjustment: Decimal = Decimal(0)) -> tuple[Decimal, ...]:
    """The plan by hand: 20.00 a month, the first 5 GB free, then 2.50 per GB (2^30 bytes);
    tax 6 %. Returns (usage amount, subtotal, tax, total)."""
    with localcontext() as ctx:
        ctx.prec = 60
        gb = Decimal(usage_bytes) / GIB
        usage = (max(gb - 5, Decimal(0)) * Decimal("2.50")).quantize(CENT, ROUND_HALF_UP)
    subtotal = Decimal("20.00") + usage + adjustment
    tax = (subtotal * 6 / 100).quantize(CENT, ROUND_HALF_UP)
    return usage, subtotal, tax, subtotal + tax


def _pdf_text(invoice: Invoice) -> str:
    with invoice.pdf.open("rb") as fh:
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(fh.read())).pages)


def _sync(upstream, start, end, now):
    summary = usage_sync_upstream_account(upstream_account=upstream, start=start, end=end, now=now)
    assert (summary.ok, summary.failed) == (len(ACCOUNTS), 0), summary.failures


@pytest.mark.django_db
def test_month_synced_from_the_simulator_is_billed_mailed_and_late_usage_adjusted(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(timezone="Asia/Shanghai", invoice_prefix="SH")
    customer = factories.CustomerFactory(
        reseller=reseller, name="上海流量科技有限公司", tax_rate=Decimal("6")
    )
    plan = PlanFactory(
        reseller=reseller,
        base_fee=Decimal("20.00"),
        tiers=[(Decimal("5"), Decimal("0")), (None, Decimal("2.50"))],
    )
    SubscriptionFactory(customer=customer, plan=plan, starts_on=dt.date(2026, 9, 1))
    config = SimulatorConfig(seed=11, now=OCT_CLOSED, rate_limit_enabled=False)
    with start_simulator(port=0, config=config) as sim:
        # Two syncs of a month for two accounts take more requests than a minute of the default
        # budget (50) allows, and the test would wait out the minute: the simulator does not
        # rate-limit, so neither does this account.
        upstream = factories.UpstreamAccountFactory(
            reseller=reseller,
            name="IPFoxy",
            base_url=sim.url,
            credentials=CREDS,
            requests_per_minute=1000,
        )
        for account in ACCOUNTS:
            factories.SubAccountFactory(
                customer=customer, upstream_account=upstream, upstream_id=account
            )

        # October: synced once it is over, closed into a draft, finalized after the grace.
        _sync(upstream, OCT_START, NOV_START, OCT_CLOSED)
        october_bytes = _month_bytes(sim, OCT_START, NOV_START)
        with django_capture_on_commit_callbacks(execute=True):
            invoice_cycle_run(reseller=reseller, now=OCT_CLOSED)
            assert Invoice.objects.get().status == "draft"
            invoice_cycle_run(reseller=reseller, now=OCT_DUE)
        october = Invoice.objects.get()
        usage, subtotal, tax, total = _expected(october_bytes)
        # 69,361,205,236 B = 64.5976... GB: 20.00 + 59.5976... x 2.50 = 168.99, tax 10.14.
        assert (october_bytes, usage, total) == (
            69_361_205_236,
            Decimal("148.99"),
            Decimal("179.13"),
        )
        assert (october.status, october.number) == ("finalized", "SH-2026-00001")
        assert (october.subtotal, october.tax, october.total) == (subtotal, tax, total)
        text = _pdf_text(october)
        assert "SH-2026-00001" in text and "上海流量科技有限公司" in text
        assert f"{total:,.2f}" in text and f"{october_bytes:,}" in text
        assert "1 GB = 1,073,741,824 bytes" in text
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == [customer.email] and "SH-2026-00001" in message.subject
        name, content, mimetype = message.attachments[0]
        with october.pdf.open("rb") as fh:
            assert (name, content, mimetype) == ("SH-2026-00001.pdf", fh.read(), "application/pdf")

        # Weeks later the upstream revises an October hour of SIM00002 up by 2048 MB (2 GiB);
        # the re-sync stores it, October's invoice stays as issued.
        sim.set_clock(now=LATE_REVISION)
        hour = {"start": REVISED_HOUR, "end": REVISED_HOUR + dt.timedelta(hours=1)}
        old = sim.expected_hourly_flows(account="SIM00002", **hour)[REVISED_HOUR]
        sim.revise(account="SIM00002", hour=REVISED_HOUR, flow=str(Decimal(old) + 2048))
        _sync(upstream, OCT_START, NOV_START, LATE_REVISION)
        assert _month_bytes(sim, OCT_START, NOV_START) == october_bytes + 2 * GIB
        october.refresh_from_db()
        assert october.total == total

        # November closes with the 2 GiB x 2.50 = 5.00 adjustment for October.
        sim.set_clock(now=NOV_CLOSED)
        _sync(upstream, NOV_START, DEC_START, NOV_CLOSED)
        november_bytes = _month_bytes(sim, NOV_START, DEC_START)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_cycle_run(reseller=reseller, now=NOV_CLOSED)
        invoice_cycle_run(reseller=reseller, now=NOV_DUE)
    november = Invoice.objects.get(period_start=dt.date(2026, 11, 1))
    adjustment = november.lines.get(kind="adjustment")
    assert (adjustment.amount, adjustment.adjusts_invoice_id) == (Decimal("5.00"), october.pk)
    assert adjustment.details["usage_bytes"] - adjustment.details["usage_bytes_billed"] == 2 * GIB
    usage, subtotal, tax, total = _expected(november_bytes, adjustment=Decimal("5.00"))
    # 58,028,300,696 B: 20.00 + 122.61 + 5.00 = 147.61, tax 8.86.
    assert (november_bytes, usage, total) == (58_028_300_696, Decimal("122.61"), Decimal("156.47"))
    assert (november.number, november.subtotal, november.tax, november.total) == (
        "SH-2026-00002",
        subtotal,
        tax,
        total,
    )
    text = _pdf_text(november)
    assert "Adjustment for SH-2026-00001" in text and f"{total:,.2f}" in text
    assert len(mail.outbox) == 2
    assert mail.outbox[1].attachments[0][0] == "SH-2026-00002.pdf"
