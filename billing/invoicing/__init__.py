"""The invoice cycle: periods, drafts, finalization, numbering, adjustments and delivery.

Split by sub-domain; import the public services from here. Modules depend one way:
periods, numbering, context, compute/adjustments, rendering, transitions, pdf_pool, delivery
<- engine (the one finalization engine) <- results (`BatchResult`, what every batch
returns) <- finalizing <- issuing, cycle <- refresh <- voiding
(checked by tests/billing/test_invoicing_structure.py).
"""

from billing.invoicing.compute import InvoiceComputation, invoice_compute, invoice_preview
from billing.invoicing.cycle import (
    CycleResult,
    invoice_create_draft,
    invoice_cycle_run,
    invoice_draft_discard,
    invoice_draft_stale,
    invoice_refresh_draft,
    invoices_generate_for_period,
)
from billing.invoicing.delivery import (
    invoice_email_resend,
    invoice_email_send,
    invoice_pdf_content,
    invoice_pdf_render,
    invoice_pdf_store,
    invoice_pdfs_render_missing,
)
from billing.invoicing.engine import Failure
from billing.invoicing.finalizing import (
    invoice_finalize,
    invoices_due,
    invoices_finalize,
    invoices_finalize_due,
)
from billing.invoicing.issuing import (
    invoice_issue,
    invoice_reissue,
    invoices_issue_for_period,
)
from billing.invoicing.numbering import (
    invoice_number_format,
    invoice_numbers_next,
)
from billing.invoicing.periods import (
    Period,
    period_bounds,
    period_containing,
    period_due_at,
    period_has_ended,
    period_last_closed,
    period_parse,
)
from billing.invoicing.refresh import invoice_drafts_refresh, invoice_drafts_rerate
from billing.invoicing.rendering import invoice_document, invoice_snapshot
from billing.invoicing.results import BatchResult
from billing.invoicing.voiding import invoice_void
from billing.payments.services import invoice_mark_paid

__all__ = [
    "BatchResult",
    "CycleResult",
    "Failure",
    "InvoiceComputation",
    "Period",
    "invoice_compute",
    "invoice_create_draft",
    "invoice_cycle_run",
    "invoice_document",
    "invoice_draft_discard",
    "invoice_draft_stale",
    "invoice_drafts_refresh",
    "invoice_drafts_rerate",
    "invoice_email_resend",
    "invoice_email_send",
    "invoice_finalize",
    "invoice_issue",
    "invoice_mark_paid",
    "invoice_number_format",
    "invoice_numbers_next",
    "invoice_pdf_content",
    "invoice_pdf_render",
    "invoice_pdf_store",
    "invoice_pdfs_render_missing",
    "invoice_preview",
    "invoice_refresh_draft",
    "invoice_reissue",
    "invoice_snapshot",
    "invoice_void",
    "invoices_due",
    "invoices_finalize",
    "invoices_finalize_due",
    "invoices_generate_for_period",
    "invoices_issue_for_period",
    "period_bounds",
    "period_containing",
    "period_due_at",
    "period_has_ended",
    "period_last_closed",
    "period_parse",
]
