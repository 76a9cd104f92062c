"""In a real browser: reseller staff log in, read the dashboard, open a customer's chart,
finalize a draft invoice with its button and download the PDF."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from billing.dashboard import dashboard_build
from billing.models import Invoice
from config.admin.site import FlowbillAdminSite
from tests.admin.seed import NOW, PASSWORD, seed_reseller

SCREENSHOT = Path("/tmp/h3-dashboard.png")


@pytest.fixture
def seeded(transactional_db, settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(FlowbillAdminSite, "now", staticmethod(lambda: NOW))
    return seed_reseller(name="Alpha", prefix="ALPHA")


@pytest.mark.slow
def test_staff_reads_dashboard_opens_chart_finalizes_and_downloads_pdf(live_server, page, seeded):
    expected = dashboard_build(reseller=seeded.reseller, now=NOW).figures
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", seeded.staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.locator("#content-main h1")).to_have_text("Alpha")
    expect(page.locator("[data-figure=revenue]")).to_have_text(expected.revenue_text)
    expect(page.locator("[data-figure=margin]")).to_have_text(expected.margin_text)
    expect(page.locator("#fb-customers tbody tr").first).to_contain_text("Alpha Acme")
    expect(page.locator("#fb-needs-attention")).to_contain_text("failing sync")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("#fb-customers >> text=Alpha Acme")
    chart = page.locator("svg.flowbill-daily-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(90)

    draft = seeded.invoices["delta"]
    page.goto(f"{live_server.url}/admin/")
    page.click(f"#fb-invoices a:has-text('{draft}')")
    page.click("button:has-text('Finalize')")
    expect(page.locator(".messagelist .success")).to_contain_text("Finalized as ALPHA-2026-")
    finalized = Invoice.objects.get(pk=draft.pk)
    assert finalized.status == "finalized"

    with page.expect_download() as info:
        page.click("button:has-text('Download PDF')")
    download = info.value
    assert download.suggested_filename == f"{finalized.number}.pdf"
    assert Path(download.path()).read_bytes()[:5] == b"%PDF-"
