"""Usage as stored: integer bytes per UTC hour and per reseller-local day, sync runs, usage
alert rules with the alerts they fired, the allocation ledger (prepaid traffic sent
upstream, exactly once) and each IPFoxy sub-account's traffic counters as last read."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinLengthValidator, MinValueValidator
from django.db import models

from accounts.crypto import EncryptedJSONField
from accounts.models import Customer, Provider, Reseller, SubAccount, UpstreamAccount
from accounts.tenancy import TenantQuerySet

GIB = 1_073_741_824
GB = 1_000_000_000


class UsageHour(models.Model):
    """Bytes a sub-account used in one UTC hour `[hour_start, hour_start + 1h)`."""

    tenant_path = "sub_account__customer__reseller"

    sub_account = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="hours")
    hour_start = models.DateTimeField(help_text="UTC, on the hour")
    bytes = models.BigIntegerField()
    raw_value = models.CharField(max_length=40, blank=True, help_text="As the upstream sent it")
    raw_unit = models.CharField(max_length=8, blank=True)
    revision = models.PositiveIntegerField(
        default=0, help_text="How often the upstream changed this bucket after first sync"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sub_account", "hour_start"], name="usage_hour_unique_bucket"
            ),
            models.CheckConstraint(condition=models.Q(bytes__gte=0), name="usage_hour_bytes_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.sub_account_id} {self.hour_start:%Y-%m-%d %H:00}Z: {self.bytes} B"


class UsageDay(models.Model):
    """Bytes a sub-account used on one calendar day in its reseller's timezone."""

    tenant_path = "sub_account__customer__reseller"

    sub_account = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="days")
    day = models.DateField(help_text="Calendar day in the reseller's timezone")
    bytes = models.BigIntegerField()
    revision = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sub_account", "day"], name="usage_day_unique_bucket"),
            models.CheckConstraint(condition=models.Q(bytes__gte=0), name="usage_day_bytes_gte_0"),
        ]
        indexes = [models.Index(fields=["day", "sub_account"])]

    def __str__(self) -> str:
        return f"{self.sub_account_id} {self.day}: {self.bytes} B"


class ResellerUsageDay(models.Model):
    """A rollup of `UsageDay`: bytes of all a reseller's sub-accounts on one local day, in
    `slot` = sub-account id % `usage.services.rollup.SLOTS` (several rows a day, so syncs of
    different sub-accounts seldom wait for the same row). The reseller-wide series reads
    these rows, a few per day, instead of every sub-account's day.

    Kept exactly by the one writer of days (`usage.services.storage.days_recompute` adds
    each day's change in the same transaction); `rebuild_usage_rollup` recomputes it."""

    tenant_path = "reseller"

    reseller = models.ForeignKey(Reseller, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="Calendar day in the reseller's timezone")
    slot = models.PositiveSmallIntegerField()
    bytes = models.BigIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reseller", "day", "slot"], name="reseller_usage_day_unique_slot"
            ),
        ]

    def __str__(self) -> str:
        return f"reseller {self.reseller_id} {self.day} slot {self.slot}: {self.bytes} B"


