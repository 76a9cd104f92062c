"""Pure rating: usage bytes and plan terms in, exact invoice lines out (Decimal only, no ORM).

The package splits by sub-domain: `terms` (inputs, outputs, bytes -> GB), `charges` (one
function per pricing model), `subscription` (base fee, minimum, proration, invoice totals).
Import from here: `from billing.rating import rate_subscription, PlanTerms, Tier`.
"""

from billing.rating.charges import (
    rate_graduated,
    rate_package,
    rate_usage,
    rate_volume,
    usage_total,
)
from billing.rating.subscription import (
    invoice_totals,
    prorate,
    rate_subscription,
    subscription_amount,
)
from billing.rating.terms import (
    DEFAULT_UNIT_BYTES,
    LineKind,
    PlanTerms,
    PricingModel,
    RatedLine,
    Tier,
    Totals,
    unit_note,
    usage_quantity,
)

__all__ = [
    "DEFAULT_UNIT_BYTES",
    "LineKind",
    "PlanTerms",
    "PricingModel",
    "RatedLine",
    "Tier",
    "Totals",
    "invoice_totals",
    "prorate",
    "rate_graduated",
    "rate_package",
    "rate_subscription",
    "rate_usage",
    "rate_volume",
    "subscription_amount",
    "unit_note",
    "usage_quantity",
    "usage_total",
]
