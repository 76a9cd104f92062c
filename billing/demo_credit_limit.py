"""Demo step: a customer on the credit_limit traffic policy reaches its limit this month and
is cut off upstream.

"Kite Data Ltd" pays $2.00 per GB, has a credit limit of $1.50 and automatic top-ups of
128 MB whenever its sub-account has less than 64 MB left. From the first day of the current
month (reseller's timezone) the demo moves the built-in simulator's clock forward two hours
at a time and does, at each step, what the scheduled jobs do in production: refresh the
IPFoxy traffic figures (`sub_account_traffic_refresh`), sync the sub-account's usage, and
apply the traffic policy. Every chunk goes through the allocation ledger; when the next chunk
would take the exposure past $1.50 nothing more is allocated, the webhook and the email go
out once, and the sub-account runs dry upstream: IPFoxy serves no more traffic.

Runs only with the simulator this process started (its clock is moved). Flowbill's clock
(`django.utils.timezone.now`) is moved with it for the duration, so what the services and the
in-process tasks do "now" (an allocation's send, an email) happens at the simulated moment,
as it would have then. Idempotent: a second run finds the customer and reports where it
stands.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from unittest import mock

from accounts.models import Customer, Provider, Reseller, UpstreamAccount
from accounts.services import customer_create
from billing.invoicing.periods import local_midnight, period_containing
from billing.models import Plan
from billing.money import format_money
from billing.plans import plan_create, subscription_create
from billing.traffic_policy.policy import customer_traffic_policy_apply
from core.formatting import gb_text
from usage.demo import demo_simulator
from usage.models import Allocation, SubAccountTraffic
from usage.providers.ratelimit import UnlimitedBudget
from usage.services import usage_sync_sub_account
from usage.services.connectors import connector_for_upstream_account
from usage.services.provisioning import sub_account_provision
from usage.services.traffic import sub_account_traffic_refresh

MIB = 1_048_576
NAME = "Kite Data Ltd"
PLAN_CODE = "payg"
STEP = dt.timedelta(hours=2)
POLICY = {
    "traffic_policy": Customer.TrafficPolicy.CREDIT_LIMIT,
    "credit_limit": Decimal("1.50"),
    "topup_bytes": 128 * MIB,
    "topup_below_bytes": 64 * MIB,
}


class _Clock:
    """Flowbill's `timezone.now()` held at a simulated moment (see the module docstring)."""

    def __init__(self):
        self._patch = None

    def start_at(self, moment: dt.datetime) -> None:
        self.stop()
        self._patch = mock.patch("django.utils.timezone.now", return_value=moment)
        self._patch.start()

    def stop(self) -> None:
        if self._patch is not None:
            self._patch.stop()
            self._patch = None


def _plan(reseller: Reseller) -> Plan:
    plan = Plan.objects.for_reseller(reseller).filter(code=PLAN_CODE).first()
    return plan or plan_create(
        reseller=reseller,
        code=PLAN_CODE,
        name="Pay as you go",
        pricing_model="graduated",
        tiers=[(None, Decimal("2.00"))],
    )


def _report(customer: Customer, stdout) -> None:
    sub = customer.sub_accounts.first()
    if sub is None:
        stdout.write(f"  {customer}: no sub-account")
        return
    topups = Allocation.objects.filter(sub_account=sub, reason=Allocation.Reason.AUTO_TOPUP)
    confirmed = topups.filter(status=Allocation.Status.CONFIRMED).count()
    traffic = SubAccountTraffic.objects.filter(sub_account=sub).first()
    left = gb_text(traffic.remaining_bytes) if traffic else "not counted yet"
    limit = format_money(customer.credit_limit, customer.currency)
    reached = (
        f"credit limit {limit} reached {customer.credit_limit_reached_at:%Y-%m-%d %H:%M} UTC: "
        "nothing more allocated"
        if customer.credit_limit_reached_at
        else f"credit limit {limit} not reached yet"
    )
    stdout.write(
        f"  {customer}: sub-account {sub.upstream_id}, {confirmed} automatic top-ups of "
        f"{customer.topup_bytes // MIB} MB; {reached}; {left} left upstream"
        + (" (ran dry: cut off)" if traffic and traffic.remaining_bytes == 0 else "")
    )


def demo_credit_limit(*, reseller: Reseller, now: dt.datetime, stdout) -> None:
    customer = Customer.objects.for_reseller(reseller).filter(name=NAME).first()
    stdout.write("Credit limit (automatic top-ups, then cut off):")
    if customer is not None:
        _report(customer, stdout)
        return
    _url, sim = demo_simulator(now=now)
    upstream = (
        UpstreamAccount.objects.for_reseller(reseller)
        .filter(provider=Provider.IPFOXY, is_active=True)
        .order_by("pk")
        .first()
    )
    if sim is None or upstream is None:
        stdout.write("  skipped: needs an IPFoxy account on the simulator this demo started")
        return
    tz = reseller.tzinfo
    first_day = period_containing(tz=tz, now=now).start
    month_start = local_midnight(first_day, tz).astimezone(dt.UTC)
    customer = customer_create(
        reseller=reseller, name=NAME, email="billing@kite-data.example", **POLICY
    )
    subscription_create(customer=customer, plan=_plan(reseller), starts_on=first_day)
    budget = UnlimitedBudget()

    def connector():
        return connector_for_upstream_account(upstream_account=upstream, budget=budget)

    sim.set_clock(now=month_start)
    clock = _Clock()
    try:
        clock.start_at(month_start)
        row = sub_account_provision(
            customer=customer,
            upstream_account=upstream,
            label="Kite pool",
            initial_bytes=POLICY["topup_bytes"],
            actor="demo",
            now=month_start,
            send_now=True,
            connector=connector(),
        )
        if row.sub_account is None:
            stdout.write(f"  not provisioned ({row.status}: {row.error_code})")
            return
        moment = month_start
        while moment < now:
            moment = min(moment + STEP, now)
            sim.set_clock(now=moment)
            clock.start_at(moment)
            sub_account_traffic_refresh(
                upstream_account=upstream, now=moment, connector=connector()
            )
            usage_sync_sub_account(
                sub_account=row.sub_account,
                start=month_start,
                end=moment,
                now=moment,
                connector=connector(),
            )
            customer_traffic_policy_apply(customer=customer, now=moment)
    finally:  # back to running time, in step with the demo's `now`
        clock.stop()
        sim.set_clock(offset_seconds=(now - dt.datetime.now(dt.UTC)).total_seconds())
    customer.refresh_from_db()
    _report(customer, stdout)
