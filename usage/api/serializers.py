"""Input and output serializers of the usage API, separate and uniquely named.

The usage query is parsed from the query string by `UsageQuerySerializer` (reseller scope:
`ResellerUsageQuerySerializer`, which adds `customer`); the view refuses parameters it does
not know. Traffic is integer bytes plus a decimal string in the response's unit.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP

from rest_framework import serializers

from accounts.api.serializers import StrictInputSerializer, StrictModelInputSerializer
from accounts.models import Customer, SubAccount, UpstreamAccount
from core.query import MAX_BIGINT, AsciiIntegerField, id_parameter
from usage.models import Allocation, SyncRun, UsageAlertRule
from usage.services.alert_rules import RULE_FIELDS

GIB = 1_073_741_824
GB = 1_000_000_000
#: `unit` query parameter -> bytes in one unit of the `gb` figures.
UNITS = {"gib": GIB, "gb": GB}
#: Longest range per granularity, in days (`to - from + 1`); month: calendar months.
MAX_DAYS = {"day": 400, "hour": 31}
MAX_MONTHS = 120
#: Dates outside this span are refused (they would overflow the period arithmetic).
MIN_DATE, MAX_DATE = dt.date(1970, 1, 1), dt.date(9998, 12, 31)

# --- query ----------------------------------------------------------------------------------


def _date_field(help_text: str) -> serializers.DateField:
    return serializers.DateField(
        input_formats=["%Y-%m-%d"],
        help_text=help_text,
    )


class UsageQuerySerializer(serializers.Serializer):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD&granularity=day|month|hour[&sub_account=ID][&unit=]`.

    `from` is a Python keyword: the field is declared as `from_` and published as `from`.
    """

    from_ = _date_field("First day, in the reseller's timezone (YYYY-MM-DD).")
    to = _date_field(
        "Last day, inclusive, in the reseller's timezone (YYYY-MM-DD). The range, both ends "
        "counted, is at most 400 days for `day`, 31 days for `hour`, 120 calendar months "
        "for `month`."
    )
    granularity = serializers.ChoiceField(
        choices=["day", "month", "hour"],
        default="day",
        help_text="`day` (default): reseller-local days; `month`: calendar months, dated "
        "the 1st, summing the range's days in them; `hour`: UTC hours starting inside the "
        "range's days, dated in the reseller's timezone.",
    )
    sub_account = id_parameter("Only this sub-account (404 if it is not one of yours).")
    unit = serializers.ChoiceField(
        choices=list(UNITS),
        default="gib",
        help_text="Unit of the `gb` figures: `gib` (default, 1,073,741,824 bytes) or `gb` "
        "(1,000,000,000 bytes). `unit_bytes` in the response says which.",
    )

    def get_fields(self):
        fields = super().get_fields()
        renamed = {"from": fields.pop("from_")}
        renamed.update(fields)
        return renamed

    def validate(self, attrs):
        first, last = attrs["from"], attrs["to"]
        errors = {}
        for name in ("from", "to"):
            if not MIN_DATE <= attrs[name] <= MAX_DATE:
                errors[name] = [f"Must be between {MIN_DATE} and {MAX_DATE}."]
        if errors:
            raise serializers.ValidationError(errors)
        if last < first:
            raise serializers.ValidationError({"to": ["Must not be before `from`."]})
        granularity = attrs["granularity"]
        if granularity == "month":
            months = (last.year - first.year) * 12 + last.month - first.month + 1
            if months > MAX_MONTHS:
                raise serializers.ValidationError(
                    {"to": [f"At most {MAX_MONTHS} months with granularity=month."]}
                )
        elif (last - first).days + 1 > MAX_DAYS[granularity]:
            raise serializers.ValidationError(
                {"to": [f"At most {MAX_DAYS[granularity]} days with granularity={granularity}."]}
            )
        return attrs


class ResellerUsageQuerySerializer(UsageQuerySerializer):
    customer = id_parameter("Only this customer's sub-accounts (404 if it is not one of yours).")
    sub_account = id_parameter(
        "Only this sub-account (404 if it is not one of yours; 400 if it is not `customer`'s)."
    )


# --- output ---------------------------------------------------------------------------------


def _gb_field(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=None, decimal_places=3, rounding=ROUND_HALF_UP, help_text=help_text
    )


