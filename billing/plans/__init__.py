"""Plans and subscriptions: the billing rules (`rules`), the writes (`services`,
`subscriptions`) and a plan's rating terms (`terms`). Admin, API and commands all call these.
"""

from billing.plans.rules import plan_rules_errors
from billing.plans.services import PLAN_FIXED_FIELDS, plan_create, plan_error, plan_update
from billing.plans.subscriptions import (
    subscription_create,
    subscription_delete,
    subscription_end,
    subscription_rules_errors,
    subscription_update,
    subscriptions_overlapping,
)
from billing.plans.terms import plan_terms, terms_from_json, terms_to_json

__all__ = [
    "PLAN_FIXED_FIELDS",
    "plan_create",
    "plan_error",
    "plan_rules_errors",
    "plan_terms",
    "plan_update",
    "subscription_create",
    "subscription_delete",
    "subscription_end",
    "subscription_rules_errors",
    "subscription_update",
    "subscriptions_overlapping",
    "terms_from_json",
    "terms_to_json",
]
