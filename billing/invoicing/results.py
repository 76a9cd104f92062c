"""What a batch of invoicing did: the one result type of drafting a month
(`invoices_generate_for_period`), issuing a month (`invoices_issue_for_period`), finalizing
drafts (`invoices_finalize`, `invoices_finalize_due`) and billing a month on request
(`invoices_generate`). Each batch fills the lists that apply to it; the hourly cycle's
`CycleResult` holds the drafting and the finalizing batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from billing.invoicing.engine import Failure
from billing.invoicing.periods import Period
from billing.models import Invoice
from core.errors import ApplicationError


@dataclass
class BatchResult:
    """Each list has one meaning in every kind of batch. Invoices are named by invoice id
    (`created`, `refreshed`, `resumed`, `discarded`) or given whole (`issued`, `already`);
    `voided` holds customer ids; every `Failure` names its customer and, when there is one,
    its draft (`customer_id`, `invoice_id`), and carries the error to raise for a batch of
    one (`error_for`, which takes the key by name)."""

    period: Period | None = None  # the month billed (None: drafts of any month finalized)
    created: list[int] = field(default_factory=list)  # drafts created (invoice ids)
    refreshed: list[int] = field(default_factory=list)  # drafts re-rated
    # drafts this run had already rated (delivered again after a kill), left as they were
    resumed: list[int] = field(default_factory=list)
    issued: list[Invoice] = field(default_factory=list)  # finalized by this batch
    # issued before this batch (or meanwhile by another run), left alone
    already: list[Invoice] = field(default_factory=list)
    discarded: list[int] = field(default_factory=list)  # drafts left with nothing billable
    voided: list[int] = field(default_factory=list)  # customer ids: period voided, left alone
    failed: list[Failure] = field(default_factory=list)  # could not be billed, and why
    skipped: list[Failure] = field(default_factory=list)  # nothing billable: no invoice
    # finalizing drafts: no longer a draft when locked (finalized or discarded meanwhile by
    # another run), `invoice_not_draft`; left alone
    not_draft: list[Failure] = field(default_factory=list)

    @property
    def finalized(self) -> list[int]:
        """Ids of the invoices this batch finalized."""
        return [invoice.pk for invoice in self.issued]

    @property
    def invoice_ids(self) -> list[int]:
        """Every invoice of the batch's customers, in the order reported: drafts created,
        refreshed and resumed, then invoices issued now and before."""
        return [
            *self.created,
            *self.refreshed,
            *self.resumed,
            *(invoice.pk for invoice in (*self.issued, *self.already)),
        ]

    def error_for(
        self, *, customer_id: int | None = None, invoice_id: int | None = None
    ) -> ApplicationError | None:
        """The error of the customer `customer_id`, or of the draft `invoice_id` (exactly one
        of them), that this batch failed, skipped or found no longer a draft; None when it
        has none. For a batch of one, to raise."""
        if (customer_id is None) == (invoice_id is None):
            raise TypeError("error_for takes exactly one of customer_id and invoice_id")
        for outcome in (*self.failed, *self.skipped, *self.not_draft):
            key = outcome.customer_id if invoice_id is None else outcome.invoice_id
            if key == (customer_id if invoice_id is None else invoice_id):
                return outcome.error or ApplicationError(outcome.code, outcome.message)
        return None

    def merge(self, other: BatchResult) -> None:
        """Add `other`'s outcomes to this one (a batch run in parts): every list."""
        for each in fields(self):
            if each.name != "period":
                getattr(self, each.name).extend(getattr(other, each.name))