class UsagePointOutputSerializer(serializers.Serializer):
    period = serializers.CharField(
        help_text="`day`: the day, YYYY-MM-DD; `month`: its first day, YYYY-MM-DD; `hour`: "
        "the hour's start, ISO 8601 with the reseller's UTC offset "
        "(2026-10-01T08:00:00+08:00)."
    )
    bytes = serializers.IntegerField(help_text="Bytes used in the period.")
    gb = _gb_field("`bytes / unit_bytes`, 3 decimals, rounded half up.")


class UsageSeriesOutputSerializer(serializers.Serializer):
    timezone = serializers.CharField(help_text="The reseller's timezone (days and months).")
    unit_bytes = serializers.IntegerField(help_text="Bytes in one unit of the `gb` figures.")
    granularity = serializers.ChoiceField(choices=["day", "month", "hour"])
    total_bytes = serializers.IntegerField(help_text="Sum of `results[].bytes`.")
    total_gb = _gb_field("`total_bytes / unit_bytes`, 3 decimals, rounded half up.")
    results = UsagePointOutputSerializer(
        many=True,
        help_text="Every period of the range in order, zero-filled (not paginated: the "
        "range is bounded).",
    )


# --- sync -----------------------------------------------------------------------------------


class SyncRequestInputSerializer(StrictInputSerializer):
    upstream_account = serializers.PrimaryKeyRelatedField(
        queryset=UpstreamAccount.objects.none(),
        required=False,
        help_text="Sync only this upstream account; absent: every active one. An inactive "
        "one is refused by the service (409 `upstream_account_inactive`).",
    )

    tenant_scoped_fields = {"upstream_account": UpstreamAccount}


class QueuedSyncOutputSerializer(serializers.Serializer):
    task_id = serializers.CharField(help_text="The Celery task id.")
    sync_run = serializers.IntegerField(
        source="sync_run_id", help_text="The sync run this task fills (created `queued`)."
    )
    # A plain string, not an enum: `kind` enums of other components (invoice lines) would
    # collide in the schema's enum naming.
    kind = serializers.CharField(
        help_text="`usage`: IPFoxy hourly history over the window; `snapshot`: a "
        "BytesFlows ledger snapshot."
    )
    upstream_account = serializers.IntegerField(source="upstream_account_id")
    sub_account = serializers.IntegerField(source="sub_account_id")


class SyncRequestOutputSerializer(serializers.Serializer):
    upstream_accounts = serializers.ListField(
        child=serializers.IntegerField(),
        source="upstream_account_ids",
        help_text="The upstream accounts synced.",
    )
    window_start = serializers.DateTimeField(help_text="Start of the IPFoxy re-sync window.")
    window_end = serializers.DateTimeField(help_text="End (exclusive): the next whole hour.")
    queued = serializers.IntegerField(help_text="How many tasks were queued.")
    tasks = QueuedSyncOutputSerializer(many=True, help_text="One per active sub-account.")
    sync_runs = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Ids of the sync runs of this request, one per task, in the order of "
        "`tasks`. Each is created `queued` before its task runs; the task marks it "
        "`running`, then `succeeded`, `failed` or `skipped`.",
    )


# --- sync runs ------------------------------------------------------------------------------


class SyncRunQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SyncRun.Status.choices, required=False)
    kind = serializers.ChoiceField(choices=SyncRun.Kind.choices, required=False)
    upstream_account = id_parameter("404 if not yours.")
    sub_account = id_parameter("404 if not yours.")
    since = serializers.DateTimeField(
        required=False,
        help_text="Runs started at or after this instant (ISO 8601 with an offset, or a "
        "date: its midnight UTC); queued runs by when they were queued.",
        input_formats=["iso-8601", "%Y-%m-%d"],
    )

    def validate_since(self, value: dt.datetime) -> dt.datetime:
        if not MIN_DATE <= value.date() <= MAX_DATE:
            raise serializers.ValidationError(f"Must be between {MIN_DATE} and {MAX_DATE}.")
        return value


class SyncRunOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncRun
        fields = [
            "id",
            "kind",
            "status",
            "upstream_account",
            "sub_account",
            "window_start",
            "window_end",
            "queued_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "pages",
            "requests",
            "rows_written",
            "error_code",
            "error",
        ]


# --- usage alert rules ----------------------------------------------------------------------

_RULE_FIELDS = list(RULE_FIELDS)


