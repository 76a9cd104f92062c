"""The abstract models that billing's documents build on: a gapless yearly number series
(`YearlySequence`: invoices, credit notes) and an email delivery (`EmailDelivery`: invoices,
credit notes, credit-limit notices). `billing.models` and the credit notes' models both
subclass them, so they sit below both.
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.utils import timezone

from accounts.models import Reseller
from accounts.tenancy import TenantQuerySet


class YearlySequence(models.Model):
    """The last number issued per reseller and year of one gapless series (`billing.sequences`
    takes the next ones under the row's lock). Concrete models add the unique constraint."""

    tenant_path = "reseller"

    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="+")
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.reseller_id}/{self.year}: {self.last_number}"


def wall_clock() -> dt.datetime:
    """`timezone.now()`, looked up at each call like `auto_now` does (a default given as
    `timezone.now` itself is the function bound at import, which a clock swapped in later,
    as the reliability drills' workers do, never reaches)."""
    return timezone.now()


class EmailDelivery(models.Model):
    """One email of a document (invoice, credit note) to its recipients, claimed under a row
    lock so it is sent once (`billing.outbox`). Sequence 1 is queued when the document is
    issued; staff resends add 2, 3, ... Concrete models add the document's foreign key and
    name it in `document_field`."""

    document_field: str

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    sequence = models.PositiveSmallIntegerField(default=1)
    requested_by = models.CharField(max_length=150, blank=True)
    recipients = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    queued_at = models.DateTimeField()
    #: Wall clock of its last task message: the insert (whose commit publishes the first),
    #: then each redispatch by the recovery sweep (`billing.outbox`), which takes it by a
    #: conditional update of this field.
    dispatched_at = models.DateTimeField(default=wall_clock)
    redispatches = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=300, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{getattr(self, self.document_field)} email #{self.sequence} ({self.status})"
