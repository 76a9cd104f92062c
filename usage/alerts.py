"""Usage alerts: per-customer thresholds, checked after every sync that changed usage.

A rule fires at most once per period (the reseller's calendar month holding `now`): the
`UsageAlert` row is unique per (rule, period), created in a savepoint, so re-syncs,
repeated checks and two workers checking at once end with one row and one email. The email
is sent through the same outbox as invoice emails (`core.outbox`): claimed under a row lock
(pending/failed -> sending, `email_claimed_at`), sent within the send's deadline, so a task
delivered twice sends once. A claim left `sending` by a dead worker is taken back after
`STALE_CLAIM_AFTER` by the same rule and sent again (`usage_alert_emails_recover`, every few
minutes from beat: `usage.schedule`).

- Quota share: fires when the customer's traffic this month (`UsageDay`, all its
  sub-accounts or the rule's one, on the days it held them) reaches `percent`% of
  `quota_gb`.
- Remaining below: fires when the available traffic of the latest BytesFlows ledger
  snapshot (the rule's sub-account, or the sum over the customer's active BytesFlows
  sub-accounts that have a snapshot) is below `remaining_gb`.
GB are the rule's `unit_bytes` (2^30 by default).

Each alert fired records the `usage.alert` webhook event (its payload is built by
`usage.webhook_payloads`) in the check's transaction: once per rule and period, like the alert row.

The check runs from `usage.tasks.usage_alerts_check_task`, named in
`settings.FLOWBILL_AFTER_SYNC_TASKS` (see `usage.services.followups`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from decimal import ROUND_HALF_UP, Decimal, localcontext

from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from accounts.email_identity import reseller_email_envelope
from accounts.models import Customer, Provider, Reseller, SubAccount
from accounts.selectors import held_totals
from core.enqueue import enqueue_on_commit, task_named
from core.outbox import Outbox, outbox_send, outbox_stale_claims_take
from usage.models import LedgerSnapshot, UsageAlert, UsageAlertRule, UsageDay
from webhooks.catalogue import USAGE_ALERT
from webhooks.events import webhook_event_record

logger = logging.getLogger(__name__)


def alert_period(*, reseller: Reseller, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The reseller-local month holding `now`, as days `[start, end)`."""
    start = now.astimezone(reseller.tzinfo).date().replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def usage_alert_rule_threshold_bytes(*, rule: UsageAlertRule) -> int:
    """The rule's threshold in whole bytes (rounded up: `used >= threshold`, or
    `remaining < threshold`, mean the same as against the exact figure)."""
    with localcontext(prec=60):
        if rule.kind == UsageAlertRule.Kind.QUOTA_SHARE:
            exact = rule.quota_gb * rule.unit_bytes * rule.percent / 100
        else:
            exact = rule.remaining_gb * rule.unit_bytes
    return math.ceil(exact)


def _gb(nbytes: int, unit_bytes: int) -> str:
    with localcontext(prec=60):
        return f"{Decimal(nbytes) / unit_bytes:,.2f} GB"


def _share(measured: int, rule: UsageAlertRule) -> Decimal:
    """The measured share of the quota in whole percent, rounded half up like the GB figure
    beside it (52.01 GB of 50 GB -> 104); never below the rule's `percent` once it fired."""
    with localcontext(prec=60):
        share = Decimal(measured) * 100 / (rule.quota_gb * rule.unit_bytes)
        return share.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def _sub_accounts(rule: UsageAlertRule, customer: Customer):
    if rule.sub_account_id:
        return SubAccount.objects.filter(pk=rule.sub_account_id, customer=customer)
    return SubAccount.objects.filter(customer=customer)


def usage_alert_measure(
    *, rule: UsageAlertRule, customer: Customer, start: dt.date, end: dt.date
) -> int | None:
    """Traffic used in `[start, end)` (quota rules) or remaining now (remaining rules);
    None when nothing is known yet (no snapshot)."""
    if rule.kind == UsageAlertRule.Kind.QUOTA_SHARE:  # the days it held each sub-account
        days = UsageDay.objects.filter(day__gte=start, day__lt=end)
        if rule.sub_account_id:
            days = days.filter(sub_account__in=_sub_accounts(rule, customer))
        return sum(held_totals(days, customers=[customer]).get(customer.pk, {}).values())
    subs = _sub_accounts(rule, customer)
    if not rule.sub_account_id:
        subs = subs.filter(
            upstream_account__provider=Provider.BYTESFLOWS, status=SubAccount.Status.ACTIVE
        )
    remaining = None
    for sub_account in subs.only("pk"):
        latest = (
            LedgerSnapshot.objects.filter(sub_account=sub_account)
            .order_by("-taken_at")
            .values_list("available_traffic", flat=True)
            .first()
        )
        if latest is not None:
            remaining = (remaining or 0) + latest
    return remaining


def _message(rule: UsageAlertRule, measured: int, start: dt.date) -> str:
    scope = f" on {rule.sub_account}" if rule.sub_account_id else ""
    if rule.kind == UsageAlertRule.Kind.QUOTA_SHARE:
        quota = f"{rule.quota_gb.normalize():f} GB"
        return (
            f"{_gb(measured, rule.unit_bytes)} used{scope} in {start:%B %Y}: "
            f"{_share(measured, rule)}% of the {quota} monthly quota (alert at {rule.percent}%)."
        )
    return (
        f"{_gb(measured, rule.unit_bytes)} BytesFlows traffic left{scope}, below "
        f"{rule.remaining_gb.normalize():f} GB."
    )