class SyncRun(models.Model):
    """One sync of one upstream account or sub-account: what was asked, done and went wrong.

    A sync requested through the API is recorded `queued` before its task runs (`queued_at`
    set, `started_at` empty); the task then fills that same row. Syncs started any other
    way (beat, commands, admin) are created `running`.
    """

    tenant_path = "upstream_account__reseller"

    class Kind(models.TextChoices):
        USAGE = "usage", "Usage"
        SNAPSHOT = "snapshot", "Snapshot"
        DISCOVERY = "discovery", "Sub-account discovery"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    upstream_account = models.ForeignKey(
        UpstreamAccount, on_delete=models.CASCADE, related_name="sync_runs"
    )
    sub_account = models.ForeignKey(
        SubAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="sync_runs"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.USAGE)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    pages = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)  # empty while queued
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        # Queued runs (not started yet) first on every database.
        ordering = [models.F("started_at").desc(nulls_first=True), "-pk"]
        indexes = [
            models.Index(fields=["sub_account", "-started_at"]),
            models.Index(fields=["upstream_account", "status", "-started_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} sync #{self.pk} ({self.status})"


class UpstreamSubAccount(models.Model):
    """A sub-account as the upstream lists it (IPFoxy `get-sub-account-list`).

    Discovery keeps this list so staff can attach unassigned upstream sub-accounts to
    customers, and keeps the cumulative counters (first seen and latest) to cross-check the
    hourly buckets against the upstream's own total.
    """

    tenant_path = "upstream_account__reseller"

    upstream_account = models.ForeignKey(
        UpstreamAccount, on_delete=models.CASCADE, related_name="discovered_sub_accounts"
    )
    upstream_id = models.CharField(max_length=128)
    sub_account = models.ForeignKey(
        SubAccount,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The Flowbill sub-account with this upstream id, once attached to a customer.",
    )
    enabled = models.BooleanField(default=True)
    is_main = models.BooleanField(default=False, help_text="The reseller's own main account")
    used_bytes = models.BigIntegerField(default=0, help_text="Cumulative, at `seen_at`")
    remaining_bytes = models.BigIntegerField(default=0)
    upstream_created_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    baseline_used_bytes = models.BigIntegerField(default=0, help_text="Cumulative, first seen")
    baseline_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["upstream_account", "upstream_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["upstream_account", "upstream_id"], name="upstream_sub_account_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.upstream_id


class LedgerSnapshot(models.Model):
    """BytesFlows account counters at `taken_at`, stored once (unique per sub-account+time).

    `usage_bytes` is what this snapshot attributed to the hours since the previous one.
    The latest snapshot's totals give the remaining traffic for display and alerts.
    """

    tenant_path = "sub_account__customer__reseller"

    sub_account = models.ForeignKey(
        SubAccount, on_delete=models.PROTECT, related_name="ledger_snapshots"
    )
    taken_at = models.DateTimeField()
    total_traffic = models.BigIntegerField()
    available_traffic = models.BigIntegerField()
    balance = models.DecimalField(max_digits=20, decimal_places=6)
    currency = models.CharField(max_length=3, blank=True)
    record_count = models.PositiveIntegerField(default=0)
    usage_bytes = models.BigIntegerField(default=0)
    forfeited_bytes = models.BigIntegerField(
        default=0, help_text="Unused traffic of grants that expired since the previous snapshot"
    )
    is_baseline = models.BooleanField(
        default=False, help_text="First snapshot of the account: counters recorded"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-taken_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["sub_account", "taken_at"], name="ledger_snapshot_unique_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sub_account_id} @ {self.taken_at:%Y-%m-%d %H:%M}Z"


class LedgerRecordState(models.Model):
    """The last metered state of one BytesFlows grant record (per sub-account + record id).

    `traffic_used` is the high-water mark: a counter that goes backwards raises an anomaly
    and does not lower it, so a glitch that later recovers is never counted twice.
    """

    tenant_path = "sub_account__customer__reseller"

    sub_account = models.ForeignKey(
        SubAccount, on_delete=models.PROTECT, related_name="ledger_records"
    )
    record_id = models.CharField(max_length=64)
    order_id = models.CharField(max_length=64, blank=True)
    source_type = models.CharField(max_length=16, blank=True)
    traffic = models.BigIntegerField()
    traffic_used = models.BigIntegerField()
    active = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    forfeited_bytes = models.BigIntegerField(default=0)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sub_account", "record_id"], name="ledger_record_unique_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sub_account_id} record {self.record_id}"


class UsageAnomaly(models.Model):
    """Something in upstream data that sync refused to turn into usage, kept for review."""

    tenant_path = "sub_account__customer__reseller"

    class Kind(models.TextChoices):
        COUNTER_DECREASED = "counter_decreased", "Counter went backwards"
        CROSS_CHECK_MISMATCH = "cross_check_mismatch", "Buckets disagree with counters"

    sub_account = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="anomalies")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    record_id = models.CharField(max_length=64, blank=True)
    previous_value = models.BigIntegerField(null=True, blank=True)
    current_value = models.BigIntegerField(null=True, blank=True)
    detected_at = models.DateTimeField()
    snapshot = models.ForeignKey(
        LedgerSnapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="anomalies"
    )
    resolved = models.BooleanField(default=False)
    note = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-detected_at", "-pk"]
        verbose_name_plural = "usage anomalies"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.sub_account_id}"


class UsageAlertRule(models.Model):
    """A customer's usage threshold: a share of a monthly traffic quota, or remaining
    BytesFlows traffic below some GB. Fires at most once per period (`UsageAlert`)."""

    tenant_path = "customer__reseller"

    class Kind(models.TextChoices):
        QUOTA_SHARE = "quota_share", "Share of a monthly traffic quota"
        REMAINING_BELOW = "remaining_below", "BytesFlows remaining traffic below"

    class Unit(models.IntegerChoices):
        GIB = GIB, "1 GB = 1,073,741,824 bytes (1024 MB)"
        GB = GB, "1 GB = 1,000,000,000 bytes"

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="usage_alert_rules"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.QUOTA_SHARE)
    quota_gb = models.DecimalField(
        "monthly quota (GB)",
        max_digits=20,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.000001"))],
        help_text="Quota rules: the customer's traffic quota per month.",
    )
    percent = models.PositiveSmallIntegerField(
        "alert at (% of quota)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Quota rules: e.g. 80 or 100.",
    )
    remaining_gb = models.DecimalField(
        "alert below (GB remaining)",
        max_digits=20,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Remaining-traffic rules: BytesFlows available traffic below this.",
    )
    unit_bytes = models.PositiveBigIntegerField(
        "bytes per GB", choices=Unit.choices, default=Unit.GIB
    )
    sub_account = models.ForeignKey(
        SubAccount,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only this sub-account; empty: all of the customer's (BytesFlows ones for "
        "remaining-traffic rules).",
    )
    notify_customer = models.BooleanField(
        "email the customer", default=True, help_text="Off: the alert shows on the dashboard only."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["customer", "kind", "percent", "remaining_gb", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="quota_share")
                | (models.Q(quota_gb__gt=0) & models.Q(percent__gt=0)),
                name="usage_alert_rule_quota_fields",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="remaining_below") | models.Q(remaining_gb__gte=0),
                name="usage_alert_rule_remaining_fields",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.QUOTA_SHARE:
            quota = "?" if self.quota_gb is None else f"{self.quota_gb.normalize():f}"
            return f"{self.percent}% of {quota} GB per month"
        remaining = "?" if self.remaining_gb is None else f"{self.remaining_gb.normalize():f}"
        return f"under {remaining} GB remaining"

    def clean(self) -> None:
        """Each kind takes its own fields and refuses the other kind's (admin and API
        alike); remaining-traffic rules watch BytesFlows sub-accounts only."""
        errors = {}
        if self.kind == self.Kind.QUOTA_SHARE:
            if not self.quota_gb:
                errors["quota_gb"] = "A quota rule needs the monthly quota."
            if not self.percent:
                errors["percent"] = "A quota rule needs the share that triggers it."
            if self.remaining_gb is not None:
                errors["remaining_gb"] = "Only for remaining_below rules; leave it empty."
        else:
            if self.remaining_gb is None:
                errors["remaining_gb"] = "A remaining-traffic rule needs the GB threshold."
            for name in ("quota_gb", "percent"):
                if getattr(self, name) is not None:
                    errors[name] = "Only for quota_share rules; leave it empty."
            if (
                self.sub_account_id
                and self.sub_account.upstream_account.provider != Provider.BYTESFLOWS
            ):
                errors["sub_account"] = (
                    "Remaining-traffic rules watch BytesFlows sub-accounts only."
                )
        if (
            self.sub_account_id
            and self.customer_id
            and self.sub_account.customer_id != self.customer_id
        ):
            errors["sub_account"] = "This sub-account belongs to another customer."
        if errors:
            raise ValidationError(errors)


class UsageAlert(models.Model):
    """A rule that fired in one period. Unique per (rule, period): re-syncs and concurrent
    checks can never fire (or email) the same threshold twice in a period."""

    tenant_path = "rule__customer__reseller"

    class EmailStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        OFF = "off", "Not emailed"

    rule = models.ForeignKey(UsageAlertRule, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateField(help_text="First day of the month (reseller's timezone)")
    fired_at = models.DateTimeField()
    measured_bytes = models.BigIntegerField(help_text="Used (quota) or remaining traffic")
    threshold_bytes = models.BigIntegerField()
    message = models.CharField(max_length=300)
    email_status = models.CharField(
        max_length=10, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_error = models.CharField(max_length=500, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    #: When the current send claimed the email (`core.outbox`): a claim older than
    #: `STALE_CLAIM_AFTER` belongs to a dead worker and is sent again (`usage.alerts`).
    email_claimed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-fired_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "period_start"], name="usage_alert_once_per_rule_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.period_start:%Y-%m})"


class UpstreamWriteStatus(models.TextChoices):
    """The states of a recorded upstream write (`usage.services.upstream_writes`)."""

    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"
    NEEDS_REVIEW = "needs_review", "Needs review"
    SUPERSEDED = "superseded", "Superseded"


class UpstreamWrite(models.Model):
    """What every recorded upstream write carries: the row is committed before the request,
    claimed with a lease for each send, and settled by the upstream's answer
    (`usage.services.upstream_writes`, the machinery `Allocation` pioneered)."""

    Status = UpstreamWriteStatus

    created_by = models.CharField(
        max_length=160, help_text="`login <username>`, `key <prefix>` or `system`"
    )
    status = models.CharField(
        max_length=12, choices=UpstreamWriteStatus.choices, default=UpstreamWriteStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Sends claimed so far")
    maybe_applied = models.BooleanField(
        default=False,
        help_text="A send may have reached the upstream and its outcome is not known yet",
    )
    next_attempt_at = models.DateTimeField(
        help_text="Pending: when it may be sent next (a send in flight holds it until then)"
    )
    error_code = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True, help_text="Last send claimed")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(
        null=True, blank=True, help_text="When it became confirmed, failed or needs_review"
    )

    class Meta:
        abstract = True


class Allocation(UpstreamWrite):
    """Prepaid traffic allocated to an IPFoxy sub-account upstream: the ledger, exactly once.

    The row is committed, with its own `idempotency_key`, before the upstream request is sent
    (`usage.services.allocations`); every send of it, a retry or a recovery after a crash,
    carries that same key, so the upstream applies it at most once and a resend learns the
    outcome of an earlier one. `flow_mb` is what is sent (`bytes` / the upstream account's
    `mb_bytes` when the row was made), so a later change of `mb_bytes` never changes a resend.

    `pending` until the upstream answers; then `confirmed`, or `failed` when the upstream
    refused it and so applied nothing, or `needs_review` when its outcome stayed unknown
    too long (staff check the upstream; a resend with the same key settles it).
    """

    tenant_path = "sub_account__customer__reseller"

    class Reason(models.TextChoices):
        MANUAL = "manual", "Manual (staff or reseller API)"
        INITIAL = "initial", "Initial (provisioning)"
        ORDER = "order", "Order"
        AUTO_TOPUP = "auto_topup", "Automatic top-up"

    class Expiry(models.IntegerChoices):
        NEVER = 0, "Never expires"
        DAYS_30 = 30, "30 days"
        DAYS_90 = 90, "90 days"
        DAYS_180 = 180, "180 days"
        DAYS_360 = 360, "360 days"

    sub_account = models.ForeignKey(
        SubAccount, on_delete=models.PROTECT, related_name="allocations"
    )
    idempotency_key = models.CharField(
        max_length=25,
        unique=True,
        editable=False,
        validators=[MinLengthValidator(10)],
        help_text="Sent with every request for this allocation (IPFoxy: 10-25 characters)",
    )
    bytes = models.BigIntegerField(help_text="A whole number of the upstream's MB, in bytes")
    flow_mb = models.BigIntegerField(help_text="The upstream MB sent: bytes / mb_bytes")
    expires_in_days = models.PositiveSmallIntegerField(
        choices=Expiry.choices, default=Expiry.NEVER, help_text="0: the traffic never expires"
    )
    reason = models.CharField(max_length=12, choices=Reason.choices, default=Reason.MANUAL)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(bytes__gt=0) & models.Q(flow_mb__gt=0),
                name="allocation_amount_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(expires_in_days__in=[0, 30, 90, 180, 360]),
                name="allocation_expiry_known",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="confirmed") | models.Q(confirmed_at__isnull=False),
                name="allocation_confirmed_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["sub_account", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.flow_mb} MB to {self.sub_account_id} ({self.status})"


class Provisioning(UpstreamWrite):
    """A sub-account Flowbill creates upstream (IPFoxy `create-sub-account`), exactly once.

    Committed with its generated `account` name, password (encrypted) and idempotency key
    before the request; every send carries the same three, so a resend after a crash or an
    unknown outcome replays the first creation instead of making a second account. When the
    upstream confirms it, the `SubAccount` is created in the same transaction and linked here,
    and `initial_bytes` (if any) goes through the allocation ledger.
    """

    tenant_path = "customer__reseller"

    upstream_account = models.ForeignKey(
        UpstreamAccount, on_delete=models.PROTECT, related_name="provisionings"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="provisionings")
    label = models.CharField(max_length=200, blank=True)
    account = models.CharField(
        max_length=15, validators=[MinLengthValidator(10)], help_text="The upstream name"
    )
    secret = EncryptedJSONField(default=dict, help_text="The proxy `password`; encrypted")
    idempotency_key = models.CharField(
        max_length=25, unique=True, editable=False, validators=[MinLengthValidator(10)]
    )
    initial_bytes = models.BigIntegerField(default=0)
    expires_in_days = models.PositiveSmallIntegerField(default=0)
    sub_account = models.OneToOneField(
        SubAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="provisioning",
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["upstream_account", "account"], name="provisioning_unique_account"
            ),
            models.CheckConstraint(
                condition=models.Q(initial_bytes__gte=0), name="provisioning_initial_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.account} for {self.customer_id} ({self.status})"


class AccessChange(UpstreamWrite):
    """Cutting off or restoring one IPFoxy sub-account's proxy access upstream: `block` sets
    a throwaway password and clears the IP whitelist, `restore` sets a new password (shown to
    the customer) and the whitelist Flowbill kept. Both upstream writes set values, so a
    resend repeats them harmlessly; a newer change of the same sub-account supersedes a
    pending one (at most one pending per sub-account)."""

    tenant_path = "sub_account__customer__reseller"

    class Action(models.TextChoices):
        BLOCK = "block", "Block (rotate password, clear whitelist)"
        RESTORE = "restore", "Restore (new password, whitelist back)"

    sub_account = models.ForeignKey(
        SubAccount, on_delete=models.PROTECT, related_name="access_changes"
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    reason = models.CharField(
        max_length=40, help_text="customer_suspended, customer_reinstated, sub_account_closed"
    )
    secret = EncryptedJSONField(
        default=dict, help_text="The `password` and `ip_whitelist` to set; encrypted"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["sub_account"],
                condition=models.Q(status="pending"),
                name="access_change_one_pending",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.sub_account_id} ({self.status})"


class SubAccountTraffic(models.Model):
    """An IPFoxy sub-account's traffic as the upstream last counted it: allocated, used and
    remaining bytes at `as_of` (one row per sub-account, replaced by every read).

    Written for every sub-account of an upstream account at once from `get-sub-account-list`
    (`usage.services.traffic.sub_account_traffic_refresh`, 100 per request) and by each read
    of one sub-account on request (`get-sub-account-flow`), whichever is newer; read by
    whatever shows or acts on remaining traffic without asking the upstream.
    """

    tenant_path = "sub_account__customer__reseller"

    sub_account = models.OneToOneField(
        SubAccount, on_delete=models.CASCADE, primary_key=True, related_name="traffic"
    )
    allocated_bytes = models.BigIntegerField(help_text="used + remaining (expired not counted)")
    used_bytes = models.BigIntegerField()
    remaining_bytes = models.BigIntegerField()
    upstream_enabled = models.BooleanField(
        null=True,
        help_text="IPFoxy status 1 (True) or 2, disabled (False); empty: not known yet "
        "(a read of one sub-account does not say)",
    )
    as_of = models.DateTimeField(help_text="When Flowbill received these figures (UTC)")

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "sub-account traffic"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(used_bytes__gte=0)
                & models.Q(remaining_bytes__gte=0)
                & models.Q(allocated_bytes=models.F("used_bytes") + models.F("remaining_bytes")),
                name="sub_account_traffic_counters_agree",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sub_account_id}: {self.remaining_bytes} B left ({self.as_of:%Y-%m-%d %H:%M})"


class UpstreamPoolBalance(models.Model):
    """An IPFoxy upstream account's main traffic pool as last read (`residential-data`): what
    the reseller bought and has not yet allocated to sub-accounts. Written by each traffic
    refresh (one request), shown on the dashboard."""

    tenant_path = "upstream_account__reseller"

    upstream_account = models.OneToOneField(
        UpstreamAccount, on_delete=models.CASCADE, primary_key=True, related_name="pool_balance"
    )
    total_bytes = models.BigIntegerField()
    remaining_bytes = models.BigIntegerField()
    as_of = models.DateTimeField(help_text="When Flowbill received these figures (UTC)")

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.upstream_account_id}: {self.remaining_bytes} B in the pool"
