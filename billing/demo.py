"""Demo step of the billing app: plans and subscriptions for the demo customers, then close
last month into invoices, PDFs (under MEDIA_ROOT, var/media/) and emails (var/mail/).

Idempotent: plans are found by code, customers that already have a subscription keep it,
and an invoice already issued for last month is only listed again.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal

from django.conf import settings

from accounts.models import Customer, Reseller, UpstreamAccount
from billing.invoicing.issuing import invoices_issue_for_period
from billing.invoicing.periods import period_last_closed
from billing.models import Invoice, Plan
from billing.money import format_money
from billing.plans import plan_create, subscription_create
from core.errors import ApplicationError

D = Decimal
PLANS = {
    "starter": dict(
        name="Starter (graduated)",
        pricing_model="graduated",
        base_fee=D("20"),
        tiers=[(D("10"), D("0")), (D("500"), D("3.00")), (None, D("2.20"))],
    ),
    "volume": dict(
        name="Volume",
        pricing_model="volume",
        tiers=[(D("100"), D("3.50")), (D("1000"), D("2.80")), (None, D("2.00"))],
    ),
    "packs": dict(
        name="50 GB packs",
        pricing_model="package",
        package_size=D("50"),
        package_price=D("100"),
        minimum_charge=D("100"),
    ),
}
# Per demo customer (in creation order): (plan code, upstream account name or None = all).
ASSIGNMENTS = [
    [("starter", None)],
    [("starter", "IPFoxy main"), ("packs", "BytesFlows")],
    [("volume", None)],
    [("packs", None)],
    [("starter", None)],
]


def _ensure_plans(reseller: Reseller) -> dict[str, Plan]:
    plans = {}
    for code, spec in PLANS.items():
        plan = Plan.objects.for_reseller(reseller).filter(code=code).first()
        plans[code] = plan or plan_create(reseller=reseller, code=code, **spec)
    return plans


def _ensure_subscriptions(reseller: Reseller, starts_on: dt.date, stdout) -> None:
    plans = _ensure_plans(reseller)
    customers = list(Customer.objects.for_reseller(reseller).order_by("pk"))
    upstreams = {u.name: u for u in UpstreamAccount.objects.for_reseller(reseller)}
    for customer, assignment in zip(customers, ASSIGNMENTS, strict=False):
        if customer.subscriptions.exists():
            continue
        for code, upstream_name in assignment:
            try:
                subscription_create(
                    customer=customer,
                    plan=plans[code],
                    starts_on=starts_on,
                    upstream_account=upstreams.get(upstream_name) if upstream_name else None,
                )
            except ApplicationError as exc:
                stdout.write(f"  {customer}: no {code} subscription ({exc.message})")


def _columns(text: str, width: int) -> str:
    """`text` cut or padded to `width` terminal columns (CJK characters take two)."""
    out, used = [], 0
    for char in text:
        wide = 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        if used + wide > width:
            break
        out.append(char)
        used += wide
    return "".join(out) + " " * (width - used)


def demo_close_last_month(*, reseller: Reseller, now: dt.datetime, stdout) -> None:
    period = period_last_closed(tz=reseller.tzinfo, now=now)
    _ensure_subscriptions(reseller, period.previous().previous().start, stdout)
    stdout.write(f"Invoicing {period.label} for {reseller} ({reseller.timezone})...")
    # The demo closes the month at once instead of waiting out the grace period.
    result = invoices_issue_for_period(
        reseller=reseller, period_start=period.start, now=now, actor="demo"
    )
    for failure in result.failed:
        stdout.write(f"  customer {failure.customer_id} not invoiced: {failure.message}")
    for invoice in (
        Invoice.objects.for_reseller(reseller)
        .filter(period_start=period.start)
        .select_related("customer")
        .order_by("number")
    ):
        where = settings.MEDIA_ROOT / invoice.pdf.name if invoice.pdf else "(PDF pending)"
        stdout.write(
            f"  {invoice.number}  {_columns(invoice.customer.name, 34)} "
            f"{format_money(invoice.total, invoice.currency):>14}  {where}"
        )
    mail_dir = getattr(settings, "EMAIL_FILE_PATH", None)
    if settings.EMAIL_BACKEND == "core.mail.EmlFileBackend" and mail_dir:
        stdout.write(
            f"Invoice PDFs are under {settings.MEDIA_ROOT}/invoices/, emails under {mail_dir}/"
        )
    else:
        stdout.write(
            f"Invoice PDFs are under {settings.MEDIA_ROOT}/invoices/; emails sent via SMTP."
        )