def usage_alerts_check(*, customer: Customer, now: dt.datetime) -> list[UsageAlert]:
    """Fire every active rule of `customer` whose threshold is crossed and that has not
    fired in the current period; returns the alerts fired by this call. Emails are queued
    when the caller's transaction commits."""
    start, end = alert_period(reseller=customer.reseller, now=now)
    fired_before = set(
        UsageAlert.objects.filter(rule__customer=customer, period_start=start).values_list(
            "rule_id", flat=True
        )
    )
    fired = []
    rules = UsageAlertRule.objects.filter(customer=customer, is_active=True).select_related(
        "sub_account"
    )
    for rule in rules.order_by("pk"):
        if rule.pk in fired_before:
            continue
        measured = usage_alert_measure(rule=rule, customer=customer, start=start, end=end)
        if measured is None:
            continue
        threshold = usage_alert_rule_threshold_bytes(rule=rule)
        crossed = (
            measured >= threshold
            if rule.kind == UsageAlertRule.Kind.QUOTA_SHARE
            else measured < threshold
        )
        if not crossed:
            continue
        try:
            with transaction.atomic():
                alert = UsageAlert.objects.create(
                    rule=rule,
                    period_start=start,
                    fired_at=now,
                    measured_bytes=measured,
                    threshold_bytes=threshold,
                    message=_message(rule, measured, start)[:300],
                    email_status=(
                        UsageAlert.EmailStatus.PENDING
                        if rule.notify_customer
                        else UsageAlert.EmailStatus.OFF
                    ),
                )
        except IntegrityError:
            continue  # another check fired it a moment ago: once per period
        webhook_event_record(
            reseller_id=customer.reseller_id, event_type=USAGE_ALERT, subject_id=alert.pk, now=now
        )
        if rule.notify_customer:
            _dispatch(alert)
        fired.append(alert)
    return fired


_SEND_TASK = "usage.tasks.usage_alert_email_send_task"

#: Where an alert keeps its email's outbox state.
ALERT_OUTBOX = Outbox(
    model=UsageAlert,
    claimable=(UsageAlert.EmailStatus.PENDING, UsageAlert.EmailStatus.FAILED),
    sending=UsageAlert.EmailStatus.SENDING,
    sent=UsageAlert.EmailStatus.SENT,
    failed=UsageAlert.EmailStatus.FAILED,
    status="email_status",
    attempts="email_attempts",
    claimed_at="email_claimed_at",
    last_error="email_error",
    sent_at="emailed_at",
    select_related=("rule__customer__reseller", "rule__sub_account"),
)


def _dispatch(alert: UsageAlert) -> None:
    enqueue_on_commit(_SEND_TASK, alert.pk)


def usage_alert_email_build(*, alert: UsageAlert) -> EmailMultiAlternatives:
    customer = alert.rule.customer
    reseller = customer.reseller
    context = {
        "alert": alert,
        "rule": alert.rule,
        "customer": customer,
        "reseller": reseller,
        "period": f"{alert.period_start:%B %Y}",
        "measured": _gb(alert.measured_bytes, alert.rule.unit_bytes),
    }
    subject = " ".join(f"Traffic alert from {reseller.name}: {alert.rule}".split())
    envelope = reseller_email_envelope(
        reseller=reseller, recipients=customer.billing_emails, idstring=f"alert{alert.pk}"
    )
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("usage/usage_alert_email.txt", context),
        **envelope.as_kwargs(),
    )
    message.attach_alternative(
        render_to_string("usage/usage_alert_email.html", context), "text/html"
    )
    return message


def usage_alert_email_send(*, alert_id: int, now: dt.datetime) -> UsageAlert:
    """Email one fired alert at most once (`core.outbox.outbox_send`); a failure is recorded
    and re-raised (retry). `now` is the wall clock: the claim's time."""
    return outbox_send(
        outbox=ALERT_OUTBOX,
        pk=alert_id,
        now=now,
        build_message=lambda alert, _now: usage_alert_email_build(alert=alert),
    )


def usage_alert_emails_recover(*, now: dt.datetime) -> list[int]:
    """Send again every alert email whose claim is older than `STALE_CLAIM_AFTER` (its worker
    died mid-send; each claim taken by one sweep only); returns the alert ids. `now` is the
    wall clock, like `email_claimed_at`."""
    taken = outbox_stale_claims_take(outbox=ALERT_OUTBOX, rows=UsageAlert.unscoped.all(), now=now)
    for alert_id in taken:
        task_named(_SEND_TASK).delay(alert_id)
    return taken


def usage_alerts_list(*, reseller: Reseller, period_start: dt.date) -> list[UsageAlert]:
    """The reseller's alerts fired in a period, newest first (the dashboard's notes)."""
    return list(
        UsageAlert.objects.for_reseller(reseller)
        .filter(period_start=period_start)
        .select_related("rule__customer", "rule__sub_account")
        .order_by("-fired_at", "-pk")
    )
