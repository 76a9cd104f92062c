"""The credit note's frozen snapshot and the document rendered from it.

The snapshot is taken when the note is issued: the credited invoice's frozen seller and buyer
(the parties of the invoice it corrects), its number, date and total, the timezone and logo.
`credit_note_document` reads only the snapshot and the note's own rows, so a note re-renders
identically later.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from billing.credit_notes.document import CreditDocumentLine, CreditNoteDocument
from billing.credit_notes.models import CreditNote, CreditNoteLine
from billing.invoicing.rendering import _logo_bytes, _party
from billing.models import Invoice


def credit_note_snapshot(*, invoice: Invoice) -> dict[str, Any]:
    frozen = invoice.snapshot or {}
    return {
        "seller": frozen.get("seller", {}),
        "buyer": frozen.get("buyer", {}),
        "timezone": frozen.get("timezone", invoice.reseller.timezone),
        "logo_path": frozen.get("logo_path", ""),
        "invoice": {
            "number": invoice.number,
            "issued_on": invoice.issued_on.isoformat() if invoice.issued_on else None,
            "total": str(invoice.total),
        },
    }


def credit_note_document(
    credit_note: CreditNote, *, lines: list[CreditNoteLine] | None = None
) -> CreditNoteDocument:
    snapshot = credit_note.snapshot or {}
    invoice = snapshot.get("invoice", {})
    if lines is None:
        lines = list(credit_note.lines.order_by("position"))
    issued = invoice.get("issued_on")
    return CreditNoteDocument(
        number=credit_note.number,
        issued_on=credit_note.issued_on,
        timezone=snapshot.get("timezone", "UTC"),
        currency=str(credit_note.currency),
        seller=_party(snapshot.get("seller", {})),
        buyer=_party(snapshot.get("buyer", {})),
        invoice_number=invoice.get("number") or "",
        invoice_issued_on=dt.date.fromisoformat(issued) if issued else None,
        invoice_total=Decimal(invoice.get("total", "0")),
        reason=CreditNote.Reason(credit_note.reason).label if credit_note.reason else "",
        memo=credit_note.memo,
        lines=tuple(
            CreditDocumentLine(
                description=line.description, amount=line.amount, tax=line.tax, total=line.total
            )
            for line in lines
        ),
        subtotal=credit_note.subtotal,
        tax_rate=credit_note.tax_rate,
        tax=credit_note.tax,
        total=credit_note.total,
        logo=_logo_bytes(snapshot.get("logo_path", "")),
    )
