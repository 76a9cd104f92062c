"""Invoice and credit note PDFs: `render_invoice_pdf(doc) -> bytes` (see `billing.pdf.render`)
and `render_credit_note_pdf(doc) -> bytes` (see `billing.pdf.credit_note`)."""

from billing.pdf.credit_note import render_credit_note_pdf
from billing.pdf.render import render_invoice_pdf

__all__ = ["render_credit_note_pdf", "render_invoice_pdf"]
