"""This period so far: traffic sold, estimated revenue, upstream cost and margin.

- Traffic sold: the `UsageDay` bytes of the customer's sub-accounts over the period's days
  so far (the reseller's calendar month), whatever subscription covers them.
- Estimated revenue: the billing engine's own preview of the customer's invoice for the
  period (`invoice_compute`, what `billing.invoicing.compute.invoice_preview` returns, with the
  engine's batched `RatingContext` per chunk of customers): what the invoice would say if
  the month closed now (the month's base fee and minimum, usage so far). Net of tax, and without
  adjustment lines (those correct earlier months, not this one's traffic).
- Upstream cost: see `billing.dashboard.units`.
- Margin: revenue - cost, for customers billed in the reseller's currency (upstream cost is
  in that currency; customers billed in another currency are listed with their revenue in
  it and left out of the totals and margins).

Per upstream account, a subscription's revenue is split over the upstream accounts in
proportion to its billed bytes on each (to the minor unit, largest remainder, so the parts
add up to the whole); a subscription scoped to one upstream account with no traffic
belongs to it; base fees of all-upstream subscriptions without traffic are "not tied to an
upstream account".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, localcontext

from accounts.models import Customer, Reseller, SubAccount, UpstreamAccount
from billing.costs import upstream_cost
from billing.dashboard.units import gb_text, money_text, percent_text
from billing.invoicing.compute import invoice_compute
from billing.invoicing.context import RatingContext
from billing.invoicing.periods import Period, period_containing
from billing.models import InvoiceLine, Subscription
from billing.money import currency_exponent
from billing.selectors import customers_to_invoice
from core.errors import ApplicationError
from usage.selectors import usage_bytes_by_sub_account

ZERO = Decimal(0)
RATING_CHUNK = 500


class _FigureTexts:
    """How a row of figures prints: revenue in `currency`, cost and margin in
    `cost_currency` (the reseller's)."""

    @property
    def margin(self) -> Decimal | None:
        return self.revenue - self.cost

    @property
    def traffic_text(self) -> str:
        return gb_text(self.traffic_bytes)

    @property
    def revenue_text(self) -> str:
        return money_text(self.revenue, self.currency)

    @property
    def cost_text(self) -> str:
        return money_text(self.cost, self.cost_currency)

    @property
    def margin_text(self) -> str:
        return money_text(self.margin, self.cost_currency)

    @property
    def margin_percent_text(self) -> str:
        return percent_text(self.margin, self.revenue)


@dataclass
class CustomerFigures(_FigureTexts):
    customer_id: int
    name: str
    currency: str  # the customer's billing currency (revenue)
    cost_currency: str  # the reseller's currency (upstream cost)
    traffic_bytes: int = 0
    revenue: Decimal | None = None  # None: the engine could not rate (see `error`)
    cost: Decimal = ZERO
    error: str = ""

    @property
    def comparable(self) -> bool:
        return self.revenue is not None and self.currency == self.cost_currency

    @property
    def margin(self) -> Decimal | None:
        return self.revenue - self.cost if self.comparable else None


@dataclass
class UpstreamFigures(_FigureTexts):
    upstream_account_id: int
    name: str
    provider: str
    cost_per_gb: Decimal
    currency: str
    traffic_bytes: int = 0
    revenue: Decimal = ZERO
    cost: Decimal = ZERO

    @property
    def cost_currency(self) -> str:
        return self.currency

    @property
    def cost_per_gb_text(self) -> str:
        """$0.80, or every decimal of a finer price (0.0035 USD)."""
        price = self.cost_per_gb.normalize()
        if price.as_tuple().exponent >= -2:
            return money_text(price, self.currency)
        return f"{price:f} {self.currency}"


@dataclass
class PeriodFigures(_FigureTexts):
    period: Period
    today: dt.date
    currency: str
    customers: list[CustomerFigures]
    upstreams: list[UpstreamFigures]
    unallocated_revenue: Decimal = ZERO
    other_currency_revenue: dict[str, Decimal] = field(default_factory=dict)

    @property
    def day_of_period(self) -> int:
        return min((self.today - self.period.start).days + 1, self.period.days)

    @property
    def traffic_bytes(self) -> int:
        return sum(c.traffic_bytes for c in self.customers)

    @property
    def revenue(self) -> Decimal:
        return sum((c.revenue for c in self.customers if c.comparable), ZERO)

    @property
    def cost(self) -> Decimal:
        """Of the customers billed in the reseller's currency, like `revenue`: a customer
        billed in another currency has no revenue here, so its cost is not set against it."""
        return sum((c.cost for c in self.customers if c.comparable), ZERO)

    @property
    def cost_currency(self) -> str:
        return self.currency

    @property
    def unallocated_revenue_text(self) -> str:
        return money_text(self.unallocated_revenue, self.currency)

    @property
    def other_currency_texts(self) -> list[str]:
        return [money_text(v, c) for c, v in sorted(self.other_currency_revenue.items())]

    @property
    def rating_errors(self) -> list[CustomerFigures]:
        return [c for c in self.customers if c.error]


def allocate(amount: Decimal, weights: dict[int, int], currency: str) -> dict[int, Decimal]:
    """Split a rounded `amount` over `weights` to the currency's minor unit (largest
    remainder): the parts always add up to `amount` exactly."""
    total = sum(weights.values())
    if not weights or total <= 0:
        return {}
    unit = Decimal(1).scaleb(-currency_exponent(currency))
    sign = -1 if amount < 0 else 1
    units = int((abs(amount) / unit).to_integral_value())
    shares: dict[int, int] = {}
    remainders = []
    with localcontext(prec=100):
        for key, weight in weights.items():
            exact = Decimal(units) * weight / total
            whole = int(exact.to_integral_value(rounding=ROUND_FLOOR))
            shares[key] = whole
            remainders.append((exact - whole, weight, key))
    left = units - sum(shares.values())
    for _, _, key in sorted(remainders, key=lambda r: (r[0], r[1]), reverse=True)[:left]:
        shares[key] += 1
    return {key: sign * n * unit for key, n in shares.items()}


def dashboard_period_figures(*, reseller: Reseller, now: dt.datetime) -> PeriodFigures:
    """The reseller's current period so far, per customer and per upstream account."""
    tz = reseller.tzinfo
    period = period_containing(tz=tz, now=now)
    currency = reseller.currency
    upstreams = {
        u.pk: u
        for u in UpstreamAccount.objects.for_reseller(reseller)
        .defer("credentials")
        .order_by("name", "pk")
    }
    sub_map = {
        pk: (customer_id, upstream_id)
        for pk, customer_id, upstream_id in SubAccount.objects.for_reseller(reseller).values_list(
            "pk", "customer_id", "upstream_account_id"
        )
    }
    bytes_by_sub = usage_bytes_by_sub_account(
        reseller=reseller, start_day=period.start, end_day=period.end
    )
    cells: dict[tuple[int, int], int] = defaultdict(int)  # (customer, upstream) -> bytes
    for sub_id, nbytes in bytes_by_sub.items():
        customer_id, upstream_id = sub_map[sub_id]
        cells[(customer_id, upstream_id)] += nbytes

    up_figures = {
        pk: UpstreamFigures(
            upstream_account_id=pk,
            name=u.name,
            provider=u.get_provider_display(),
            cost_per_gb=u.cost_per_gb,
            currency=currency,
        )
        for pk, u in upstreams.items()
    }
    ids = {customer_id for customer_id, _ in cells} | set(
        customers_to_invoice(
            reseller=reseller, start_day=period.start, end_day=period.end
        ).values_list("pk", flat=True)
    )
    by_pk = {
        c.pk: c
        for c in Customer.objects.for_reseller(reseller)
        .filter(pk__in=ids)
        .select_related("reseller")
    }
    customers = {
        pk: CustomerFigures(
            customer_id=pk,
            name=c.name,
            currency=c.currency,
            cost_currency=currency,
        )
        for pk, c in by_pk.items()
    }
    for (customer_id, upstream_id), nbytes in cells.items():
        cost = upstream_cost(nbytes=nbytes, upstream=upstreams[upstream_id], currency=currency)
        customers[customer_id].traffic_bytes += nbytes
        customers[customer_id].cost += cost
        up_figures[upstream_id].traffic_bytes += nbytes
        up_figures[upstream_id].cost += cost

    figures = PeriodFigures(
        period=period,
        today=now.astimezone(tz).date(),
        currency=currency,
        customers=[],
        upstreams=[],
    )
    scopes = dict(
        Subscription.objects.for_reseller(reseller).values_list("pk", "upstream_account_id")
    )
    ordered = [by_pk[pk] for pk in sorted(customers)]
    for index, customer in enumerate(ordered):
        if index % RATING_CHUNK == 0:
            # The engine's batched reads: a few queries per chunk instead of a dozen each.
            context = RatingContext(customers=ordered[index : index + RATING_CHUNK], period=period)
        row = customers[customer.pk]
        try:
            computation = invoice_compute(customer=customer, period=period, context=context)
        except ApplicationError as exc:
            row.error = exc.message
            continue
        lines = [line for line in computation.lines if line.kind != InvoiceLine.Kind.ADJUSTMENT]
        row.revenue = sum((line.amount for line in lines), ZERO)
        if not row.comparable:
            figures.other_currency_revenue[row.currency] = (
                figures.other_currency_revenue.get(row.currency, ZERO) + row.revenue
            )
            continue
        per_subscription: dict[int | None, Decimal] = defaultdict(lambda: ZERO)
        for line in lines:
            per_subscription[line.subscription_id] += line.amount
        for subscription_id, amount in per_subscription.items():
            weights: dict[int, int] = defaultdict(int)
            for usage in computation.usage:
                if usage.subscription_id == subscription_id and subscription_id is not None:
                    weights[sub_map[usage.sub_account_id][1]] += usage.bytes
            scope = scopes.get(subscription_id)
            if not weights and scope is not None:
                weights[scope] = 1
            parts = allocate(amount, dict(weights), currency)
            if not parts:
                figures.unallocated_revenue += amount
            for upstream_id, part in parts.items():
                up_figures[upstream_id].revenue += part

    figures.customers = sorted(
        customers.values(),
        key=lambda c: (-(c.revenue or ZERO) if c.comparable else ZERO, -c.traffic_bytes, c.name),
    )
    figures.upstreams = sorted(
        up_figures.values(), key=lambda u: (-u.revenue, -u.traffic_bytes, u.name)
    )
    return figures
