"""The invoice cycle: periods, drafts, finalization, numbering, adjustments and delivery.

Split by sub-domain; import each service from its module (`billing.invoicing.cycle`,
`billing.invoicing.finalizing`, ...): this package re-exports nothing, so importing one module
loads only what that module needs. Modules depend one way:
periods, numbering, context, compute/adjustments, rendering, transitions, pdf_pool, delivery
<- engine (the one finalization engine) <- results (`BatchResult`, what every batch
returns) <- finalizing <- issuing, cycle <- refresh <- voiding
(checked by tests/billing/test_invoicing_structure.py).
"""