class _RuleSubAccountMixin:
    """`sub_account` (and `customer`) among the caller's own rows only: a foreign id reads
    exactly like a missing one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tenant = self.context.get("tenant")
        if tenant is not None:
            self.fields["sub_account"].queryset = SubAccount.objects.for_reseller(
                tenant.reseller
            ).select_related("upstream_account")
            if "customer" in self.fields:
                self.fields["customer"].queryset = Customer.objects.for_reseller(tenant.reseller)


class UsageAlertRuleCreateInputSerializer(_RuleSubAccountMixin, StrictModelInputSerializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())
    sub_account = serializers.PrimaryKeyRelatedField(
        queryset=SubAccount.objects.none(),
        required=False,
        allow_null=True,
        help_text="Only this sub-account of the customer; empty: all of them (BytesFlows ones "
        "for remaining_below rules).",
    )

    class Meta:
        model = UsageAlertRule
        fields = ["customer", *_RULE_FIELDS]
        validators = []


class UsageAlertRuleUpdateInputSerializer(_RuleSubAccountMixin, StrictModelInputSerializer):
    immutable_fields = ("customer",)
    sub_account = serializers.PrimaryKeyRelatedField(
        queryset=SubAccount.objects.none(), required=False, allow_null=True
    )

    class Meta:
        model = UsageAlertRule
        fields = _RULE_FIELDS
        validators = []


class UsageAlertRuleOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = UsageAlertRule
        fields = ["id", "customer", *_RULE_FIELDS, "created_at"]


class UsageAlertRuleQuerySerializer(serializers.Serializer):
    customer = id_parameter("404 if not yours.")
    kind = serializers.ChoiceField(choices=UsageAlertRule.Kind.choices, required=False)
    is_active = serializers.BooleanField(required=False)


# --- allocations and traffic ----------------------------------------------------------------


class BytesInputField(AsciiIntegerField):
    """Bytes as a JSON integer (or ASCII digits). A value that is not one is refused with
    `invalid_amount`, like the service refuses one that is not a positive whole number of
    the upstream's MB."""

    def __init__(self, **kwargs):
        super().__init__(min_value=-MAX_BIGINT, max_value=MAX_BIGINT, **kwargs)

    def run_validation(self, data=serializers.empty):
        try:
            return super().run_validation(data)
        except serializers.ValidationError as exc:
            if data is serializers.empty or data is None:  # missing or null: not an amount
                raise
            messages = [str(message) for message in exc.detail]
            raise serializers.ValidationError(messages, code="invalid_amount") from exc


class AllocationCreateInputSerializer(StrictInputSerializer):
    bytes = BytesInputField(
        help_text="Traffic to add, in bytes: a positive whole number of the upstream "
        "account's MB (`mb_bytes`, 1,048,576 by default: 1 GiB is 1073741824). Anything "
        "else is a 400 `invalid_amount`."
    )
    expires_in_days = serializers.ChoiceField(
        choices=[0, 30, 90, 180, 360],
        default=0,
        help_text="Days until this traffic expires upstream: 0 (default, never), 30, 90, 180 "
        "or 360.",
    )
    reason = serializers.ChoiceField(
        choices=[Allocation.Reason.MANUAL, Allocation.Reason.ORDER],
        default=Allocation.Reason.MANUAL,
        help_text="Why: `manual` (default) or `order` (a customer's purchase). "
        "`auto_topup` is Flowbill's own.",
    )


class AllocationOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Allocation
        fields = [
            "id",
            "sub_account",
            "bytes",
            "flow_mb",
            "expires_in_days",
            "reason",
            "status",
            "created_by",
            "idempotency_key",
            "attempts",
            "error_code",
            "error",
            "created_at",
            "sent_at",
            "confirmed_at",
        ]


class AllocationQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Allocation.Status.choices, required=False)
    reason = serializers.ChoiceField(choices=Allocation.Reason.choices, required=False)


class SubAccountTrafficOutputSerializer(serializers.Serializer):
    allocated_bytes = serializers.IntegerField(
        help_text="Traffic the upstream holds for the sub-account: `used_bytes + "
        "remaining_bytes` (expired traffic not counted)."
    )
    used_bytes = serializers.IntegerField(help_text="Traffic used, as the upstream counts it.")
    remaining_bytes = serializers.IntegerField(help_text="Traffic left to use.")
    as_of = serializers.DateTimeField(
        help_text="When Flowbill received these figures from the upstream (UTC): a figure "
        "stored in the last minute (by the periodic refresh or an earlier read) is served as "
        "is, else the upstream is asked now. IPFoxy's own figures may be up to a minute "
        "older (it caches them)."
    )
