"""End to end through the public interface only: the bootstrap commands, the HTTP API, the
sync and invoicing commands, against the built-in upstream simulator (real clock).

A Shanghai reseller sells a graduated plan (10.00 a month, 20 GB included, then 0.80/GB,
6 % tax) to a customer with two IPFoxy sub-accounts and one BytesFlows account. Last
month is synced, invoiced and finalized; the customer reads the invoice and its PDF and
the total is what the simulator's traffic for that month costs.

Sync: `POST /api/v1/reseller/sync/` re-syncs the trailing 72 hours (and snapshots
BytesFlows), so last month as a whole is backfilled with `manage.py sync_usage --since
--until`, as an operator would after connecting an upstream.
"""

import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from pypdf import PdfReader

from tests.api.conftest import key_client
from usage.simulator import SimulatorConfig, start_simulator

GIB = 1_073_741_824
MIB = 1_048_576
SHANGHAI = dt.timezone(dt.timedelta(hours=8))  # no DST: local midnight is 16:00Z
CENT = Decimal("0.01")


def command(*args) -> str:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue().strip()


def created(response) -> dict:
    assert response.status_code == 201, response.content
    return response.json()


def last_month(now: dt.datetime) -> tuple[dt.date, dt.date]:
    """[first day, first day after) of the last month that has ended in Shanghai."""
    first_this = now.astimezone(SHANGHAI).date().replace(day=1)
    first_last = (first_this - dt.timedelta(days=1)).replace(day=1)
    return first_last, first_this


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(dt.UTC)


@pytest.fixture
def sim():
    config = SimulatorConfig(seed=11, rate_limit_enabled=False)
    with start_simulator(port=0, config=config) as running:
        yield running


@pytest.mark.django_db
def test_bootstrap_to_customer_reading_last_months_invoice_and_pdf(sim, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    start, end = last_month(timezone.now())

    # Bootstrap: the commands print only the id, then only the key.
    reseller_id = command(
        "create_reseller",
        "--name",
        "E2E Proxies Ltd",
        "--currency",
        "USD",
        "--timezone",
        "Asia/Shanghai",
        "--prefix",
        "E2E",
    )
    assert reseller_id.isdigit()
    key = command("create_api_key", "--reseller", reseller_id)
    assert key.startswith("fb_")
    api = key_client(key)
    R = "/api/v1/reseller"

    ipfoxy = created(
        api.post(
            f"{R}/upstream-accounts/",
            {
                "name": "IPFoxy main",
                "provider": "ipfoxy",
                "base_url": sim.url,
                "credentials": {"api_id": "demo-api-id", "api_token": "demo-api-token"},
                "cost_per_gb": "0.30",
                "mb_bytes": MIB,
            },
        )
    )
    bytesflows = created(
        api.post(
            f"{R}/upstream-accounts/",
            {"name": "BytesFlows", "provider": "bytesflows", "base_url": sim.url},
        )
    )
    plan = created(
        api.post(
            f"{R}/plans/",
            {
                "code": "traffic-pro",
                "name": "Traffic Pro",
                "base_fee": "10.00",
                "pricing_model": "graduated",
                "tiers": [
                    {"up_to": "20", "unit_price": "0"},
                    {"up_to": None, "unit_price": "0.80"},
                ],
            },
        )
    )
    created(
        api.post(
            f"{R}/plans/",
            {
                "code": "packs",
                "name": "50 GB packs",
                "pricing_model": "package",
                "package_size": "50",
                "package_price": "30.00",
            },
        )
    )
    customer = created(
        api.post(
            f"{R}/customers/",
            {"name": "Shop One", "email": "billing@shop-one.example", "tax_rate": "6"},
        )
    )
    for upstream_id in ("SIM00001", "SIM00002"):
        created(
            api.post(
                f"{R}/sub-accounts/",
                {
                    "customer": customer["id"],
                    "upstream_account": ipfoxy["id"],
                    "upstream_id": upstream_id,
                    "label": f"pool {upstream_id}",
                },
            )
        )
    alice = created(
        api.post(
            f"{R}/sub-accounts/",
            {
                "customer": customer["id"],
                "upstream_account": bytesflows["id"],
                "upstream_id": "alice",
                "credentials": {"token": "bf-alice"},
            },
        )
    )
    created(
        api.post(
            f"{R}/subscriptions/",
            {"customer": customer["id"], "plan": plan["id"], "starts_on": start.isoformat()},
        )
    )
    customer_key = created(
        api.post(f"{R}/customers/{customer['id']}/api-keys/", {"name": "storefront"})
    )["key"]

    # Sync: the API for the recent hours and BytesFlows, the command for last month.
    sync = api.post(f"{R}/sync/", {})
    assert sync.status_code == 202, sync.content
    assert sync.json()["queued"] == 3
    summary = command(
        "sync_usage",
        "--since",
        start.isoformat(),
        "--until",
        (end - dt.timedelta(days=1)).isoformat(),
        "--workers",
        "1",
        "--no-progress",
    )
    assert "0 failed" in summary, summary

    # Close last month.
    command(
        "generate_invoices",
        "--period",
        f"{start:%Y-%m}",
        "--reseller",
        "e2e-proxies-ltd",
        "--finalize",
        "--no-progress",
    )

    # What the simulator says last month was, priced by hand.
    total_bytes = 0
    for account in ("SIM00001", "SIM00002"):
        hours = sim.expected_hourly_flows(
            account=account, start=local_midnight(start), end=local_midnight(end)
        )
        assert len(hours) == (end - start).days * 24
        total_bytes += sum(
            int((Decimal(flow) * MIB).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            for flow in hours.values()
        )
    over = Decimal(total_bytes) / GIB - 20
    assert over > 0  # the second tier is reached (about 65 GB a month)
    usage = (over * Decimal("0.80")).quantize(CENT, rounding=ROUND_HALF_UP)
    subtotal = Decimal("10.00") + usage
    tax = (subtotal * Decimal("0.06")).quantize(CENT, rounding=ROUND_HALF_UP)

    me = key_client(customer_key)
    invoices = me.get("/api/v1/invoices/").json()
    assert invoices["count"] == 1
    invoice = me.get(f"/api/v1/invoices/{invoices['results'][0]['id']}/").json()
    assert invoice["status"] == "finalized"
    assert invoice["number"].startswith("E2E-")
    assert (invoice["period_start"], invoice["period_end"]) == (start.isoformat(), end.isoformat())
    assert [(ln["kind"], ln["amount"]) for ln in invoice["lines"]] == [
        ("base_fee", "10.00"),
        ("usage", "0.00"),
        ("usage", str(usage)),
    ]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (
        str(subtotal),
        str(tax),
        str(subtotal + tax),
    )
    pdf = me.get(f"/api/v1/invoices/{invoice['id']}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert invoice["number"] in text and str(subtotal + tax) in text and "Shop One" in text

    # This month so far, and the BytesFlows traffic left as of the API's sync.
    current = me.get("/api/v1/usage/current/").json()
    assert current["period_start"] == end.isoformat()
    assert [s["plan_name"] for s in current["subscriptions"]] == ["Traffic Pro"]
    remaining = {s["id"]: s["remaining_bytes"] for s in current["sub_accounts"]}
    assert remaining[alice["id"]] is not None and remaining[alice["id"]] >= 0
    assert [v for k, v in remaining.items() if k != alice["id"]] == [None, None]  # IPFoxy
