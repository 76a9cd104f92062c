"""Invoice PDFs: `render_invoice_pdf(doc) -> bytes` (see `billing.pdf.render`)."""

from billing.pdf.render import render_invoice_pdf

__all__ = ["render_invoice_pdf"]
