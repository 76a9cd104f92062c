"""A seeded reseller for the dashboard, action and browser tests.

Asia/Shanghai reseller; `NOW` is 2026-11-20 12:00 local, so November is the running period
and October is closed. Four customers:
- Acme: graduated plan over all upstreams; sub-accounts on "IPFoxy main" (binary MB, 0.80
  per GB) and "IPFoxy decimal" (MB = 1,000,000 bytes, 1.00 per GB); October finalized and
  overdue, its first email failed.
- Beta: volume plan on IPFoxy main and 50 GB packs on BytesFlows (1.10 per GB); October paid.
  Its BytesFlows sub-account has not synced successfully for 8 hours (stale).
- Gamma: traffic on IPFoxy main but no plan (unbilled, a loss); its last sync failed.
- Delta: a plan over all upstreams, no sub-accounts (base fee only); October still a draft.
November traffic is stored per hour and summed into days like sync does; earlier months are
days only. IPFoxy main's discovered sub-accounts carry counters for the reconciliation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from accounts.models import MIB, Customer, Provider, Reseller, SubAccount, UpstreamAccount, User
from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.finalizing import invoice_finalize
from billing.models import Invoice, InvoiceEmail, Plan
from billing.payments.services import invoice_mark_paid
from billing.plans import plan_create, subscription_create
from tests import factories
from usage.models import SyncRun, UpstreamSubAccount, UsageDay, UsageHour
from usage.services.storage import days_recompute

UTC = dt.UTC
GIB = 1_073_741_824
NOW = dt.datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
OCT = dt.date(2026, 10, 1)
NOV = dt.date(2026, 11, 1)
ISSUED_AT = dt.datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
PASSWORD = "pw-Staff-123"
D = Decimal

# sub-account key -> (customer key, upstream key, GiB per hour (tenths), October GiB per day)
SUBS = {
    "acme-1": ("acme", "ipfoxy", 4, 8),
    "acme-2": ("acme", "ipfoxy_dec", 1, 2),
    "beta-1": ("beta", "ipfoxy", 2, 5),
    "beta-2": ("beta", "bytesflows", 1, 1),
    "gamma-1": ("gamma", "ipfoxy", 1, 0),
}


@dataclass
class Seed:
    reseller: Reseller
    staff: User
    customers: dict[str, Customer] = field(default_factory=dict)
    upstreams: dict[str, UpstreamAccount] = field(default_factory=dict)
    subs: dict[str, SubAccount] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)


def hour_bytes(tenths: int, hour: dt.datetime) -> int:
    """Deterministic traffic of one hour: tenths of a GiB, +0..40% by hour of day."""
    return GIB * tenths // 10 + GIB * tenths * (hour.hour % 5) // 100


def _plans(reseller: Reseller) -> dict[str, Plan]:
    return {
        "starter": plan_create(
            reseller=reseller,
            code="starter",
            name="Starter",
            pricing_model="graduated",
            base_fee=D("20"),
            tiers=[(D("10"), D("0")), (D("500"), D("3.00")), (None, D("2.20"))],
        ),
        "volume": plan_create(
            reseller=reseller,
            code="volume",
            name="Volume",
            pricing_model="volume",
            tiers=[(D("100"), D("3.50")), (None, D("2.80"))],
        ),
        "packs": plan_create(
            reseller=reseller,
            code="packs",
            name="50 GB packs",
            pricing_model="package",
            package_size=D("50"),
            package_price=D("100"),
            minimum_charge=D("100"),
        ),
    }


def seed_reseller(*, name: str = "Alpha Proxies", prefix: str = "ALPHA", now=NOW) -> Seed:
    reseller = factories.ResellerFactory(
        name=name,
        timezone="Asia/Shanghai",
        invoice_prefix=prefix,
        payment_terms_days=14,
        grace_period_days=2,
    )
    staff = factories.StaffUserFactory(reseller=reseller, username=f"staff-{prefix.lower()}")
    seed = Seed(reseller=reseller, staff=staff)
    seed.upstreams = {
        "ipfoxy": factories.UpstreamAccountFactory(
            reseller=reseller, name=f"{name} IPFoxy main", cost_per_gb=D("0.80"), mb_bytes=MIB
        ),
        "ipfoxy_dec": factories.UpstreamAccountFactory(
            reseller=reseller,
            name=f"{name} IPFoxy decimal",
            cost_per_gb=D("1.00"),
            mb_bytes=1_000_000,
        ),
        "bytesflows": factories.UpstreamAccountFactory(
            reseller=reseller,
            name=f"{name} BytesFlows",
            provider=Provider.BYTESFLOWS,
            cost_per_gb=D("1.10"),
            credentials={},
        ),
    }
    for key in ("acme", "beta", "gamma", "delta"):
        seed.customers[key] = factories.CustomerFactory(
            reseller=reseller, name=f"{name} {key.capitalize()}", tax_rate=D("10")
        )
    for key, (customer, upstream, _, _) in SUBS.items():
        seed.subs[key] = factories.SubAccountFactory(
            customer=seed.customers[customer],
            upstream_account=seed.upstreams[upstream],
            upstream_id=f"{prefix}-{key.upper()}",
            label=f"{name} {key}",
        )
    plans = _plans(reseller)
    starts = dt.date(2026, 9, 1)
    c, u = seed.customers, seed.upstreams
    subscription_create(customer=c["acme"], plan=plans["starter"], starts_on=starts)
    subscription_create(
        customer=c["beta"], plan=plans["volume"], starts_on=starts, upstream_account=u["ipfoxy"]
    )
    subscription_create(
        customer=c["beta"],
        plan=plans["packs"],
        starts_on=starts,
        upstream_account=u["bytesflows"],
    )
    subscription_create(customer=c["delta"], plan=plans["starter"], starts_on=starts)
    _usage(seed, now)
    _invoices(seed)
    _syncs(seed, now)
    return seed


def _usage(seed: Seed, now: dt.datetime) -> None:
    tz = seed.reseller.tzinfo
    first_hour = dt.datetime.combine(NOV, dt.time(), tzinfo=tz).astimezone(UTC)
    last_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = []
    moment = first_hour
    while moment < last_hour:
        hours.append(moment)
        moment += dt.timedelta(hours=1)
    for key, (_, _, tenths, oct_gib) in SUBS.items():
        sub = seed.subs[key]
        UsageHour.objects.bulk_create(
            UsageHour(sub_account=sub, hour_start=h, bytes=hour_bytes(tenths, h)) for h in hours
        )
        days_recompute(sub_account_id=sub.pk, hours=hours, tz=tz)
        if oct_gib:
            UsageDay.objects.bulk_create(
                UsageDay(sub_account=sub, day=day, bytes=oct_gib * GIB)
                for day in (dt.date(2026, 9, 15) + dt.timedelta(days=i) for i in range(47))
            )


def _invoices(seed: Seed) -> None:
    c = seed.customers
    acme, _ = invoice_create_draft(customer=c["acme"], period_start=OCT, now=ISSUED_AT)
    acme = invoice_finalize(invoice=acme, now=ISSUED_AT, send_email=False, actor="seed")
    InvoiceEmail.objects.create(
        invoice=acme,
        sequence=1,
        recipients=[c["acme"].email],
        status=InvoiceEmail.Status.FAILED,
        attempts=3,
        last_error="SMTPRecipientsRefused: mailbox unavailable",
        queued_at=ISSUED_AT,
    )
    beta, _ = invoice_create_draft(customer=c["beta"], period_start=OCT, now=ISSUED_AT)
    beta = invoice_finalize(invoice=beta, now=ISSUED_AT, send_email=False, actor="seed")
    beta = invoice_mark_paid(invoice=beta, now=ISSUED_AT + dt.timedelta(days=3), actor="seed")
    delta, _ = invoice_create_draft(customer=c["delta"], period_start=OCT, now=ISSUED_AT)
    seed.invoices = {"acme": acme, "beta": beta, "delta": delta}


def _run(sub: SubAccount, status: str, at: dt.datetime, **extra) -> SyncRun:
    return SyncRun.objects.create(
        upstream_account=sub.upstream_account,
        sub_account=sub,
        kind=SyncRun.Kind.USAGE,
        status=status,
        started_at=at,
        finished_at=at + dt.timedelta(seconds=2),
        **extra,
    )


def _syncs(seed: Seed, now: dt.datetime) -> None:
    s = seed.subs
    for key in ("acme-1", "acme-2", "beta-1", "gamma-1"):
        _run(s[key], "succeeded", now - dt.timedelta(hours=3), rows_written=10)
    for key in ("acme-1", "acme-2", "beta-1"):
        _run(s[key], "succeeded", now - dt.timedelta(minutes=50), rows_written=2)
    _run(
        s["gamma-1"],
        "failed",
        now - dt.timedelta(minutes=40),
        error_code="upstream_auth_failed",
        error="authentication failed: check the upstream account's API id and token",
    )
    _run(s["beta-2"], "succeeded", now - dt.timedelta(hours=8), rows_written=3)
    _run(
        s["beta-2"],
        "skipped",
        now - dt.timedelta(hours=1),
        error_code="sync_already_running",
    )
    # IPFoxy main's sub-account list: counters for the reconciliation (hours 2026-11-18 00:00Z
    # to 2026-11-20 03:00Z). Acme's counter moved 12 MiB more than its buckets; Gamma (no
    # plan) and an unassigned sub-account are traffic nobody is billed for.
    ipfoxy = seed.upstreams["ipfoxy"]
    since = dt.datetime(2026, 11, 18, 0, 30, tzinfo=UTC)
    seen = dt.datetime(2026, 11, 20, 3, 30, tzinfo=UTC)
    for key, extra in (("acme-1", 12 * MIB), ("gamma-1", 0)):
        growth = bucket_sum(s[key], since.replace(minute=0), seen.replace(minute=0)) + extra
        UpstreamSubAccount.objects.create(
            upstream_account=ipfoxy,
            upstream_id=s[key].upstream_id,
            sub_account=s[key],
            used_bytes=500 * GIB + growth,
            baseline_used_bytes=500 * GIB,
            baseline_at=since,
            seen_at=seen,
        )
    UpstreamSubAccount.objects.create(
        upstream_account=ipfoxy,
        upstream_id=f"{seed.reseller.invoice_prefix}-FREE",
        used_bytes=7 * GIB,
        baseline_used_bytes=2 * GIB,
        baseline_at=since,
        seen_at=seen,
    )
    UpstreamSubAccount.objects.create(
        upstream_account=ipfoxy,
        upstream_id=f"{seed.reseller.invoice_prefix}-MAIN",
        is_main=True,
        used_bytes=900 * GIB,
        baseline_used_bytes=100 * GIB,
        baseline_at=since,
        seen_at=seen,
    )
    SyncRun.objects.create(
        upstream_account=ipfoxy,
        kind=SyncRun.Kind.DISCOVERY,
        status="succeeded",
        started_at=seen,
        finished_at=seen,
    )


def bucket_sum(sub: SubAccount, start: dt.datetime, end: dt.datetime) -> int:
    return sum(
        UsageHour.objects.filter(
            sub_account=sub, hour_start__gte=start, hour_start__lt=end
        ).values_list("bytes", flat=True)
    )
