"""Plans, subscriptions and invoices.

Money: prices are `Decimal(20, 6)`; amounts are stored with 4 decimal places (enough for
every ISO 4217 exponent) and quantised to the currency's minor unit by `billing.rating`.
Finalized invoices are immutable here, in the model layer: `save()`, `delete()` and the
querysets' `update()`/`delete()`/`bulk_create()` refuse to change what was issued. Status
changes go through `billing.invoicing` services, which check `INVOICE_TRANSITIONS` and
write an `InvoiceEvent` each.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.validators import MinValueValidator
from django.db import models

from accounts.models import Customer, Reseller, SubAccount, UpstreamAccount
from accounts.tenancy import TenantQuerySet
from accounts.validators import validate_currency
from billing.abstract_models import EmailDelivery, YearlySequence
from billing.abstract_models import wall_clock as wall_clock  # migrations name it here
from billing.write_once import amount_field
from core.errors import ApplicationError

GIB = 1_073_741_824
GB = 1_000_000_000
ZERO = Decimal(0)


def _price_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=20, decimal_places=6, **kwargs)


class Plan(models.Model):
    """What a reseller sells: a monthly base fee plus a usage price by one pricing model."""

    tenant_path = "reseller"

    class PricingModel(models.TextChoices):
        GRADUATED = "graduated", "Graduated tiers"
        VOLUME = "volume", "Volume tiers"
        PACKAGE = "package", "Packages"

    class Unit(models.IntegerChoices):
        GIB = GIB, "1 GB = 1,073,741,824 bytes (1024 MB)"
        GB = GB, "1 GB = 1,000,000,000 bytes"

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="plans")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    base_fee = _price_field(default=ZERO, validators=[MinValueValidator(ZERO)])
    pricing_model = models.CharField(
        max_length=12, choices=PricingModel.choices, default=PricingModel.GRADUATED
    )
    minimum_charge = _price_field(
        default=ZERO,
        validators=[MinValueValidator(ZERO)],
        help_text="Monthly minimum of base fee + usage; prorated for partial months.",
    )
    unit_bytes = models.PositiveBigIntegerField(
        "bytes per billed GB", choices=Unit.choices, default=Unit.GIB
    )
    package_size = _price_field(null=True, blank=True, help_text="Package model: GB per package.")
    package_price = _price_field(null=True, blank=True, validators=[MinValueValidator(ZERO)])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["reseller", "code"]
        constraints = [
            models.UniqueConstraint(fields=["reseller", "code"], name="plan_unique_code"),
            models.CheckConstraint(
                condition=~models.Q(pricing_model="package")
                | (models.Q(package_size__gt=0) & models.Q(package_price__gte=0)),
                name="plan_package_fields",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PlanTier(models.Model):
    """One tier of a graduated or volume plan; `up_to` GB is inclusive, null = no limit."""

    tenant_path = "plan__reseller"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="tiers")
    position = models.PositiveSmallIntegerField()
    up_to = _price_field(null=True, blank=True, help_text="GB; empty = no upper limit")
    unit_price = _price_field(validators=[MinValueValidator(ZERO)])
    flat_fee = _price_field(default=ZERO, validators=[MinValueValidator(ZERO)])

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["plan", "position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "position"], name="plan_tier_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code} tier {self.position}: up to {self.up_to or '∞'} GB"


class Subscription(models.Model):
    """A customer on a plan for `[starts_on, ends_on)`, for all or one upstream account.

    `ends_on` is exclusive (the first day no longer covered), like every period here;
    `ends_on == starts_on` is never active. Subscriptions of one customer never overlap when
    their scopes can meet (so no byte is billed by two plans): that rule and the others live
    in `billing.plans.subscriptions`, which the admin, API and commands all go through.
    """

    tenant_path = "customer__reseller"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    upstream_account = models.ForeignKey(
        UpstreamAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="subscriptions",
        help_text="Only this upstream account's sub-accounts; empty = all of them.",
    )
    starts_on = models.DateField(help_text="First day covered (reseller's timezone)")
    ends_on = models.DateField(
        null=True, blank=True, help_text="First day no longer covered; empty = open-ended"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["customer", "starts_on", "pk"]
        constraints = [
            # ends_on == starts_on: a cancelled subscription, never active (billed nothing).
            models.CheckConstraint(
                condition=models.Q(ends_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="subscription_ends_on_or_after_start",
            ),
        ]
        indexes = [models.Index(fields=["customer", "starts_on"])]

    def __str__(self) -> str:
        return f"{self.customer} on {self.plan.code} from {self.starts_on}"

    @property
    def scope_label(self) -> str:
        return self.upstream_account.name if self.upstream_account_id else "all upstreams"

    def active_window(self, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date] | None:
        """The part of `[start, end)` this subscription covers, or None."""
        lo = max(start, self.starts_on)
        hi = min(end, self.ends_on) if self.ends_on else end
        return (lo, hi) if lo < hi else None


class InvoiceKind(models.TextChoices):
    """`period`: the month's invoice (one live per customer and period, by the engine);
    `top_up`: a prepaid top-up (`billing.topups`), issued at once, outside the monthly rules."""

    PERIOD = "period", "Monthly invoice"
    TOP_UP = "top_up", "Top-up"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    FINALIZED = "finalized", "Finalized"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


# The only status changes there are. Void is terminal and keeps its number. Paid goes back to
# finalized only when a refund reopens a balance due (`billing.payments.services`).
INVOICE_TRANSITIONS: dict[str, frozenset[str]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.FINALIZED}),
    InvoiceStatus.FINALIZED: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.PAID: frozenset({InvoiceStatus.FINALIZED}),
    InvoiceStatus.VOID: frozenset(),
}

# Fields that may still change once an invoice left draft (everything else is frozen).
INVOICE_MUTABLE_AFTER_ISSUE = frozenset(
    {"status", "paid_at", "voided_at", "overdue_at", "pdf", "pdf_rendered_at", "updated_at"}
)


def _immutable(message: str) -> ApplicationError:
    return ApplicationError("invoice_immutable", message)


class InvoiceQuerySet(TenantQuerySet):
    """Bulk writes cannot get around immutability either."""

    def update(self, **kwargs: Any) -> int:
        if set(kwargs) - INVOICE_MUTABLE_AFTER_ISSUE and (
            self.exclude(status=InvoiceStatus.DRAFT).exists()
        ):
            raise _immutable("Issued invoices cannot be changed.")
        if "status" in kwargs:
            raise _immutable("Invoice status changes only through the invoicing services.")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        if self.exclude(status=InvoiceStatus.DRAFT).exists():
            raise _immutable("Issued invoices cannot be deleted; void them instead.")
        return super().delete()


class Invoice(models.Model):
    """One customer's bill for one calendar month `[period_start, period_end)` (reseller tz)."""

    tenant_path = "reseller"
    Status = InvoiceStatus
    Kind = InvoiceKind

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=10, choices=InvoiceKind.choices, default=InvoiceKind.PERIOD)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    period_start = models.DateField(help_text="First day of the period (reseller's timezone)")
    period_end = models.DateField(help_text="First day after the period (exclusive)")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    status = models.CharField(
        max_length=12, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT
    )
    number = models.CharField(max_length=40, null=True, blank=True)
    sequence_year = models.PositiveSmallIntegerField(null=True, blank=True)
    sequence_number = models.PositiveIntegerField(null=True, blank=True)
    issued_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    subtotal = amount_field(default=ZERO)
    tax_rate = models.DecimalField("tax rate (%)", max_digits=7, decimal_places=4, default=ZERO)
    tax = amount_field(default=ZERO)
    total = amount_field(default=ZERO)
    balance_applied = amount_field(
        default=ZERO,
        help_text="The customer's balance applied when it was issued, after tax (never more "
        "than the total): amount due = total - balance applied (`billing.balance`).",
    )
    snapshot = models.JSONField(
        default=dict, blank=True, help_text="Seller and buyer details frozen at finalization"
    )
    layout_version = models.PositiveSmallIntegerField(default=1)
    pdf = models.FileField(upload_to="invoices/", blank=True, max_length=300)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    overdue_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it became overdue (the day after its due date, amount still due); "
        "`invoice.overdue` was sent then (billing.dunning).",
    )
    replaces = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_by",
        help_text="The voided invoice of the same customer and period that this one bills "
        "again (printed as 'Replaces <number>').",
    )

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-period_start", "customer__name", "pk"]
        constraints = [
            # Creation is exactly-once per customer and period among live invoices: a voided
            # invoice keeps its number but frees the period so it can be billed again. Top-up
            # invoices are outside the rule (a customer buys as many as it wants).
            models.UniqueConstraint(
                fields=["customer", "period_start"],
                condition=~models.Q(status="void") & models.Q(kind="period"),
                name="invoice_unique_live_customer_period",
            ),
            models.UniqueConstraint(fields=["reseller", "number"], name="invoice_unique_number"),
            models.UniqueConstraint(
                fields=["reseller", "sequence_year", "sequence_number"],
                name="invoice_unique_sequence",
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")),
                name="invoice_period_not_empty",
            ),
            models.CheckConstraint(
                condition=models.Q(status="draft") | models.Q(number__isnull=False),
                name="invoice_issued_has_number",
            ),
        ]
        indexes = [
            models.Index(fields=["reseller", "status", "period_start"]),
            models.Index(fields=["customer", "status", "period_start"]),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft #{self.pk} ({self.customer_id}, {self.period_start:%Y-%m})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        stored = self._stored(full=False)
        if stored is not None and stored["status"] != InvoiceStatus.DRAFT:
            stored = self._stored(full=True)
            update_fields = kwargs.get("update_fields")
            fields = [
                f
                for f in self._meta.concrete_fields
                if update_fields is None or f.name in update_fields or f.attname in update_fields
            ]
            for field in fields:
                if field.name in INVOICE_MUTABLE_AFTER_ISSUE:
                    continue
                if field.get_prep_value(getattr(self, field.attname)) != field.get_prep_value(
                    stored[field.attname]
                ):
                    raise _immutable(
                        f"Invoice {stored['number']} is {stored['status']}: "
                        f"{field.name} cannot change."
                    )
        if (
            stored is not None
            and stored["status"] != self.status
            and self.status not in INVOICE_TRANSITIONS[stored["status"]]
        ):
            raise ApplicationError(
                "invalid_transition",
                f"An invoice cannot go from {stored['status']} to {self.status}.",
            )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        stored = self._stored(full=False)
        if stored is not None and stored["status"] != InvoiceStatus.DRAFT:
            raise _immutable("Issued invoices cannot be deleted; void them instead.")
        return super().delete(*args, **kwargs)

    def _stored(self, *, full: bool) -> dict[str, Any] | None:
        """The row as stored: only its status for drafts, every field once issued."""
        if self.pk is None:
            return None
        fields = [f.attname for f in self._meta.concrete_fields] if full else ["status"]
        return Invoice.objects.row_of(self).order_by().values(*fields).first()


class _DraftChildQuerySet(TenantQuerySet):
    """Rows that belong to an invoice change only while the invoice is a draft."""

    def _refuse_if_issued(self) -> None:
        if self.exclude(invoice__status=InvoiceStatus.DRAFT).exists():
            raise _immutable("Lines and usage of issued invoices cannot be changed.")

    def update(self, **kwargs: Any) -> int:
        self._refuse_if_issued()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._refuse_if_issued()
        return super().delete()

    def bulk_create(self, objs, *args: Any, **kwargs: Any):
        objs = list(objs)
        ids = {o.invoice_id for o in objs}
        # The model's own guard: the invoices these rows belong to, whoever asks.
        issued = Invoice.unscoped.filter(pk__in=ids).exclude(status=InvoiceStatus.DRAFT)
        if ids and issued.exists():
            raise _immutable("Issued invoices cannot get new lines or usage.")
        return super().bulk_create(objs, *args, **kwargs)


class _DraftChild(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_if_issued()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        self._refuse_if_issued()
        return super().delete(*args, **kwargs)

    def _refuse_if_issued(self) -> None:
        status = (
            # The model's own guard: its invoice's stored status, whoever asks.
            Invoice.unscoped.filter(pk=self.invoice_id).order_by().values_list("status", flat=True)
        )
        if status and status[0] != InvoiceStatus.DRAFT:
            raise _immutable("Lines and usage of issued invoices cannot be changed.")


class InvoiceLine(_DraftChild):
    """One priced line. Adjustments point at the issued invoice whose period they correct."""

    tenant_path = "invoice__reseller"

    class Kind(models.TextChoices):
        BASE_FEE = "base_fee", "Base fee"
        USAGE = "usage", "Usage"
        MINIMUM = "minimum", "Minimum charge top-up"
        ADJUSTMENT = "adjustment", "Adjustment"
        TOP_UP = "top_up", "Prepaid top-up"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="lines"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    group = models.CharField(max_length=200, blank=True, help_text="Subscription heading")
    description = models.CharField(max_length=300)
    sub_account = models.ForeignKey(
        SubAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="invoice_lines"
    )
    quantity = models.DecimalField(max_digits=32, decimal_places=12, null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    unit_price = _price_field(null=True, blank=True)
    amount = amount_field()
    details = models.JSONField(default=dict, blank=True)
    adjusts_invoice = models.ForeignKey(
        Invoice,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adjusted_by_lines",
        help_text="Adjustment lines: the issued invoice whose period this corrects.",
    )

    objects = _DraftChildQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "position"], name="invoice_line_unique_position"
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="adjustment") | models.Q(adjusts_invoice__isnull=False),
                name="invoice_line_adjustment_has_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class InvoiceUsage(_DraftChild):
    """Bytes billed per sub-account and subscription (frozen with the invoice)."""

    tenant_path = "invoice__reseller"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="usage")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sub_account = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+")
    sub_account_label = models.CharField(max_length=200)
    upstream_name = models.CharField(max_length=100)
    bytes = models.BigIntegerField()

    objects = _DraftChildQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "sub_account_label", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "subscription", "sub_account"],
                name="invoice_usage_unique_sub_account",
            ),
            models.UniqueConstraint(
                fields=["invoice", "sub_account"],
                condition=models.Q(subscription__isnull=True),
                name="invoice_usage_unique_unbilled_sub_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sub_account_label}: {self.bytes} B"


class InvoiceEvent(models.Model):
    """One status change (or notable action) of an invoice: who, when, from and to."""

    tenant_path = "invoice__reseller"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    actor = models.CharField(max_length=150, blank=True, help_text="User name, or 'system'")
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status} at {self.at:%Y-%m-%d %H:%M}"


