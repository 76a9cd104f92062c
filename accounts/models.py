"""Who is who: resellers, their staff, customers, upstream accounts and sub-accounts."""

from decimal import Decimal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from accounts.crypto import EncryptedJSONField
from accounts.tenancy import TenantQuerySet
from accounts.upstream_urls import validate_upstream_base_url
from accounts.validators import (
    MAX_CC_EMAILS,
    validate_cc_emails,
    validate_country,
    validate_currency,
    validate_reminder_offsets,
    validate_sender_domain,
    validate_timezone,
)

IPFOXY_DEFAULT_BASE_URL = "https://apis.ipfoxy.com"
BYTESFLOWS_DEFAULT_BASE_URL = "https://api.bytesflows.com"
MIB = 1_048_576


class Reseller(models.Model):
    tenant_path = "pk"

    name = models.CharField("legal name", max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    address = models.TextField(blank=True)
    tax_id = models.CharField("tax id", max_length=64, blank=True)
    currency = models.CharField(
        max_length=3, default="USD", validators=[validate_currency], help_text="ISO 4217 code"
    )
    timezone = models.CharField(
        "billing timezone",
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="IANA name, e.g. Asia/Shanghai. Days and months are cut in this zone.",
    )
    invoice_prefix = models.CharField(
        max_length=12,
        default="INV",
        validators=[RegexValidator(r"^[A-Z0-9]{1,12}$", "Use 1-12 capital letters or digits.")],
    )
    payment_terms_days = models.PositiveSmallIntegerField(
        "payment terms (net days)",
        default=14,
        validators=[MaxValueValidator(365)],
        help_text="Invoices are due this many days after issue, unless the customer has its own "
        "terms. Printed on the invoice.",
    )
    reminder_offsets = models.JSONField(
        "payment reminders (days from the due date)",
        default=list,
        blank=True,
        validators=[validate_reminder_offsets],
        help_text="When unpaid invoices are reminded, in days relative to the due date, e.g. "
        "[-3, 0, 7, 14]: 3 days before, on the day, a week and two weeks after. Each goes out "
        "once per invoice and stops when it is paid or voided. Empty: no reminders.",
    )
    suspend_after_overdue_days = models.PositiveSmallIntegerField(
        "suspend after overdue (days)",
        null=True,
        blank=True,
        help_text="Suspend a customer automatically once a finalized invoice is overdue by "
        "this many days (reinstated when its overdue invoices are paid). Empty: never.",
    )
    grace_period_days = models.PositiveSmallIntegerField(
        "invoice grace period (days)",
        default=2,
        help_text="Drafts stay open this long after the period ends, for late usage.",
    )
    sender_email = models.EmailField(
        blank=True,
        help_text="Replies to invoice and alert emails go here. It is the From address only "
        "when its domain is verified (FLOWBILL_SENDER_DOMAINS or the verified sender domain); "
        "otherwise mail is from the platform's address under the reseller's name.",
    )
    verified_sender_domain = models.CharField(
        max_length=253,
        blank=True,
        validators=[validate_sender_domain],
        help_text="Set by the platform operator once this domain sends through the platform "
        "(SPF/DKIM): a sender email on it is then used as From. Empty: none.",
    )
    payment_instructions = models.TextField(blank=True)
    logo = models.ImageField(upload_to="logos/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class User(AbstractUser):
    """A login. Reseller staff carry the reseller they work for; superusers carry none."""

    reseller = models.ForeignKey(
        Reseller,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="staff",
        help_text="Staff of this reseller see and change only its data.",
    )


class Customer(models.Model):
    tenant_path = "reseller"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    class TrafficPolicy(models.TextChoices):
        MANUAL = "manual", "Manual (staff allocate traffic)"
        CREDIT_LIMIT = "credit_limit", "Automatic top-ups within a credit limit"

    class SuspendedBy(models.TextChoices):
        STAFF = "staff", "Staff or reseller API"
        OVERDUE = "overdue", "Automatically: invoice overdue"

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="customers")
    name = models.CharField(max_length=200)
    email = models.EmailField("billing email")
    cc_emails = models.CharField(
        f"further billing emails (Cc, at most {MAX_CC_EMAILS})",
        max_length=500,
        blank=True,
        validators=[validate_cc_emails],
        help_text=f"Comma-separated, at most {MAX_CC_EMAILS}; invoices, credit notes and usage "
        "alerts go to these in Cc.",
    )
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(
        max_length=2,
        blank=True,
        validators=[validate_country],
        help_text="ISO 3166-1 alpha-2, upper case (e.g. DE)",
    )
    tax_id = models.CharField("tax id", max_length=64, blank=True)
    tax_rate = models.DecimalField(
        "tax rate (%)",
        max_digits=7,
        decimal_places=4,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    currency = models.CharField(
        max_length=3,
        validators=[validate_currency],
        help_text="ISO 4217; stored on every customer (created without one: the reseller's "
        "at that time). A later change of the reseller's currency does not change it.",
    )
    payment_terms_days = models.PositiveSmallIntegerField(
        "payment terms (net days)",
        null=True,
        blank=True,
        validators=[MaxValueValidator(365)],
        help_text="This customer's own terms; empty: the reseller's.",
    )
    status = models.CharField(
        max_length=12,
        choices=Status.choices,
        default=Status.ACTIVE,
        help_text="Changed only by suspending and reinstating (suspend/reinstate).",
    )
    suspended_at = models.DateTimeField(null=True, blank=True, editable=False)
    suspension_reason = models.CharField(max_length=500, blank=True, editable=False)
    suspended_by = models.CharField(
        max_length=10, choices=SuspendedBy.choices, blank=True, editable=False
    )
    traffic_policy = models.CharField(
        max_length=12,
        choices=TrafficPolicy.choices,
        default=TrafficPolicy.MANUAL,
        help_text="credit_limit: Flowbill allocates `topup_bytes` to each active IPFoxy "
        "sub-account whose remaining traffic falls below `topup_below_bytes`, while the "
        "customer's exposure stays within `credit_limit`.",
    )
    credit_limit = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="In the customer's currency; required for the credit_limit policy.",
    )
    topup_bytes = models.PositiveBigIntegerField(
        "top-up chunk (bytes)",
        null=True,
        blank=True,
        help_text="Allocated at once when a sub-account runs low (a whole number of MB).",
    )
    topup_below_bytes = models.PositiveBigIntegerField(
        "top up below (bytes)",
        null=True,
        blank=True,
        help_text="The low-water mark of remaining traffic per sub-account.",
    )
    credit_limit_reached_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a top-up was last refused by the credit limit (the webhook and email "
        "went out then); cleared when a top-up fits again.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["reseller", "name"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(traffic_policy="credit_limit")
                | (
                    models.Q(credit_limit__isnull=False)
                    & models.Q(topup_bytes__gt=0)
                    & models.Q(topup_below_bytes__isnull=False)
                ),
                name="customer_credit_limit_policy_complete",
            ),
            models.CheckConstraint(
                condition=(models.Q(status="suspended") & models.Q(suspended_at__isnull=False))
                | (models.Q(status="active") & models.Q(suspended_at__isnull=True)),
                name="customer_suspended_has_time",
            ),
            # Always a stored code: nothing reads "empty, so the reseller's" (accounts 0008).
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="customer_currency_code"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.traffic_policy == self.TrafficPolicy.CREDIT_LIMIT:
            needed = {
                "credit_limit": self.credit_limit is None,
                "topup_bytes": not self.topup_bytes,
                "topup_below_bytes": self.topup_below_bytes is None,
            }
            missing = {
                name: "Required for the credit_limit traffic policy."
                for name, gap in needed.items()
                if gap
            }
            if missing:
                raise ValidationError(missing)

    @property
    def effective_payment_terms_days(self) -> int:
        """Net days of this customer's invoices: its own terms, else the reseller's."""
        if self.payment_terms_days is not None:
            return self.payment_terms_days
        return self.reseller.payment_terms_days

    @property
    def billing_emails(self) -> list[str]:
        """The billing email first (`To`), then the `cc_emails` (`Cc`)."""
        extra = [e.strip() for e in self.cc_emails.split(",") if e.strip()]
        return [self.email, *extra]


class Provider(models.TextChoices):
    IPFOXY = "ipfoxy", "IPFoxy"
    BYTESFLOWS = "bytesflows", "BytesFlows"


class UpstreamAccount(models.Model):
    """The reseller's connection to one upstream provider."""

    tenant_path = "reseller"

    reseller = models.ForeignKey(
        Reseller, on_delete=models.PROTECT, related_name="upstream_accounts"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    name = models.CharField(max_length=100)
    base_url = models.URLField(max_length=300, blank=True, help_text="Empty: the provider's.")
    credentials = EncryptedJSONField(
        blank=True,
        default=dict,
        help_text="IPFoxy: api_id and api_token. BytesFlows tokens sit on the sub-accounts.",
    )
    cost_per_gb = models.DecimalField(
        "upstream cost per GB",
        max_digits=20,
        decimal_places=6,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    mb_bytes = models.PositiveBigIntegerField(
        "bytes in one upstream MB",
        default=MIB,
        help_text="For providers that report MB: 1,048,576 (default) or 1,000,000.",
    )
    requests_per_minute = models.PositiveIntegerField(
        default=50,
        help_text="Request budget shared by all workers (IPFoxy allows 60 per minute).",
    )
    gateway_host = models.CharField(
        "proxy gateway host",
        max_length=253,
        blank=True,
        help_text="Where customers point their proxy client, e.g. gate.example.com; with the "
        "port it makes the ready-to-paste proxy string. Empty: none shown.",
    )
    gateway_port = models.PositiveIntegerField(
        "proxy gateway port",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
    )
    proxy_username_format = models.CharField(
        max_length=60,
        default="customer-{account}",
        help_text="The proxy login of a sub-account; {account} is its upstream id (IPFoxy: "
        "customer-{account}).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["reseller", "name"], name="upstream_account_unique_name"
            ),
            models.CheckConstraint(
                condition=models.Q(mb_bytes__gt=0), name="upstream_account_mb_bytes_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"

    def clean(self) -> None:
        # Only http(s), no user info, a host on the provider's allowlist (SSRF guard).
        validate_upstream_base_url(provider=self.provider, base_url=self.base_url)
        if self.proxy_username_format.count("{account}") != 1 or any(
            part in self.proxy_username_format.replace("{account}", "") for part in "{}:@/ "
        ):
            raise ValidationError(
                {
                    "proxy_username_format": "Put {account} exactly once, and no spaces, "
                    "braces, ':', '@' or '/' (e.g. customer-{account})."
                }
            )
        if bool(self.gateway_host) != (self.gateway_port is not None):
            raise ValidationError(
                {"gateway_port": "Give both the gateway host and its port, or neither."}
            )

    @property
    def effective_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.provider == Provider.IPFOXY:
            return IPFOXY_DEFAULT_BASE_URL
        return BYTESFLOWS_DEFAULT_BASE_URL


class SubAccount(models.Model):
    """One upstream sub-account, held by one customer at a time.

    `customer` is the current holder, from `active_from` (null: since its first usage)
    through `active_to` (its last day, set when it is closed; null while open), days in the
    reseller's timezone. Earlier holders are `SubAccountAssignment` rows. Usage of a day is
    billed to whoever held the sub-account that day; only the lifecycle services
    (`accounts.sub_accounts`: move, close, delete) change the holder and the dates.
    """

    tenant_path = "customer__reseller"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="sub_accounts")
    upstream_account = models.ForeignKey(
        UpstreamAccount, on_delete=models.PROTECT, related_name="sub_accounts"
    )
    upstream_id = models.CharField(
        "upstream identifier",
        max_length=128,
        help_text="IPFoxy: the sub-account's `account`. BytesFlows: the account's name or id.",
    )
    credentials = EncryptedJSONField(
        blank=True, default=dict, help_text="BytesFlows: the account's own token."
    )
    proxy_login = EncryptedJSONField(
        blank=True,
        default=dict,
        editable=False,
        help_text="IPFoxy: the proxy `password` Flowbill set (provisioned, or rotated on "
        "reinstatement) and the `ip_whitelist` it restores; encrypted.",
    )
    access = models.CharField(
        max_length=8,
        choices=[("open", "Open"), ("blocked", "Blocked")],
        default="open",
        editable=False,
        help_text="Blocked: its upstream password was rotated and its IP whitelist cleared "
        "(customer suspended, or sub-account closed).",
    )
    provisioned_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Created upstream by Flowbill."
    )
    label = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    active_from = models.DateField(
        null=True,
        blank=True,
        help_text="First day of the current customer's period (reseller's timezone); empty: "
        "since its first usage.",
    )
    active_to = models.DateField(
        null=True,
        blank=True,
        help_text="Its last day (inclusive), set when it is closed; empty while open.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["customer__name", "upstream_id", "pk"]
        constraints = [
            # A closed sub-account keeps its id for the records; the id is free for a new one.
            models.UniqueConstraint(
                fields=["upstream_account", "upstream_id"],
                condition=~models.Q(status="closed"),
                name="sub_account_unique_open_upstream_id",
                violation_error_message="Another open sub-account of this upstream account "
                "has this upstream id.",
            ),
        ]

    def __str__(self) -> str:
        return self.label or self.upstream_id

    # The proxy login, IPFoxy only (a BytesFlows sub-account's login is not Flowbill's to
    # know: all three are None there).

    @property
    def proxy_username(self) -> str | None:
        """The login customers give their proxy client: the upstream account's
        `proxy_username_format` with `{account}` replaced by the upstream id."""
        if self.upstream_account.provider != Provider.IPFOXY:
            return None
        return self.upstream_account.proxy_username_format.replace("{account}", self.upstream_id)

    @property
    def proxy_password(self) -> str | None:
        """The proxy password Flowbill set or read upstream; None when it does not know it,
        or while access is blocked (the password upstream is a throwaway then)."""
        if self.upstream_account.provider != Provider.IPFOXY or self.access == "blocked":
            return None
        return (self.proxy_login or {}).get("password") or None

    @property
    def proxy_url(self) -> str | None:
        """`http://user:password@host:port`, ready to paste, when the upstream account has a
        gateway host and port and the password is known; else None."""
        upstream = self.upstream_account
        username, password = self.proxy_username, self.proxy_password
        if not (upstream.gateway_host and upstream.gateway_port and username and password):
            return None
        user, secret = quote(username, safe=""), quote(password, safe="")
        return f"http://{user}:{secret}@{upstream.gateway_host}:{upstream.gateway_port}"

    def clean(self) -> None:
        errors = {}
        if (
            self.customer_id
            and self.upstream_account_id
            and self.customer.reseller_id != self.upstream_account.reseller_id
        ):
            errors["upstream_account"] = (
                "This upstream account belongs to another reseller than the customer."
            )
        if self.active_from and self.active_to and self.active_to < self.active_from:
            errors["active_to"] = "Active to must not be before active from."
        if errors:
            raise ValidationError(errors)


class SubAccountAssignment(models.Model):
    """An earlier holder of a sub-account: `customer` held it on the days
    `[starts_on, ends_on)` (reseller's timezone; `starts_on` empty: since its first usage).

    The current holder's period is on the sub-account itself, so one that never moved has
    no rows here. Rows are written only by `accounts.sub_accounts.sub_account_move`, under
    the sub-account's row lock; a sub-account's periods never overlap (on PostgreSQL also an
    exclusion constraint, `sub_account_assignment_no_overlap`).
    """

    tenant_path = "customer__reseller"

    sub_account = models.ForeignKey(
        SubAccount, on_delete=models.CASCADE, related_name="assignments"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="sub_account_assignments"
    )
    starts_on = models.DateField(
        null=True, blank=True, help_text="First day held; empty: since its first usage."
    )
    ends_on = models.DateField(help_text="First day no longer held (exclusive).")
    moved_by = models.CharField(max_length=200, blank=True, help_text="Who moved it away.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["sub_account", "ends_on"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_on__isnull=True)
                | models.Q(ends_on__gt=models.F("starts_on")),
                name="sub_account_assignment_not_empty",
            ),
            models.UniqueConstraint(
                fields=["sub_account", "ends_on"], name="sub_account_assignment_unique_end"
            ),
        ]
        indexes = [models.Index(fields=["customer", "ends_on"], name="sub_account_holder_customer")]

    def __str__(self) -> str:
        return f"{self.sub_account_id} held by {self.customer_id} until {self.ends_on}"


class ApiKey(models.Model):
    """A key for the REST API, hashed at rest; the full key is shown once, at creation.

    Every key belongs to a reseller (so `ApiKey.objects.for_reseller(r)` finds all of them);
    a customer key also names one of that reseller's customers and sees only its data. The
    `scope` column makes the kind explicit and a check constraint keeps it consistent with
    `customer`. Lookup is by the public `prefix`; only the SHA-256 of the key is stored
    (keys carry 256 random bits, so a slow hash would add nothing). A key records who created
    it (`created_by_user` or `created_by_key`); revoking a key revokes the keys it minted
    (`accounts.api_keys.api_key_revoke`).
    """

    tenant_path = "reseller"

    class Scope(models.TextChoices):
        RESELLER = "reseller", "Reseller"
        CUSTOMER = "customer", "Customer"

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="api_keys")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="api_keys"
    )
    scope = models.CharField(max_length=10, choices=Scope.choices)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField("SHA-256 of the key", max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    #: Who created the key: a staff login (admin, browsable API), or the key whose request
    #: minted it. Both empty: a command (`create_api_key`), the demo, or a key from before
    #: creators were recorded.
    created_by_user = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="created by (login)",
    )
    # PROTECT: keys are revoked, never deleted, and this link is what revoking a key follows
    # to revoke the keys it minted; a deleted creator must not silently cut it.
    created_by_key = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="minted_keys",
        verbose_name="created by (API key)",
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(scope="reseller", customer__isnull=True)
                    | models.Q(scope="customer", customer__isnull=False)
                ),
                name="api_key_scope_matches_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    def __repr__(self) -> str:
        return f"<ApiKey {self.pk} prefix={self.prefix} scope={self.scope}>"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def created_by(self) -> str:
        """Who created it, for lists: `login alice`, `key k7x2m9qa`, or `not recorded` (a
        command, the demo, or a key older than the record)."""
        if self.created_by_key_id:
            return f"key {self.created_by_key.prefix}"
        if self.created_by_user_id:
            return f"login {self.created_by_user.get_username()}"
        return "not recorded"
