"""The customer's open period as its invoice would read now (`usage_current_for_customer`):
the invoice engine's preview (nothing is written) and the traffic each sub-account has left.
A service-side read: it runs the engine, so it lives here and not among the selectors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import OuterRef, Q, Subquery

from accounts.models import Customer, SubAccount
from billing.models import Subscription
from usage.models import LedgerSnapshot


@dataclass(frozen=True)
class CurrentLine:
    kind: str
    description: str
    quantity: Decimal | None
    unit: str
    unit_price: Decimal | None
    amount: Decimal


@dataclass(frozen=True)
class CurrentSubscription:
    """One subscription's period-to-date usage and the charge rated from it."""

    subscription_id: int
    plan_code: str
    plan_name: str
    active_start: dt.date
    active_end: dt.date
    unit_bytes: int
    usage_bytes: int
    estimated_charge: Decimal
    lines: tuple[CurrentLine, ...]

    @property
    def usage_gb(self) -> Decimal:
        return Decimal(self.usage_bytes) / Decimal(self.unit_bytes)


@dataclass(frozen=True)
class CurrentSubAccount:
    """One sub-account's period-to-date bytes and, where the upstream reports it, the traffic
    it has left (BytesFlows ledger snapshots; None for IPFoxy)."""

    sub_account_id: int
    label: str
    upstream_id: str
    usage_bytes: int
    remaining_bytes: int | None
    total_bytes: int | None
    remaining_as_of: dt.datetime | None


@dataclass(frozen=True)
class CurrentUsage:
    """The customer's open period: what its invoice would say with the usage stored so far."""

    timezone: str
    period_start: dt.date
    period_end: dt.date
    as_of: dt.datetime
    currency: str
    subscriptions: tuple[CurrentSubscription, ...]
    sub_accounts: tuple[CurrentSubAccount, ...]
    unbilled_bytes: int
    adjustments: Decimal
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def usage_current_for_customer(*, customer: Customer, now: dt.datetime) -> CurrentUsage:
    """Period-to-date usage of the customer's current month (reseller's timezone), rated by
    the invoice engine (`invoice_preview`: nothing is written), and remaining upstream
    traffic per sub-account where the provider reports it.

    The estimate is the invoice of the open month as it would read if no more usage came:
    base fees and minimums for the subscriptions' active days of the whole month, usage so
    far, and adjustments of earlier months that the next invoice would carry.
    """
    from billing.invoicing.compute import invoice_preview
    from billing.invoicing.periods import period_containing

    reseller = customer.reseller
    period = period_containing(tz=reseller.tzinfo, now=now)
    computation = invoice_preview(customer=customer, period_start=period.start)
    subscriptions = Subscription.objects.filter(
        customer=customer, pk__in=[int(key) for key in computation.subscriptions]
    ).select_related("plan")
    subscriptions = {s.pk: s for s in subscriptions}
    current_subscriptions = []
    for key, frozen in computation.subscriptions.items():
        subscription = subscriptions[int(key)]
        lines = [
            line
            for line in computation.lines
            if line.subscription_id == subscription.pk and line.adjusts_invoice_id is None
        ]
        current_subscriptions.append(
            CurrentSubscription(
                subscription_id=subscription.pk,
                plan_code=subscription.plan.code,
                plan_name=subscription.plan.name,
                active_start=dt.date.fromisoformat(frozen["active_start"]),
                active_end=dt.date.fromisoformat(frozen["active_end"]),
                unit_bytes=int(frozen["terms"]["unit_bytes"]),
                usage_bytes=int(frozen["usage_bytes"]),
                estimated_charge=sum((line.amount for line in lines), Decimal(0)),
                lines=tuple(
                    CurrentLine(
                        kind=line.kind,
                        description=line.description,
                        quantity=line.quantity,
                        unit=line.unit,
                        unit_price=line.unit_price,
                        amount=line.amount,
                    )
                    for line in lines
                ),
            )
        )
    usage_by_sub_account: dict[int, int] = {}
    unbilled = 0
    for row in computation.usage:
        usage_by_sub_account[row.sub_account_id] = (
            usage_by_sub_account.get(row.sub_account_id, 0) + row.bytes
        )
        if row.subscription_id is None:
            unbilled += row.bytes
    sub_accounts = list(
        SubAccount.objects.for_reseller(reseller)
        .filter(Q(customer=customer) | Q(pk__in=list(usage_by_sub_account)))
        .only("pk", "customer_id", "label", "upstream_id")
        .annotate(
            latest_snapshot_id=Subquery(
                LedgerSnapshot.objects.filter(sub_account_id=OuterRef("pk"))
                .order_by("-taken_at")
                .values("pk")[:1]
            )
        )
        .order_by("pk")
    )
    snapshots = LedgerSnapshot.objects.for_reseller(reseller).in_bulk(
        [sa.latest_snapshot_id for sa in sub_accounts if sa.latest_snapshot_id is not None]
    )
    current_sub_accounts = []
    for sa in sub_accounts:
        # Upstream traffic left is the current holder's business only (not a former one's).
        snapshot = snapshots.get(sa.latest_snapshot_id) if sa.customer_id == customer.pk else None
        current_sub_accounts.append(
            CurrentSubAccount(
                sub_account_id=sa.pk,
                label=sa.label,
                upstream_id=sa.upstream_id,
                usage_bytes=usage_by_sub_account.get(sa.pk, 0),
                remaining_bytes=snapshot.available_traffic if snapshot else None,
                total_bytes=snapshot.total_traffic if snapshot else None,
                remaining_as_of=snapshot.taken_at if snapshot else None,
            )
        )
    return CurrentUsage(
        timezone=reseller.timezone,
        period_start=period.start,
        period_end=period.end,
        as_of=now,
        currency=computation.currency,
        subscriptions=tuple(current_subscriptions),
        sub_accounts=tuple(current_sub_accounts),
        unbilled_bytes=unbilled,
        adjustments=sum(
            (line.amount for line in computation.lines if line.adjusts_invoice_id is not None),
            Decimal(0),
        ),
        subtotal=computation.totals.subtotal,
        tax=computation.totals.tax,
        total=computation.totals.total,
    )
