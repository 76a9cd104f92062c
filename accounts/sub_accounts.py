"""The life of a sub-account: moved to another customer from a day, closed after its last
day, deleted while nothing of it was ever billed.

Whoever held a sub-account on a day is billed for its usage of that day
(`accounts.selectors.holder_filters`); days are the reseller's local days. The current
holder is the sub-account's `customer`, from `active_from` through `active_to` (its last
day, once closed); each move keeps the previous holder's period as a
`SubAccountAssignment` row. Nothing else changes who holds a sub-account or its dates.

Every change locks the sub-account row, then the customer rows involved in id order with the
lock invoicing takes to issue (`accounts.locks.lock_customers`), so a change and
an invoice finalization never cross: either the invoice is issued first (the change then
sees the day inside an issued period and refuses it) or it is rated with the new holder.
A day inside a period already invoiced (finalized or paid) for a customer that would gain or
lose it is refused: issued invoices never change behind the customer's back.

Invoices live in billing, above accounts: they are asked through reverse relations
(`customer.invoices`, `reseller.invoices`), never imported.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.dispatch import Signal

from accounts.locks import lock_customers
from accounts.models import Customer, Reseller, SubAccount, SubAccountAssignment, UpstreamAccount
from core.errors import ApplicationError

#: billing's InvoiceStatus.FINALIZED and PAID: an issued invoice's period is settled.
ISSUED_INVOICE_STATUSES = ("finalized", "paid")
#: Usage data of a never-used sub-account, deleted with it: reverse names of usage's
#: UsageHour, UsageDay, LedgerSnapshot, LedgerRecordState and UsageAnomaly, each with the
#: condition of a row that holds no usage (a row a sync adds meanwhile with usage is left,
#: and then refuses the delete as `sub_account_in_use`).
USAGE_DATA_RELATIONS = {
    "hours": {"bytes": 0},
    "days": {"bytes": 0},
    "ledger_snapshots": {"usage_bytes": 0},
    "ledger_records": {},
    "anomalies": {},
}

DAY = dt.timedelta(days=1)

#: Sent inside a move's or a close's transaction, the customers' rows locked, with
#: `customers`: those for whom who is billed for which days changed. Billing re-rates their
#: drafts in that transaction (`billing.invoicing.refresh`, connected in its AppConfig), as
#: for a subscription change, so no draft is left rated from the old holders.
sub_account_holders_changed = Signal()


def reseller_today(*, reseller: Reseller, now: dt.datetime) -> dt.date:
    """`now`'s calendar day in the reseller's timezone."""
    return now.astimezone(reseller.tzinfo).date()


def _lock(sub_account: SubAccount) -> SubAccount:
    """Lock the row, then read it with its customer and reseller. Not in one query: a join
    in the locking query would be re-checked against the old customer row after waiting for
    a concurrent move (PostgreSQL's EvalPlanQual), and the moved row would vanish."""
    SubAccount.objects.select_for_update().row_of(sub_account).values_list("pk").get()
    return (
        SubAccount.objects.select_related("customer__reseller", "upstream_account")
        .row_of(sub_account)
        .get()
    )


def _lock_holder_then(sub_account: SubAccount, *others: Customer) -> SubAccount:
    """Lock the holder (and the `others`), then the sub-account: customers before
    sub-accounts, the order suspending takes them (`usage.services.suspension`), so a move or
    a close racing a suspension of the same customer waits instead of deadlocking. When the
    sub-account was moved to another holder while this waited, that holder is locked too and
    the check repeats; a sub-account that keeps moving is a 409 `sub_account_busy`."""
    reseller_id, holder_id = (
        SubAccount.objects.row_of(sub_account)
        .values_list("customer__reseller_id", "customer_id")
        .get()
    )
    customers = Customer.objects.for_reseller(reseller_id)
    lock_customers(customers.filter(pk__in=[holder_id, *(other.pk for other in others)]))
    for _ in range(3):
        locked = _lock(sub_account)
        if locked.customer_id == holder_id:
            return locked
        holder_id = locked.customer_id  # moved meanwhile: its new holder's lock too
        lock_customers(customers.filter(pk=holder_id))
    raise ApplicationError(
        "sub_account_busy", "The sub-account changed holder while this request waited; try again."
    )


def sub_account_check_open(*, sub_account: SubAccount) -> None:
    """`sub_account_closed` (409) when it is closed: a closed sub-account keeps its holder,
    dates and status for the records (its upstream id can be attached again as a new one)."""
    if sub_account.status == SubAccount.Status.CLOSED:
        raise ApplicationError(
            "sub_account_closed",
            f"Sub-account {sub_account} is closed (its last day was {sub_account.active_to}); "
            "it stays as it is. Attach its upstream id again as a new sub-account to use it.",
            extra={"active_to": _iso(sub_account.active_to)},
        )


def _refuse_before_start(sub_account: SubAccount, day: dt.date, what: str) -> None:
    start = sub_account.active_from
    if start is not None and day < start:
        raise ApplicationError(
            "sub_account_day_before_start",
            f"{what} {day} is before {start}, when its current customer's period starts.",
            extra={"starts_on": start.isoformat()},
        )


def _refuse_invoiced(customer: Customer, from_day: dt.date, what: str) -> None:
    """Refuse when `customer` has an issued invoice for a period holding `from_day` or a
    later day (its usage from `from_day` on would move to or from another customer)."""
    invoice = (
        customer.invoices.filter(status__in=ISSUED_INVOICE_STATUSES, period_end__gt=from_day)
        .order_by("-period_end")
        .values("number", "period_start", "period_end")
        .first()
    )
    if invoice is not None:
        raise ApplicationError(
            "sub_account_period_invoiced",
            f"{what}: {customer} has invoice {invoice['number']} issued for "
            f"{invoice['period_start']} to {invoice['period_end'] - DAY}, so its usage from "
            f"{from_day} cannot change hands. Choose {invoice['period_end']} or later.",
            extra={
                "customer": customer.pk,
                "invoice": invoice["number"],
                "first_free_day": invoice["period_end"].isoformat(),
            },
        )


def _save(locked: SubAccount, given: SubAccount, fields: list[str]) -> SubAccount:
    """Save the locked row's `fields`, and carry them over to the caller's instance so it
    does not go on with the old holder or dates."""
    locked.full_clean()
    locked.save(update_fields=fields)
    for name in fields:
        setattr(given, name, getattr(locked, name))
    return locked


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


@transaction.atomic
def sub_account_move(
    *, sub_account: SubAccount, to_customer: Customer, on_day: dt.date, actor: str = ""
) -> SubAccount:
    """Hand `sub_account` to `to_customer` from `on_day` on: its usage of earlier days stays
    with the customer that held it then, and from `on_day` it is billed to `to_customer`.

    Refused: another reseller's customer, or the current one (`ValidationError` on
    `customer`); a closed sub-account (`sub_account_closed`); a day before the current
    holder's period starts (`sub_account_day_before_start`); a day inside a period already
    invoiced for either customer (`sub_account_period_invoiced`). The two customers may
    have different currencies: each is billed for its own days under its own plans. A day
    in the future is fine (the current holder keeps it until then)."""
    locked = _lock_holder_then(sub_account, to_customer)
    sub_account_check_open(sub_account=locked)
    if to_customer.reseller_id != locked.customer.reseller_id:
        raise ValidationError({"customer": "Not a customer of this sub-account's reseller."})
    if to_customer.pk == locked.customer_id:
        raise ValidationError({"customer": f"{to_customer} already holds this sub-account."})
    _refuse_before_start(locked, on_day, "The move's first day")
    _refuse_invoiced(locked.customer, on_day, "Cannot move it away")
    _refuse_invoiced(to_customer, on_day, "Cannot move it in")
    if locked.active_from is None or on_day > locked.active_from:
        SubAccountAssignment.objects.create(
            sub_account=locked,
            customer_id=locked.customer_id,
            starts_on=locked.active_from,
            ends_on=on_day,
            moved_by=actor[:200],
        )
    # else: the current holder's period had not begun, so it held nothing to keep.
    previous = locked.customer
    locked.customer = to_customer
    locked.active_from = on_day
    saved = _save(locked, sub_account, ["customer", "active_from"])
    sub_account_holders_changed.send(SubAccount, customers=[previous, to_customer])
    return saved


@transaction.atomic
def sub_account_close(*, sub_account: SubAccount, on_day: dt.date) -> SubAccount:
    """Close `sub_account` with `on_day` as its last day: its usage through `on_day` is
    billed to the customer holding it, and it is synced until that day ends, never after.
    Its `upstream_id` is free for a new sub-account from the next day on.

    Refused: closed already (`sub_account_closed`); a last day before the current holder's
    period starts (`sub_account_day_before_start`); a last day inside a period already
    invoiced for the holder, whose billed days after it would vanish
    (`sub_account_period_invoiced`). The upstream sub-account itself is left as it is."""
    locked = _lock_holder_then(sub_account)
    sub_account_check_open(sub_account=locked)
    _refuse_before_start(locked, on_day, "The last day")
    _refuse_invoiced(locked.customer, on_day + DAY, "Cannot close it then")
    locked.status = SubAccount.Status.CLOSED
    locked.active_to = on_day
    saved = _save(locked, sub_account, ["status", "active_to"])
    sub_account_holders_changed.send(SubAccount, customers=[locked.customer])
    return saved


@transaction.atomic
def sub_account_delete(*, sub_account: SubAccount) -> None:
    """Delete a sub-account that was never billed (a typo'd `upstream_id`, one attached to the
    wrong customer), with its empty usage rows and its history.

    Refused (409): it is on an invoice, draft or issued (`sub_account_billed`); it has
    usage not yet invoiced, which deleting would lose (`sub_account_has_usage`); other
    records refer to it, e.g. traffic allocated upstream (`sub_account_in_use`). Close it
    instead."""
    locked = _lock(sub_account)
    reseller = locked.customer.reseller
    numbers = sorted(
        {
            number or "draft"
            for relation in ("usage", "lines")
            for number in reseller.invoices.filter(
                **{f"{relation}__sub_account_id": locked.pk}
            ).values_list("number", flat=True)
        }
    )
    if numbers:
        raise ApplicationError(
            "sub_account_billed",
            f"Sub-account {locked} is on invoice {', '.join(numbers)}; close it instead.",
            extra={"invoices": numbers},
        )
    if locked.days.filter(bytes__gt=0).exists() or locked.hours.filter(bytes__gt=0).exists():
        raise ApplicationError(
            "sub_account_has_usage",
            f"Sub-account {locked} has usage not invoiced yet; deleting it would lose that "
            "usage. Close it instead.",
        )
    for relation, empty in USAGE_DATA_RELATIONS.items():
        getattr(locked, relation).filter(**empty).delete()
    try:
        with transaction.atomic():
            locked.delete()
    except ProtectedError as exc:
        kinds = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
        raise ApplicationError(
            "sub_account_in_use",
            f"Sub-account {locked} is referred to by {', '.join(kinds)}; close it instead.",
            extra={"referred_by": kinds},
        ) from exc


def sub_account_first_free_day(
    *, upstream_account: UpstreamAccount, upstream_id: str, exclude_pk: int | None = None
) -> dt.date | None:
    """The first day a new sub-account may use `upstream_id`: the day after the last day of
    the latest closed sub-account with that id (None when there was none). Usage is stored
    per sub-account, so two holders of one upstream id on the same day would both bill it."""
    closed = SubAccount.objects.filter(
        upstream_account=upstream_account,
        upstream_id=upstream_id,
        status=SubAccount.Status.CLOSED,
        active_to__isnull=False,
    )
    if exclude_pk is not None:
        closed = closed.exclude(pk=exclude_pk)
    last = closed.order_by("-active_to").values_list("active_to", flat=True).first()
    return None if last is None else last + DAY


def sub_account_start_check(
    *, upstream_account: UpstreamAccount, upstream_id: str, active_from: dt.date | None
) -> dt.date | None:
    """The `active_from` of a new sub-account: as given, or, for an upstream id a closed
    sub-account had, the day after its last day when not given. An earlier day given is a
    `ValidationError` on `active_from`."""
    free = sub_account_first_free_day(upstream_account=upstream_account, upstream_id=upstream_id)
    if free is None:
        return active_from
    if active_from is None:
        return free
    if active_from < free:
        raise ValidationError(
            {
                "active_from": f"A closed sub-account used {upstream_id} through "
                f"{free - DAY}; start on {free} or later."
            }
        )
    return active_from