class InvoiceSequence(YearlySequence):
    """The invoices' series."""

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reseller", "year"], name="invoice_sequence_unique"),
        ]


class CreditLimitEmail(EmailDelivery):
    """The email telling a customer its credit limit stopped an automatic top-up: one per
    reaching (`reached_at`, the customer's `credit_limit_reached_at` when it was set), created
    in the transaction that sets it and sent once through `billing.outbox`
    (`billing.traffic_policy.notice`)."""

    tenant_path = "customer__reseller"
    document_field = "customer"

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="credit_limit_emails"
    )
    reached_at = models.DateTimeField()

    class Meta:
        ordering = ["-queued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "reached_at", "sequence"],
                name="credit_limit_email_unique_reaching",
            ),
        ]


class InvoiceEmail(EmailDelivery):
    """An invoice's delivery: the invoice itself (`kind=invoice`: at issue, then staff
    resends) or, once, the notice that it was voided (`kind=void_notice`). A delivery stuck
    in `sending` for 15 minutes (its worker died mid-send) is sent again by the hourly cycle:
    if the SMTP server had already accepted it, the customer gets it twice (the documented
    window), never more (`invoice_emails_redispatch`)."""

    tenant_path = "invoice__reseller"
    document_field = "invoice"

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        VOID_NOTICE = "void_notice", "Void notice"
        REMINDER = "reminder", "Payment reminder"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(
        max_length=12,
        choices=Kind.choices,
        default=Kind.INVOICE,
        help_text="The invoice with its PDF, or the notice that it was voided.",
    )
    reminder_days = models.SmallIntegerField(
        null=True,
        blank=True,
        help_text="A reminder: its day relative to the due date (e.g. -3, 0, 7); one per "
        "invoice and day (billing.dunning).",
    )
    is_resend = models.BooleanField(default=False)

    class Meta:
        ordering = ["invoice", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "sequence"], name="invoice_email_unique_sequence"
            ),
            # Voiding happens once, so does its notice.
            models.UniqueConstraint(
                fields=["invoice", "reminder_days"],
                condition=models.Q(kind="reminder"),
                name="invoice_email_one_reminder_per_day",
            ),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=models.Q(kind="void_notice"),
                name="invoice_email_one_void_notice",
            ),
        ]


# Credit notes and payments live in their own sub-packages; importing registers them with the
# billing app.
from billing.balance import models as _balance_models  # noqa: E402, F401
from billing.credit_notes import models as _credit_note_models  # noqa: E402, F401
from billing.payments import models as _payment_models  # noqa: E402, F401
from billing.topups import models as _top_up_models  # noqa: E402, F401
