"""Usage alert rules: create, change and delete them (API, admin and shell alike).

A rule belongs to one customer of the reseller (and optionally one of its sub-accounts).
Quota rules need `quota_gb` and `percent` and take no `remaining_gb`; remaining-traffic
rules need `remaining_gb`, take neither quota field, and only watch BytesFlows
sub-accounts (an IPFoxy sub-account has no remaining traffic to measure).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Customer, Provider, Reseller
from config.errors import NotFoundError
from usage.models import UsageAlertRule

CHANGEABLE = (
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
    errors: dict[str, list[str]] = {}
    if rule.kind == UsageAlertRule.Kind.QUOTA_SHARE:
        if rule.remaining_gb is not None:
            errors["remaining_gb"] = ["Only for remaining_below rules; leave it empty."]
    else:
        for name in ("quota_gb", "percent"):
            if getattr(rule, name) is not None:
                errors[name] = ["Only for quota_share rules; leave it empty."]
        sub_account = rule.sub_account
        if sub_account is not None and sub_account.upstream_account.provider != Provider.BYTESFLOWS:
            errors["sub_account"] = ["Remaining-traffic rules watch BytesFlows sub-accounts only."]
    try:
        rule.full_clean(exclude=["customer"])
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def usage_alert_rule_create(*, reseller: Reseller, customer: Customer, **fields) -> UsageAlertRule:
    if customer.reseller_id != reseller.pk:
        raise NotFoundError("No such customer.")
    unknown = set(fields) - set(CHANGEABLE)
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    rule = UsageAlertRule(customer=customer, **fields)
    _validate(rule)
    rule.save()
    return rule


def usage_alert_rule_update(*, rule: UsageAlertRule, **changes) -> UsageAlertRule:
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise TypeError(f"cannot change {sorted(unknown)}")
    with transaction.atomic():
        rule = UsageAlertRule.objects.select_for_update().get(pk=rule.pk)
        for name, value in changes.items():
            setattr(rule, name, value)
        _validate(rule)
        rule.save()
    return rule


def usage_alert_rule_delete(*, rule: UsageAlertRule) -> None:
    """Delete the rule and the alerts it fired."""
    rule.delete()
