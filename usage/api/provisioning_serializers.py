"""Serializers of the sub-account endpoints usage serves: provisioning (reseller scope), the
reseller's list and manual add (`sub-accounts/`), and the customer's list with its proxy
login and remaining traffic. Input and output separate and uniquely named."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import StrictInputSerializer, SubAccountOutputSerializer
from accounts.models import Customer, SubAccount, UpstreamAccount
from core.query import MAX_BIGINT, AsciiIntegerField
from usage.models import Allocation, Provisioning
from usage.providers.reseller import EXPIRY_DAYS


class _AmountField(AsciiIntegerField):
    """Bytes as a JSON integer; a value that is not one is a 400 `invalid_amount`."""

    def run_validation(self, data=serializers.empty):
        try:
            return super().run_validation(data)
        except serializers.ValidationError as exc:
            if data is serializers.empty or data is None:
                raise
            messages = [str(message) for message in exc.detail]
            raise serializers.ValidationError(messages, code="invalid_amount") from exc


class ProvisionInputSerializer(StrictInputSerializer):
    """`customer` and `upstream_account` are looked up among the caller's own rows only: a
    foreign id reads exactly like a missing one ("does not exist")."""

    customer = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.none(), help_text="The customer it is for (one of yours)."
    )
    upstream_account = serializers.PrimaryKeyRelatedField(
        queryset=UpstreamAccount.objects.none(),
        help_text="The IPFoxy upstream account to create it on (one of yours, active, with "
        "its api-id and api-token).",
    )
    label = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Free text to tell it apart; may be empty.",
    )
    initial_bytes = _AmountField(
        min_value=-MAX_BIGINT,
        max_value=MAX_BIGINT,
        required=False,
        default=0,
        help_text="Traffic allocated once it exists, in bytes: 0 (default, none) or a whole "
        "number of the upstream account's MB (`mb_bytes`, 1,048,576 by default: 1 GiB is "
        "1073741824); anything else is a 400 `invalid_amount`. Sent through the allocation "
        "ledger (reason `initial`), exactly once.",
    )
    expires_in_days = AsciiIntegerField(
        min_value=0,
        max_value=max(EXPIRY_DAYS),
        default=0,
        help_text="Days until the initial traffic expires upstream: 0 (default, never), 30, "
        "90, 180 or 360 (another number is a 400 naming it).",
    )

    tenant_scoped_fields = {"customer": Customer, "upstream_account": UpstreamAccount}


class InitialAllocationOutputSerializer(serializers.ModelSerializer):
    status = serializers.CharField(
        read_only=True,
        help_text="`pending` (being sent; the ledger finishes it), `confirmed`, `failed` (e.g. "
        "`upstream_insufficient_balance`) or `needs_review`.",
    )

    class Meta:
        model = Allocation
        fields = ["id", "bytes", "status", "error_code"]
        extra_kwargs = {
            "id": {"help_text": "The ledger row (`sub-accounts/{id}/allocations/`)."},
            "bytes": {"help_text": "Traffic allocated, in bytes."},
            "error_code": {"help_text": "Why it failed or is still pending; empty when none."},
        }


class ProvisionedSubAccountOutputSerializer(SubAccountOutputSerializer):
    """The sub-account just created upstream, with its proxy login and what became of its
    initial traffic."""

    provisioning = serializers.SerializerMethodField(
        help_text="The id of the provisioning record (`sub-accounts/provisionings/{id}/`)."
    )
    initial_allocation = serializers.SerializerMethodField(
        help_text="The initial traffic's ledger row; null when `initial_bytes` was 0."
    )

    class Meta(SubAccountOutputSerializer.Meta):
        fields = [*SubAccountOutputSerializer.Meta.fields, "provisioning", "initial_allocation"]

    def get_provisioning(self, obj: SubAccount) -> int:
        return self.context["provisioning"].pk

    @extend_schema_field(InitialAllocationOutputSerializer(allow_null=True))
    def get_initial_allocation(self, obj: SubAccount) -> dict | None:
        allocation = self.context.get("initial_allocation")
        return None if allocation is None else InitialAllocationOutputSerializer(allocation).data


class ProvisioningOutputSerializer(serializers.ModelSerializer):
    upstream_id = serializers.CharField(
        source="account", read_only=True, help_text="The name it gets upstream (generated)."
    )

    class Meta:
        model = Provisioning
        fields = [
            "id",
            "status",
            "customer",
            "upstream_account",
            "upstream_id",
            "label",
            "initial_bytes",
            "expires_in_days",
            "sub_account",
            "attempts",
            "error_code",
            "created_by",
            "created_at",
            "settled_at",
        ]
        extra_kwargs = {
            "status": {
                "help_text": "`pending` (the outcome is not known yet: it is resent with the "
                "same idempotency key until it is), `confirmed` (`sub_account` exists), "
                "`failed` (nothing was created: `error_code` says why) or `needs_review` "
                "(it may exist upstream; staff check)."
            },
            "upstream_account": {"help_text": "The upstream account it is created on."},
            "label": {"help_text": "The label the sub-account gets."},
            "initial_bytes": {"help_text": "Traffic allocated once it exists, in bytes."},
            "expires_in_days": {"help_text": "Days until the initial traffic expires (0: never)."},
            "sub_account": {
                "help_text": "The sub-account created (`sub-accounts/{id}/`, with its proxy "
                "login); null until `confirmed`."
            },
            "attempts": {"help_text": "Requests to create it sent so far."},
            "error_code": {
                "help_text": "The upstream's refusal (`upstream_insufficient_balance`, "
                "`upstream_auth_failed`, ...) or why it is still pending "
                "(`upstream_rate_limited`, `upstream_outcome_unknown`); empty when none."
            },
            "created_by": {"help_text": "Who asked: `key <prefix>` or `login <username>`."},
            "settled_at": {
                "help_text": "When it became confirmed or failed (UTC); null while pending."
            },
        }


class ProvisioningQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Provisioning.Status.choices, required=False)
    customer = AsciiIntegerField(
        min_value=1, max_value=MAX_BIGINT, required=False, help_text="A customer's id."
    )


class CustomerSubAccountOutputSerializer(serializers.ModelSerializer):
    """A customer's view of its sub-account: its proxy login and remaining traffic; no
    upstream account, no credentials."""

    provider = serializers.CharField(source="upstream_account.provider", read_only=True)
    proxy_username = serializers.CharField(
        read_only=True, allow_null=True, help_text="The proxy login; null for BytesFlows."
    )
    proxy_password = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The proxy password; null when your provider does not know it, and while "
        "access is cut off.",
    )
    proxy = serializers.CharField(
        source="proxy_url",
        read_only=True,
        allow_null=True,
        help_text="`http://user:password@host:port`, ready to paste into a proxy client; null "
        "when no gateway is configured or the password is not known.",
    )
    allocated_bytes = serializers.SerializerMethodField(
        help_text="Traffic the upstream holds for it (`used_bytes + remaining_bytes`); null "
        "when not known yet."
    )
    used_bytes = serializers.SerializerMethodField(
        help_text="Traffic used, as the upstream counts it; null when not known yet."
    )
    remaining_bytes = serializers.SerializerMethodField(
        help_text="Traffic left to use; null when not known yet (BytesFlows: always)."
    )
    traffic_as_of = serializers.SerializerMethodField(
        help_text="When these traffic figures were read from the upstream (UTC); null when "
        "not known yet."
    )

    class Meta:
        model = SubAccount
        fields = [
            "id",
            "provider",
            "upstream_id",
            "label",
            "status",
            "active_from",
            "active_to",
            "created_at",
            "proxy_username",
            "proxy_password",
            "proxy",
            "allocated_bytes",
            "used_bytes",
            "remaining_bytes",
            "traffic_as_of",
        ]

    @staticmethod
    def _traffic(obj: SubAccount):
        return getattr(obj, "traffic", None)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_allocated_bytes(self, obj: SubAccount) -> int | None:
        traffic = self._traffic(obj)
        return None if traffic is None else traffic.allocated_bytes

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_used_bytes(self, obj: SubAccount) -> int | None:
        traffic = self._traffic(obj)
        return None if traffic is None else traffic.used_bytes

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_remaining_bytes(self, obj: SubAccount) -> int | None:
        traffic = self._traffic(obj)
        return None if traffic is None else traffic.remaining_bytes

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_traffic_as_of(self, obj: SubAccount) -> str | None:
        traffic = self._traffic(obj)
        return (
            None
            if traffic is None
            else serializers.DateTimeField().to_representation(traffic.as_of)
        )
