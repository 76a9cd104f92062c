"""The credit note as a document: frozen data the PDF and the email are rendered from.

Built by `billing.credit_notes.rendering.credit_note_document` from the note's snapshot and
lines; the PDF (`billing.pdf.render_credit_note_pdf`) and the email read only this.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from billing.document import PartyBlock


@dataclass(frozen=True)
class CreditDocumentLine:
    description: str
    amount: Decimal  # net
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class CreditNoteDocument:
    number: str
    issued_on: dt.date
    timezone: str
    currency: str
    seller: PartyBlock
    buyer: PartyBlock
    invoice_number: str
    invoice_issued_on: dt.date | None
    invoice_total: Decimal
    reason: str  # the reason's label ("Order change"), or ""
    memo: str
    lines: tuple[CreditDocumentLine, ...]
    subtotal: Decimal
    tax_rate: Decimal  # percent, the credited invoice's
    tax: Decimal
    total: Decimal
    logo: bytes | None = None


@dataclass(frozen=True)
class InvoiceCredit:
    """Printed under an invoice's totals when credit notes or payments exist (API re-renders
    only): "Amount credited" (when any), "Paid" (payments minus refunds, when any) and
    "Balance due"."""

    amount_credited: Decimal
    balance_due: Decimal
    amount_paid: Decimal = Decimal(0)
