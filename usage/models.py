"""Usage as stored: integer bytes per UTC hour and per reseller-local day, and sync runs."""

from django.db import models

from accounts.models import SubAccount, UpstreamAccount
from accounts.tenancy import TenantQuerySet


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


class SyncRun(models.Model):
    """One sync of one upstream account or sub-account: what was asked, done and went wrong."""

    tenant_path = "upstream_account__reseller"

    class Kind(models.TextChoices):
        USAGE = "usage", "Usage"
        SNAPSHOT = "snapshot", "Snapshot"
        DISCOVERY = "discovery", "Sub-account discovery"

    class Status(models.TextChoices):
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
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
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
