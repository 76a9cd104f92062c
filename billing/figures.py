"""The money figures a reseller sees, per currency: one selector for dashboard, API and exports.

Per service month (invoices whose `period_start` is the month's first day) and currency:

- `invoiced_net`, `invoiced_tax`, `invoiced_gross`: the issued invoices (finalized or paid;
  drafts are not documents yet, void ones count for nothing);
- `draft_net`: drafts of the month not issued yet (a closed month in its grace period);
- `credited_net`, `credited_tax`, `credited_gross`: the credit notes on those invoices;
- `revenue` = invoiced net + draft net - credited net (before tax: tax is not revenue);
- `paid`: payments minus refunds on those invoices (the part of a payment put on the
  customer's balance is not counted: it paid no invoice);
- `balance_applied`: the customer balance those invoices used (after tax);
- `balance_due`: what is still owed on them (`invoices_with_credit_totals`, the one
  definition of an amount due: total - balance applied - credited - paid, never below 0,
  0 once paid);
- `cost`: the upstream cost of the traffic of the customers billed in this currency, when it
  is the reseller's currency (upstream cost is in the reseller's currency; a customer billed
  in another currency has no comparable cost, so `cost` and `margin` are None there);
- `margin` = revenue - cost.

Receivables (`receivables_by_currency`), as of now: the balance due on issued invoices, the
part of it that is overdue (`billing.overdue_suspension.overdue_cutoff`), and the customer
balances held (credit the reseller owes its customers: overpayments, credit notes on settled
invoices, top-ups, adjustments; `billing.balance`), per currency.

Never a sum across currencies: every figure is keyed by its currency. The CSV export's
invoice totals (`billing.exports`), the dashboard's "Money by currency" panel and trend chart,
and `GET /api/v1/reseller/figures/` all read these functions; the PDF's amount due is the
same `invoices_with_credit_totals` figure for one invoice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Sum

from accounts.models import Customer, Reseller, SubAccount, UpstreamAccount
from billing.balance.models import BalanceEntry
from billing.costs import upstream_cost
from billing.credit_notes.models import CreditNote
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.models import Invoice, InvoiceKind, InvoiceStatus
from billing.money import format_money, quantize_money
from billing.overdue_suspension import overdue_cutoff
from billing.payments.models import Payment, Refund
from usage.selectors import usage_monthly_totals

ZERO = Decimal(0)
ISSUED = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)


MONTH_AMOUNTS = (
    "invoiced_net",
    "invoiced_tax",
    "invoiced_gross",
    "draft_net",
    "credited_net",
    "credited_tax",
    "credited_gross",
    "revenue",
    "paid",
    "balance_applied",
    "balance_due",
    "cost",
    "margin",
)


def _texts(figures, names) -> dict[str, str]:
    """Each amount as the dashboard prints it ("-" where there is none)."""
    values = {name: getattr(figures, name) for name in names}
    return {
        name: "-" if value is None else format_money(value, figures.currency)
        for name, value in values.items()
    }


@dataclass(frozen=True)
class CurrencyMonth:
    period_start: dt.date
    currency: str
    invoice_count: int = 0
    invoiced_net: Decimal = ZERO
    invoiced_tax: Decimal = ZERO
    invoiced_gross: Decimal = ZERO
    draft_net: Decimal = ZERO
    credited_net: Decimal = ZERO
    credited_tax: Decimal = ZERO
    credited_gross: Decimal = ZERO
    paid: Decimal = ZERO
    balance_applied: Decimal = ZERO
    balance_due: Decimal = ZERO
    cost: Decimal | None = None

    @property
    def revenue(self) -> Decimal:
        return self.invoiced_net + self.draft_net - self.credited_net

    @property
    def margin(self) -> Decimal | None:
        return None if self.cost is None else self.revenue - self.cost

    @property
    def texts(self) -> dict[str, str]:
        return _texts(self, MONTH_AMOUNTS)


@dataclass(frozen=True)
class CurrencyReceivables:
    currency: str
    open_count: int = 0
    balance_due: Decimal = ZERO
    overdue_count: int = 0
    overdue: Decimal = ZERO
    customer_balances: Decimal = ZERO

    @property
    def not_yet_due(self) -> Decimal:
        return self.balance_due - self.overdue

    @property
    def texts(self) -> dict[str, str]:
        return _texts(self, ("balance_due", "not_yet_due", "overdue", "customer_balances"))


def _money(value) -> Decimal:
    return Decimal(value or 0)


def _upstream_cost_by_month(
    *, reseller: Reseller, start: dt.date, end: dt.date
) -> dict[dt.date, Decimal]:
    """Upstream cost of the traffic of customers billed in the reseller's currency, per
    month, rounded per (month, customer, upstream account) cell (`billing.dashboard.units`)."""
    currency = reseller.currency
    same_currency = set(
        Customer.objects.for_reseller(reseller)
        .filter(currency=currency)
        .values_list("pk", flat=True)
    )
    upstreams = {
        u.pk: u for u in UpstreamAccount.objects.for_reseller(reseller).defer("credentials")
    }
    sub_map = {
        pk: (customer_id, upstream_id)
        for pk, customer_id, upstream_id in SubAccount.objects.for_reseller(reseller).values_list(
            "pk", "customer_id", "upstream_account_id"
        )
    }
    cells: dict[tuple, int] = defaultdict(int)  # (month, customer, upstream) -> bytes
    for sub_id, series in usage_monthly_totals(
        reseller=reseller, start_day=start, end_day=end
    ).items():
        customer_id, upstream_id = sub_map[sub_id]
        if customer_id not in same_currency:
            continue
        for month, nbytes in series:
            cells[(month, customer_id, upstream_id)] += nbytes
    cost: dict[dt.date, Decimal] = defaultdict(Decimal)
    for (month, _, upstream_id), nbytes in cells.items():
        cost[month] += upstream_cost(
            nbytes=nbytes, upstream=upstreams[upstream_id], currency=currency
        )
    return cost


def money_by_month(
    *, reseller: Reseller, start: dt.date, end: dt.date
) -> dict[tuple[dt.date, str], CurrencyMonth]:
    """`(month's first day, currency) -> CurrencyMonth` for the months starting in
    `[start, end)`; a (month, currency) with no invoice, credit note, payment or cost is
    absent, except the reseller's currency in a month with upstream cost."""
    # Top-up invoices are prepayments, not revenue: the month's invoices the balance pays
    # are (their `balance_applied`); top-ups stay in the receivables while unpaid.
    invoices = Invoice.objects.for_reseller(reseller).filter(
        period_start__gte=start, period_start__lt=end, kind=InvoiceKind.PERIOD
    )
    rows: dict[tuple[dt.date, str], dict] = defaultdict(dict)
    key = ("period_start", "currency")
    for row in (
        invoices.filter(status__in=ISSUED)
        .values(*key)
        .annotate(
            n=Count("pk"),
            net=Sum("subtotal"),
            tax=Sum("tax"),
            gross=Sum("total"),
            applied=Sum("balance_applied"),
        )
        .order_by()
    ):
        rows[(row["period_start"], row["currency"])].update(
            invoice_count=row["n"],
            invoiced_net=_money(row["net"]),
            invoiced_tax=_money(row["tax"]),
            invoiced_gross=_money(row["gross"]),
            balance_applied=_money(row["applied"]),
        )
    for row in (
        invoices.filter(status=InvoiceStatus.DRAFT)
        .values(*key)
        .annotate(net=Sum("subtotal"))
        .order_by()
    ):
        rows[(row["period_start"], row["currency"])]["draft_net"] = _money(row["net"])
    issued = invoices.filter(status__in=ISSUED)
    for row in (
        CreditNote.objects.filter(invoice__in=issued)
        .values("invoice__period_start", "invoice__currency")
        .annotate(net=Sum("subtotal"), tax=Sum("tax"), gross=Sum("total"))
        .order_by()
    ):
        rows[(row["invoice__period_start"], row["invoice__currency"])].update(
            credited_net=_money(row["net"]),
            credited_tax=_money(row["tax"]),
            credited_gross=_money(row["gross"]),
        )
    paid: dict[tuple, Decimal] = defaultdict(Decimal)
    for model, prefix, sign in ((Payment, "invoice__", 1), (Refund, "payment__invoice__", -1)):
        for row in (
            model.objects.filter(**{f"{prefix}in": issued})
            .values(f"{prefix}period_start", f"{prefix}currency")
            .annotate(s=Sum("amount"))
            .order_by()
        ):
            paid[(row[f"{prefix}period_start"], row[f"{prefix}currency"])] += sign * _money(
                row["s"]
            )
    for k, amount in paid.items():
        rows[k]["paid"] = amount
    due: dict[tuple, Decimal] = defaultdict(Decimal)
    for period_start, currency, balance_due in invoices_with_credit_totals(
        invoices.filter(status=InvoiceStatus.FINALIZED)
    ).values_list("period_start", "currency", "balance_due"):
        due[(period_start, currency)] += _money(balance_due)
    for k, amount in due.items():
        rows[k]["balance_due"] = amount
    for month, cost in _upstream_cost_by_month(reseller=reseller, start=start, end=end).items():
        rows[(month, reseller.currency)]["cost"] = cost
    for (_month, currency), values in rows.items():
        if currency == reseller.currency:
            values.setdefault("cost", ZERO)
    return {
        (month, currency): CurrencyMonth(
            period_start=month,
            currency=currency,
            **{
                name: quantize_money(value, currency) if isinstance(value, Decimal) else value
                for name, value in values.items()
            },
        )
        for (month, currency), values in sorted(rows.items())
    }


