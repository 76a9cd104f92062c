"""The credit-limit traffic policy: top up sub-accounts running low, within the limit.

`customer_traffic_policy_apply` decides for one customer under its row lock (two workers
deciding at once take turns; the second sees the first one's pending allocations):

- Only a customer on `credit_limit` that is active. Its candidates are the active, open
  (`access` "open") IPFoxy sub-accounts of an active upstream account whose stored remaining
  traffic (`usage.models.SubAccountTraffic`) is below `topup_below_bytes` and that have no
  allocation in flight (pending, needing review, or confirmed after the stored figure was
  read: the figure does not show it yet). A sub-account without a stored figure waits for
  the next traffic refresh. The driest goes first.
- Each gets one allocation of `topup_bytes` (reason `auto_topup`, actor `system`, never
  expiring) while exposure (`billing.traffic_policy.exposure`: what is owed less the customer
  balance held, so prepaid credit makes room) plus the value of every chunk given in this
  run plus this one stays within `credit_limit`: each chunk is priced by the rating engine on
  top of the previous ones.
- The first chunk that would pass the limit stops the run: nothing more is allocated. If
  `credit_limit_reached_at` is empty it is set, and `customer.credit_limit_reached` is
  emitted and the customer emailed (after commit); a later run that is refused again says
  nothing more. A run in which a chunk fits and none is refused clears it, so reaching the
  limit again is announced again.
- `topup_bytes` must be a whole number of each upstream account's MB: a sub-account whose
  upstream MB does not divide it is skipped with `topup_not_whole_mb` (and the customer
  update refuses such a value for the upstream accounts it already has sub-accounts on:
  `accounts.services`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Q

from accounts.models import Customer, Provider, SubAccount
from billing.money import quantize_money
from billing.traffic_policy.exposure import (
    IN_FLIGHT,
    exposure_base,
    exposure_with_extra,
)
from billing.traffic_policy.notice import credit_limit_notice_enqueue
from core.errors import ApplicationError
from usage.models import Allocation
from usage.services.allocations import allocation_create
from webhooks.catalogue import CUSTOMER_CREDIT_LIMIT_REACHED
from webhooks.events import webhook_event_record

logger = logging.getLogger(__name__)

ACTOR = "system"


@dataclass
class PolicyRun:
    """What one run did for one customer. `skipped`: why nothing was decided at all
    (`policy_manual`, `customer_suspended`, ...); `refused`: sub-account id -> code."""

    customer_id: int
    skipped: str = ""
    candidates: int = 0
    allocated: list[int] = field(default_factory=list)  # allocation ids
    refused: dict[int, str] = field(default_factory=dict)
    limit_reached: bool = False
    announced: bool = False
    cleared: bool = False
    exposure: Decimal | None = None  # with the chunks given in this run

    def as_dict(self) -> dict[str, object]:
        return {
            "customer": self.customer_id,
            "skipped": self.skipped,
            "candidates": self.candidates,
            "allocated": list(self.allocated),
            "refused": {str(k): v for k, v in self.refused.items()},
            "limit_reached": self.limit_reached,
            "announced": self.announced,
            "cleared": self.cleared,
            "exposure": None if self.exposure is None else str(self.exposure),
        }


def _aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ApplicationError("naive_datetime", "`now` must be an aware datetime.")
    return now


def topup_candidates(*, customer: Customer) -> list[SubAccount]:
    """The customer's sub-accounts to top up now (see the module text), driest first."""
    below = customer.topup_below_bytes or 0
    rows = (
        SubAccount.objects.filter(
            customer=customer,
            status=SubAccount.Status.ACTIVE,
            access="open",
            upstream_account__provider=Provider.IPFOXY,
            upstream_account__is_active=True,
            traffic__remaining_bytes__lt=below,
        )
        .select_related("upstream_account", "traffic")
        .defer("upstream_account__credentials", "credentials", "proxy_login")
        .order_by("traffic__remaining_bytes", "pk")
    )
    rows = list(rows)
    if not rows:
        return []
    oldest = min(sa.traffic.as_of for sa in rows)
    busy: set[int] = set()
    figures = {sa.pk: sa.traffic.as_of for sa in rows}
    for sub_account_id, status, confirmed_at in (
        Allocation.objects.filter(sub_account__in=rows)
        .filter(
            Q(status__in=IN_FLIGHT)
            | Q(status=Allocation.Status.CONFIRMED, confirmed_at__gte=oldest)
        )
        .values_list("sub_account_id", "status", "confirmed_at")
    ):
        if status in IN_FLIGHT or confirmed_at >= figures[sub_account_id]:
            busy.add(sub_account_id)  # the stored figure does not show it yet
    return [sa for sa in rows if sa.pk not in busy]


