"""The invoice as a document: frozen data that the PDF and the email are rendered from.

Invoicing builds an `InvoiceDocument` from an invoice's frozen snapshot and lines
(`billing.invoicing.rendering.invoice_document`); `billing.pdf.render_invoice_pdf` and
`billing.emails.build_invoice_email` read only this, never the ORM, so an old invoice
re-renders identically from what was frozen at finalization (`layout_version` picks the
layout it was issued with).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

#: 1: the first layout. 2: the header also prints the payment terms ("Net 14 days").
LAYOUT_VERSION = 2


@dataclass(frozen=True)
class PartyBlock:
    name: str
    address_lines: tuple[str, ...] = ()
    tax_id: str = ""
    email: str = ""


@dataclass(frozen=True)
class DocumentLine:
    kind: str  # base_fee | usage | minimum | adjustment
    description: str
    amount: Decimal  # quantised to the currency
    group: str = ""  # the subscription the line belongs to, e.g. "Pro plan - IPFoxy"
    sub_account: str = ""
    quantity: Decimal | None = None
    unit: str = ""  # "GB", "package", "month", ...
    unit_price: Decimal | None = None
    detail: str = ""  # tier breakdown / proration note, e.g. "Tier 2: 100 GB - 500 GB"


@dataclass(frozen=True)
class UsageRow:
    sub_account: str
    upstream: str
    bytes: int
    gb: Decimal  # bytes / unit bytes, for display


@dataclass(frozen=True)
class InvoiceDocument:
    layout_version: int
    number: str | None  # None while draft: rendered as "DRAFT"
    status: str  # draft | finalized | paid | void
    issued_on: dt.date | None
    due_on: dt.date | None
    period_start: dt.date  # first day of the period
    period_end: dt.date  # last day of the period (inclusive, for display)
    timezone: str  # the reseller's billing timezone
    currency: str
    seller: PartyBlock
    buyer: PartyBlock
    lines: tuple[DocumentLine, ...]
    usage: tuple[UsageRow, ...]
    subtotal: Decimal
    tax_rate: Decimal  # percent
    tax: Decimal
    total: Decimal
    unit_note: str  # e.g. "1 GB = 1,073,741,824 bytes"
    payment_instructions: str = ""
    logo: bytes | None = None  # PNG/JPEG bytes of the reseller's logo
    replaces: str = ""  # number of the voided invoice this one bills again ("Replaces ...")
    payment_terms_days: int | None = None  # net days it was issued with (layout 2 prints them)
    # The customer balance applied at issue, after tax: printed under the total with the
    # "Amount due" when above 0 (so invoices without it render as before).
    balance_applied: Decimal = Decimal(0)
