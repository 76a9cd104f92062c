"""Reads of the accounts domain that the apps above share: who held a sub-account on a day,
and which sub-accounts are still synced.

Usage of a day is billed to whoever held the sub-account that day (days in the reseller's
timezone): its current customer from `active_from` through `active_to`, or an earlier holder
(`SubAccountAssignment`) over `[starts_on, ends_on)`. `holder_filters` gives those two rules
as ORM conditions for any model with a sub-account and a local day (`UsageDay`): a caller
runs one grouped query per rule and adds the two results up, each a plain join with day
range conditions (one query with an OR across both would repeat rows through the join).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import F, Q, QuerySet, Sum

from accounts.models import Customer, SubAccount, SubAccountAssignment


@dataclass(frozen=True)
class HolderFilter:
    """Rows whose day the holding customer held the sub-account: `condition` selects them,
    `holder` is the ORM path of that customer's id (for `values()`)."""

    condition: Q
    holder: str


def holder_filters(
    *,
    customers: Iterable[Customer] | None = None,
    sub_account: str = "sub_account",
    day: str = "day",
) -> tuple[HolderFilter, HolderFilter]:
    """The current-holder and the earlier-holder rule for rows reaching a sub-account through
    `sub_account` and dated by the local `day` field; narrowed to `customers` (fetched
    customers, scoped where they were fetched) when given. Use each `condition` in one
    `filter()` call (its join to the assignments is shared)."""
    held_by = None if customers is None else list(customers)
    held = f"{sub_account}__assignments"

    def on_or_after(path: str) -> Q:  # an empty start: since the first usage
        return Q(**{f"{path}__isnull": True}) | Q(**{f"{path}__lte": F(day)})

    current = on_or_after(f"{sub_account}__active_from") & (
        Q(**{f"{sub_account}__active_to__isnull": True})
        | Q(**{f"{sub_account}__active_to__gte": F(day)})
    )
    earlier = on_or_after(f"{held}__starts_on") & Q(**{f"{held}__ends_on__gt": F(day)})
    if held_by is not None:
        current &= Q(**{f"{sub_account}__customer__in": held_by})
        earlier &= Q(**{f"{held}__customer__in": held_by})
    return (
        HolderFilter(condition=current, holder=f"{sub_account}__customer_id"),
        HolderFilter(condition=earlier, holder=f"{held}__customer_id"),
    )


def held_totals(
    queryset: QuerySet, *, customers: Iterable[Customer] | None = None, value: str = "bytes"
) -> dict[int, dict[int, int]]:
    """`{customer id: {sub-account id: sum of value}}` over `queryset` (rows with
    `sub_account` and `day`), each row counted for the customer that held its sub-account on
    its day. Two grouped queries."""
    totals: dict[int, dict[int, int]] = {}
    for rule in holder_filters(customers=customers):
        rows = (
            queryset.filter(rule.condition)
            .values_list(rule.holder, "sub_account_id")
            .annotate(total=Sum(value))
            .order_by()
        )
        for customer_id, sub_account_id, total in rows:
            per_sub = totals.setdefault(customer_id, {})
            per_sub[sub_account_id] = per_sub.get(sub_account_id, 0) + int(total or 0)
    return totals


def held_customers_q(queryset: QuerySet) -> Q:
    """A condition on `Customer`: it held the sub-account of some row of `queryset` (rows
    with `sub_account` and `day`) on that row's day. Subqueries: nothing is read here."""
    condition = Q(pk__in=[])
    for rule in holder_filters():
        condition |= Q(pk__in=queryset.filter(rule.condition).values(rule.holder))
    return condition


def sub_accounts_held(*, customers: Iterable[Customer]) -> dict[int, list[SubAccount]]:
    """Per customer (fetched customers, or a scoped queryset of them), the sub-accounts it
    holds now or held before, in id order (never their credentials), with their upstream
    account's name."""
    customers = list(customers)
    ids = {customer.pk for customer in customers}
    earlier = SubAccountAssignment.objects.filter(customer__in=customers)
    pairs = set(earlier.values_list("customer_id", "sub_account_id"))
    rows = (
        SubAccount.objects.filter(
            Q(customer__in=customers) | Q(pk__in=earlier.values("sub_account_id"))
        )
        .select_related("upstream_account")
        .only(
            "pk",
            "customer_id",
            "label",
            "upstream_id",
            "upstream_account_id",
            "upstream_account__name",
        )
        .order_by("pk")
    )
    by_id = {sa.pk: sa for sa in rows}
    pairs |= {(sa.customer_id, sa.pk) for sa in by_id.values() if sa.customer_id in ids}
    held: dict[int, list[SubAccount]] = {}
    for customer_id, sub_account_id in sorted(pairs, key=lambda pair: pair[1]):
        held.setdefault(customer_id, []).append(by_id[sub_account_id])
    return held


