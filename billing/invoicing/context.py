"""Rating inputs of many customers of one reseller and period, read in a few queries.

Rating one customer needs its sub-accounts (those it held before a move too), its
subscriptions (with plan and tiers), its usage per active window (the days it held each
sub-account) and, for late-usage adjustments, what its issued invoices billed. Read one
customer at a time that is a dozen queries per invoice; closing a month for thousands of
customers reads them per chunk of customers instead (`RatingContext(customers=chunk, ...)`):
one query per kind of row for the whole chunk, the usage once per distinct day window.
`invoice_compute` without a context builds one for the single customer, so both paths share
every line of the rating.

Reads are lazy: a context created after the chunk's customer rows are locked reads
everything under those locks, like the one-customer path does.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Q

from accounts.models import Customer, SubAccount
from accounts.selectors import held_totals, sub_accounts_held
from billing.invoicing.periods import Period
from billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, Plan, Subscription
from billing.plans.terms import plan_terms
from billing.rating import PlanTerms
from usage.models import UsageDay

#: Customers per chunk (and per transaction where a chunk is written at once): big enough that
#: the per-chunk reads pay off, small enough that locks are held for a fraction of a second.
CHUNK_SIZE = 100
#: How far back late usage is looked for (upstreams revise usage for days, not months).
ADJUSTMENT_LOOKBACK_DAYS = 190
ISSUED = [InvoiceStatus.FINALIZED, InvoiceStatus.PAID]


@dataclass
class BilledHistory:
    """What a customer's issued invoices of the lookback window billed (for adjustments)."""

    issued: list[Invoice] = field(default_factory=list)  # oldest period first
    # (invoice id, subscription id) -> amounts of the invoice's own (non-adjustment) lines
    billed_lines: dict[tuple[int, int | None], list[Decimal]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # (adjusted invoice id, subscription id) -> adjustment lines on issued invoices, in order
    adjustments: dict[tuple[int, int | None], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )


class RatingContext:
    """Sub-accounts, subscriptions, usage and billed history of `customers` for `period`."""

    def __init__(self, *, customers: Sequence[Customer], period: Period) -> None:
        self.period = period
        self._customers = list({c.pk: c for c in customers}.values())
        self._sub_accounts: dict[int, list[SubAccount]] | None = None
        self._subscriptions: dict[int, list[Subscription]] | None = None
        self._usage: dict[tuple[dt.date, dt.date], dict[int, dict[int, int]]] = {}
        self._terms: dict[int, PlanTerms] = {}
        self._history: dict[int, BilledHistory] | None = None
        self._frozen_subscriptions: dict[int, Subscription] = {}
        self._voided: dict[int, int] | None = None

    # -- the rated period ------------------------------------------------------------------

    def sub_accounts(self, customer_id: int) -> list[SubAccount]:
        """The sub-accounts the customer holds or held before a move, in id order (never
        their credentials); `usage` says which of their days were its own."""
        if self._sub_accounts is None:
            self._sub_accounts = sub_accounts_held(customers=self._customers)
        return self._sub_accounts.get(customer_id, [])

    def subscriptions(self, customer_id: int) -> list[Subscription]:
        """The customer's subscriptions covering any day of the period, oldest first."""
        if self._subscriptions is None:
            rows = (
                Subscription.objects.filter(
                    customer__in=self._customers, starts_on__lt=self.period.end
                )
                .filter(Q(ends_on__isnull=True) | Q(ends_on__gt=self.period.start))
                .select_related("plan", "upstream_account")
                .defer("upstream_account__credentials")  # never decrypt secrets to bill
                .prefetch_related("plan__tiers")
                .order_by("customer_id", "starts_on", "pk")
            )
            self._subscriptions = defaultdict(list)
            for subscription in rows:
                self._subscriptions[subscription.customer_id].append(subscription)
        return self._subscriptions.get(customer_id, [])

    def terms(self, plan: Plan) -> PlanTerms:
        """Rating terms of a plan, built once per plan."""
        if plan.pk not in self._terms:
            self._terms[plan.pk] = plan_terms(plan=plan)
        return self._terms[plan.pk]

    def usage(self, customer_id: int, start: dt.date, end: dt.date) -> dict[int, int]:
        """Bytes per sub-account id of the customer over the local days `[start, end)`: the
        days on which it held each sub-account (`accounts.selectors.held_totals`)."""
        key = (start, end)
        if key not in self._usage:
            self._usage[key] = held_totals(
                UsageDay.objects.filter(day__gte=start, day__lt=end), customers=self._customers
            )
        return self._usage[key].get(customer_id, {})

    def voided_invoice(self, customer_id: int) -> int | None:
        """The id of the customer's latest voided invoice of the period: the one a new
        invoice of the period replaces (read once for the chunk)."""
        if self._voided is None:
            self._voided = voided_invoices(self._customers, self.period)
        return self._voided.get(customer_id)

    # -- issued periods (late usage) ---------------------------------------------------------

    def history(self, customer_id: int) -> BilledHistory:
        """Issued invoices of the lookback window before the period, and what they billed."""
        if self._history is None:
            self._history = self._load_history()
        return self._history.get(customer_id) or BilledHistory()

    def frozen_subscription(self, pk: int) -> Subscription | None:
        """A subscription named in an issued invoice's snapshot (None if deleted)."""
        return self._frozen_subscriptions.get(pk)

    def _load_history(self) -> dict[int, BilledHistory]:
        before = self.period.start
        issued = list(
            Invoice.objects.filter(
                customer__in=self._customers,
                kind=InvoiceKind.PERIOD,
                status__in=ISSUED,
                period_start__lt=before,
                period_start__gte=before - dt.timedelta(days=ADJUSTMENT_LOOKBACK_DAYS),
            ).order_by("customer_id", "period_start")
        )
        history: dict[int, BilledHistory] = {}
        if not issued:
            return history
        by_invoice: dict[int, BilledHistory] = {}
        for invoice in issued:
            entry = history.setdefault(invoice.customer_id, BilledHistory())
            entry.issued.append(invoice)
            by_invoice[invoice.pk] = entry
        for line in (
            InvoiceLine.objects.filter(invoice__in=issued)
            .exclude(kind=InvoiceLine.Kind.ADJUSTMENT)
            .values_list("invoice_id", "subscription_id", "amount")
            .order_by()
        ):
            by_invoice[line[0]].billed_lines[(line[0], line[1])].append(line[2])
        for line in (
            InvoiceLine.objects.filter(
                kind=InvoiceLine.Kind.ADJUSTMENT,
                adjusts_invoice__in=issued,
                invoice__status__in=ISSUED,
            )
            .order_by("invoice__finalized_at", "invoice_id", "position")
            .values("invoice_id", "adjusts_invoice_id", "subscription_id", "amount", "details")
        ):
            key = (line["adjusts_invoice_id"], line["subscription_id"])
            by_invoice[line["adjusts_invoice_id"]].adjustments[key].append(line)
        frozen_ids = {
            int(key)
            for invoice in issued
            for key in (invoice.snapshot or {}).get("subscriptions", {})
        }
        self._frozen_subscriptions = {
            s.pk: s
            for s in Subscription.objects.filter(
                customer__in=self._customers, pk__in=frozen_ids
            ).only("pk", "upstream_account_id")
        }
        return history


def voided_invoices(customers: Sequence[Customer], period: Period) -> dict[int, int]:
    """The customers' latest voided invoice of the period, by customer id (one query)."""
    rows = (
        Invoice.objects.filter(
            customer__in=list(customers),
            period_start=period.start,
            kind=InvoiceKind.PERIOD,
            status=InvoiceStatus.VOID,
        )
        .order_by("customer_id", "voided_at", "pk")
        .values_list("customer_id", "pk")
    )
    return dict(rows)  # rows in void order: each customer's latest void is the last one