def money_for_month(*, reseller: Reseller, period_start: dt.date) -> list[CurrencyMonth]:
    """One month's `CurrencyMonth` rows, the reseller's currency first, then by code."""
    end = (period_start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    months = money_by_month(reseller=reseller, start=period_start, end=end)
    return sorted(months.values(), key=lambda m: (m.currency != reseller.currency, m.currency))


def receivables_by_currency(*, reseller: Reseller, now: dt.datetime) -> list[CurrencyReceivables]:
    """What customers owe now on issued invoices, per currency, the overdue part, and the
    customer balances held in each currency."""
    cutoff = overdue_cutoff(reseller, now)
    totals: dict[str, dict] = defaultdict(dict)
    for currency, due_on, balance_due in (
        invoices_with_credit_totals(
            Invoice.objects.for_reseller(reseller).filter(status=InvoiceStatus.FINALIZED)
        )
        .filter(balance_due__gt=0)
        .values_list("currency", "due_on", "balance_due")
    ):
        row = totals[currency]
        row["open_count"] = row.get("open_count", 0) + 1
        row["balance_due"] = row.get("balance_due", ZERO) + _money(balance_due)
        if due_on is not None and due_on <= cutoff:
            row["overdue_count"] = row.get("overdue_count", 0) + 1
            row["overdue"] = row.get("overdue", ZERO) + _money(balance_due)
    for currency, held in (
        BalanceEntry.objects.filter(reseller_id=reseller.pk)
        .order_by()
        .values_list("currency")
        .annotate(s=Sum("amount"))
    ):
        if held:
            totals[currency]["customer_balances"] = _money(held)
    return [
        CurrencyReceivables(
            currency=currency,
            **{
                name: quantize_money(value, currency) if isinstance(value, Decimal) else value
                for name, value in values.items()
            },
        )
        for currency, values in sorted(
            totals.items(), key=lambda item: (item[0] != reseller.currency, item[0])
        )
    ]