def sub_account_holder_ids(*, sub_account: SubAccount, since: dt.date | None = None) -> list[int]:
    """The customers that held `sub_account` on `since` or later (any day when None): the
    current holder first, then earlier ones by their end. (Asked after every sync that
    wrote usage: one constant statement, not an ORM query compiled each time.)"""
    table = connection.ops.quote_name(SubAccountAssignment._meta.db_table)
    sql = f"SELECT customer_id FROM {table} WHERE sub_account_id = %s"  # noqa: S608
    params: list = [sub_account.pk]
    if since is not None:
        sql += " AND ends_on > %s"
        params.append(connection.ops.adapt_datefield_value(since))
    ids = [sub_account.customer_id]
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY ends_on", params)
        for (customer_id,) in cursor.fetchall():
            if customer_id not in ids:
                ids.append(customer_id)
    return ids


@dataclass(frozen=True)
class HoldingPeriod:
    """One customer's period `[starts_on, ends_on)`; `starts_on` None: since its first
    usage, `ends_on` None: open (the current holder of a sub-account not closed)."""

    customer_id: int
    starts_on: dt.date | None
    ends_on: dt.date | None
    current: bool


def sub_account_periods(*, sub_account: SubAccount) -> list[HoldingPeriod]:
    """Every holder of `sub_account`, oldest first; the last one is the current holder."""
    earlier = SubAccountAssignment.objects.filter(sub_account=sub_account)
    periods = [
        HoldingPeriod(
            customer_id=row.customer_id, starts_on=row.starts_on, ends_on=row.ends_on, current=False
        )
        for row in earlier.order_by("ends_on")
    ]
    last_day = sub_account.active_to
    periods.append(
        HoldingPeriod(
            customer_id=sub_account.customer_id,
            starts_on=sub_account.active_from,
            ends_on=None if last_day is None else last_day + dt.timedelta(days=1),
            current=True,
        )
    )
    return periods


# --- sync ------------------------------------------------------------------------------------


def sub_account_synced_until(*, sub_account: SubAccount) -> dt.datetime | None:
    """When a closed sub-account's last day ends (midnight after `active_to` in its reseller's
    timezone): its usage is synced up to then, never after. None while it is not closed."""
    if sub_account.status != SubAccount.Status.CLOSED or sub_account.active_to is None:
        return None
    tz = sub_account.upstream_account.reseller.tzinfo  # the customer's reseller too
    return dt.datetime.combine(sub_account.active_to + dt.timedelta(days=1), dt.time(), tzinfo=tz)


def sub_accounts_syncable(queryset: QuerySet[SubAccount], *, start: dt.datetime) -> QuerySet:
    """`queryset` narrowed to the sub-accounts whose usage from `start` on is still synced:
    the active ones, and the closed ones whose last day ends after `start` (so late revisions
    of their last days still arrive); suspended ones are not synced. One extra query finds the
    timezones of the recently closed (a last day ends at midnight in its reseller's zone)."""
    active = Q(status=SubAccount.Status.ACTIVE)
    loose = (start - dt.timedelta(days=2)).date()  # no timezone is two days off UTC
    zones = (
        queryset.filter(status=SubAccount.Status.CLOSED, active_to__gte=loose)
        .values_list("customer__reseller__timezone", flat=True)
        .distinct()
        .order_by()
    )
    closed = Q(pk__in=[])
    for zone in set(zones):
        first_day = start.astimezone(ZoneInfo(zone)).date()
        closed |= Q(customer__reseller__timezone=zone, active_to__gte=first_day)
    return queryset.filter(active | (Q(status=SubAccount.Status.CLOSED) & closed))
