"""What a batch of invoicing did: the one result type of drafting a month
(`invoices_generate_for_period`), issuing a month (`invoices_issue_for_period`), finalizing
drafts (`invoices_finalize`, `invoices_finalize_due`) and billing a month on request
(`invoices_generate`). Each batch fills the lists that apply to it; the hourly cycle's
`CycleResult` holds the drafting and the finalizing batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from billing.invoicing.engine import Failure
from billing.invoicing.periods import Period
from billing.models import Invoice
from core.errors import ApplicationError


@dataclass
class BatchResult:
    period: Period | None = None  # the month billed (None: drafts of any month finalized)
    created: list[int] = field(default_factory=list)  # drafts created (invoice ids)
    refreshed: list[int] = field(default_factory=list)  # drafts re-rated
    # left as they were: issued already, finalized or discarded meanwhile by another run, or
    # a draft this run already rated (delivered again after a kill)
    unchanged: list[int] = field(default_factory=list)
    issued: list[Invoice] = field(default_factory=list)  # finalized by this batch
    already: list[Invoice] = field(default_factory=list)  # issuing a month: issued before
    discarded: list[int] = field(default_factory=list)  # drafts left with nothing billable
    voided: list[int] = field(default_factory=list)  # customer ids: period voided, left alone
    failed: list[Failure] = field(default_factory=list)  # could not be billed, and why
    skipped: list[Failure] = field(default_factory=list)  # nothing billable: no invoice
    # why each failed or skipped one was refused, to raise for a batch of one: by invoice id
    # when finalizing drafts, by customer id when issuing a month
    errors: dict[int, ApplicationError] = field(default_factory=dict)

    @property
    def finalized(self) -> list[int]:
        """Ids of the invoices this batch finalized."""
        return [invoice.pk for invoice in self.issued]

    @property
    def invoice_ids(self) -> list[int]:
        """Every invoice of the batch's customers, in the order reported: drafts created,
        refreshed and left alone, then invoices issued now and before."""
        return [
            *self.created,
            *self.refreshed,
            *self.unchanged,
            *(invoice.pk for invoice in (*self.issued, *self.already)),
        ]

    def merge(self, other: BatchResult) -> None:
        """Add `other`'s outcomes to this one (a batch run in parts)."""
        for name in (
            "created",
            "refreshed",
            "unchanged",
            "issued",
            "already",
            "discarded",
            "voided",
            "failed",
            "skipped",
        ):
            getattr(self, name).extend(getattr(other, name))
        self.errors.update(other.errors)
