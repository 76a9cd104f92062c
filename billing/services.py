"""Plans and subscriptions: the writes, and turning a plan into rating's frozen terms.

The code lives in `billing.plans` (rules, services, subscriptions, terms); this module keeps
the names callers import from `billing.services`.
"""

from billing.plans import (
    PLAN_FIXED_FIELDS,
    plan_create,
    plan_rules_errors,
    plan_terms,
    plan_update,
    subscription_create,
    subscription_delete,
    subscription_end,
    subscription_update,
    terms_from_json,
    terms_to_json,
)

__all__ = [
    "PLAN_FIXED_FIELDS",
    "plan_create",
    "plan_rules_errors",
    "plan_terms",
    "plan_update",
    "subscription_create",
    "subscription_delete",
    "subscription_end",
    "subscription_update",
    "terms_from_json",
    "terms_to_json",
]
