"""Query strings of billing's lists, parsed strictly by `core.query.StrictQueryMixin`: an
unknown or repeated parameter or a bad value is a 400 naming it; a foreign id is a 404."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.invoicing.periods import period_parse
from billing.selectors import CUSTOMER_VISIBLE_STATUSES
from core.errors import ApplicationError
from core.query import id_parameter


@extend_schema_field(
    {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$", "example": "2026-10"}
)
class PeriodField(serializers.Field):
    """A month as `YYYY-MM`; validated to the first day of that month."""

    def to_internal_value(self, data):
        try:
            return period_parse(str(data)).start
        except ApplicationError as exc:
            raise serializers.ValidationError(exc.message) from exc

    def to_representation(self, value):
        return value.strftime("%Y-%m")


class PlanListQuerySerializer(serializers.Serializer):
    is_active = serializers.BooleanField(
        required=False, help_text="`true`: only plans open to new subscriptions."
    )


class SubscriptionListQuerySerializer(serializers.Serializer):
    customer = id_parameter("Only this customer's (not one of yours: 404).")
    plan = id_parameter("Only subscriptions to this plan (not one of yours: 404).")


INVOICE_ORDERINGS = ["id", "period_start", "-period_start", "number", "-number"]


class CustomerInvoiceListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[str(s) for s in CUSTOMER_VISIBLE_STATUSES],
        required=False,
        help_text="`finalized`, `paid` or `void`.",
    )
    period = PeriodField(required=False, help_text="Only the invoice of this month (YYYY-MM).")
    period_from = PeriodField(
        required=False, help_text="Months from this one (YYYY-MM, inclusive)."
    )
    period_to = PeriodField(required=False, help_text="Months up to this one (YYYY-MM, inclusive).")
    ordering = serializers.ChoiceField(
        choices=INVOICE_ORDERINGS,
        required=False,
        default="id",
        help_text="`id` (default), `period_start`, `-period_start` (newest month first), "
        "`number` or `-number`.",
    )

    def validate(self, attrs):
        start, end = attrs.get("period_from"), attrs.get("period_to")
        if start and end and start > end:
            raise serializers.ValidationError({"period_to": ["Before period_from."]})
        return attrs