def customer_traffic_policy_apply(*, customer: Customer, now: dt.datetime) -> PolicyRun:
    """Run the credit-limit policy for one customer (see the module text)."""
    now = _aware(now)
    run = PolicyRun(customer_id=customer.pk)
    with transaction.atomic():
        locked = (
            Customer.objects.select_for_update(of=("self",))
            .select_related("reseller")
            .row_of(customer)
            .get()
        )
        if locked.traffic_policy != Customer.TrafficPolicy.CREDIT_LIMIT:
            run.skipped = "policy_manual"
            return run
        if locked.status != Customer.Status.ACTIVE:
            run.skipped = "customer_suspended"
            return run
        candidates = topup_candidates(customer=locked)
        run.candidates = len(candidates)
        if not candidates:
            return run
        chunk = int(locked.topup_bytes)
        limit = locked.credit_limit
        currency = locked.currency
        base = exposure_base(customer=locked, now=now)
        extra = dict(base.unused_by_sub_account)
        refused_by_limit: Decimal | None = None
        for sub_account in candidates:
            if chunk % sub_account.upstream_account.mb_bytes:
                run.refused[sub_account.pk] = "topup_not_whole_mb"
                continue
            trial = dict(extra)
            trial[sub_account.pk] = trial.get(sub_account.pk, 0) + chunk
            after = quantize_money(
                base.fixed + exposure_with_extra(base=base, extra=trial), currency
            )
            if after > limit:
                refused_by_limit = after
                run.refused[sub_account.pk] = "credit_limit_reached"
                break
            sub_account.customer = locked
            try:
                allocation = allocation_create(
                    sub_account=sub_account,
                    bytes=chunk,
                    expires_in_days=0,
                    reason=Allocation.Reason.AUTO_TOPUP,
                    actor=ACTOR,
                    now=now,
                )
            except ApplicationError as exc:  # the upstream account cannot be written to
                run.refused[sub_account.pk] = exc.code
                continue
            run.allocated.append(allocation.pk)
            run.exposure = after
            extra = trial
        if refused_by_limit is not None:
            run.limit_reached = True
            if locked.credit_limit_reached_at is None:
                locked.credit_limit_reached_at = now
                locked.save(update_fields=["credit_limit_reached_at"])
                _announce(locked, now=now, next_exposure=refused_by_limit, chunk=chunk)
                run.announced = True
        elif run.allocated and locked.credit_limit_reached_at is not None:
            locked.credit_limit_reached_at = None
            locked.save(update_fields=["credit_limit_reached_at"])
            run.cleared = True
    customer.credit_limit_reached_at = locked.credit_limit_reached_at
    if run.allocated or run.announced or run.cleared:  # a change, not every run at the limit
        logger.info("traffic policy of customer %s: %s", customer.pk, run.as_dict())
    return run


def _announce(customer: Customer, *, now: dt.datetime, next_exposure: Decimal, chunk: int):
    """The webhook and the email of a reached limit (inside the deciding transaction: both
    go out only if it commits)."""
    webhook_event_record(
        reseller_id=customer.reseller_id,
        event_type=CUSTOMER_CREDIT_LIMIT_REACHED,
        subject_id=customer.pk,
        now=now,
        facts={"exposure_with_topup": next_exposure, "topup_bytes": chunk},
    )
    credit_limit_notice_enqueue(customer=customer, now=now)


def customers_on_credit_limit(*, upstream_account_id: int | None = None) -> list[int]:
    """Ids of the active customers on the credit-limit policy (of one upstream account's
    sub-accounts when given), in id order."""
    customers = Customer.objects.filter(
        traffic_policy=Customer.TrafficPolicy.CREDIT_LIMIT, status=Customer.Status.ACTIVE
    )
    if upstream_account_id is not None:
        customers = customers.filter(
            sub_accounts__upstream_account_id=upstream_account_id,
            sub_accounts__status=SubAccount.Status.ACTIVE,
        )
    return list(customers.order_by("pk").values_list("pk", flat=True).distinct())
