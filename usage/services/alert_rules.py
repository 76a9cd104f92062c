"""Usage alert rules: create, change and delete them (API, admin and shell alike).

A rule belongs to one customer of the reseller (and optionally one of its sub-accounts).
Quota rules need `quota_gb` and `percent` and take no `remaining_gb`; remaining-traffic
rules need `remaining_gb`, take neither quota field, and only watch BytesFlows
sub-accounts (an IPFoxy sub-account has no remaining traffic to measure).
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import Customer, Reseller
from core.errors import NotFoundError
from usage.models import UsageAlertRule

#: The fields a rule is made of besides its customer (API, admin).
RULE_FIELDS = (
    "kind",
    "quota_gb",
    "percent",
    "remaining_gb",
    "unit_bytes",
    "sub_account",
    "notify_customer",
    "is_active",
)


def _validate(rule: UsageAlertRule) -> None:
    """The model's rules (`UsageAlertRule.clean`, shared with the admin) and field limits."""
    rule.full_clean(exclude=["customer"])


def usage_alert_rule_create(*, reseller: Reseller, customer: Customer, **fields) -> UsageAlertRule:
    if customer.reseller_id != reseller.pk:
        raise NotFoundError("No such customer.")
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    rule = UsageAlertRule(customer=customer, **fields)
    _validate(rule)
    rule.save()
    return rule


def usage_alert_rule_update(*, rule: UsageAlertRule, **changes) -> UsageAlertRule:
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise TypeError(f"cannot change {sorted(unknown)}")
    with transaction.atomic():
        rule = UsageAlertRule.objects.select_for_update().row_of(rule).get()
        for name, value in changes.items():
            setattr(rule, name, value)
        _validate(rule)
        rule.save()
    return rule


def usage_alert_rule_delete(*, rule: UsageAlertRule) -> None:
    """Delete the rule and the alerts it fired."""
    rule.delete()
