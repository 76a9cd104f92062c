"""The credit note PDF: `CreditNoteDocument` in, PDF bytes out (pure, like the invoice's).

Same page, fonts and building blocks as the invoice: seller and logo on the left, the note's
number, date and the credited invoice on the right, the customer, the lines credited (net,
tax, total) and the totals, with the reason and memo.
"""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import Spacer
from reportlab.platypus.flowables import Flowable

from billing.credit_notes.document import CreditNoteDocument
from billing.pdf import formatting as fmt
from billing.pdf.flowables import Column, DataTable, Gap, Panel, Row, Text
from billing.pdf.fonts import register_fonts
from billing.pdf.pages import footer_decorator
from billing.pdf.render import (
    _cell,
    _header_row,
    _party,
    build_pdf,
    title_panel,
    totals_rows,
)
from billing.pdf.theme import ACCENT, INK, MUTED, RULE, WIDTH


def _header(doc: CreditNoteDocument) -> Panel:
    meta = [
        ("Credit note", doc.number),
        ("Issue date", fmt.date_label(doc.issued_on)),
        ("Credits invoice", doc.invoice_number),
        ("Invoice date", fmt.date_label(doc.invoice_issued_on)),
        ("Invoice total", fmt.money(doc.invoice_total, doc.currency)),
        ("Time zone", doc.timezone),
    ]
    return title_panel(doc.seller, doc.logo, "CREDIT NOTE", meta)


def _lines_table(doc: CreditNoteDocument) -> DataTable:
    cur = doc.currency
    header = _header_row(
        ["Description", f"Amount ({cur})", f"Tax ({fmt.percent(doc.tax_rate)})", f"Total ({cur})"]
    )
    rows = [
        Row(
            [
                [Text(line.description)],
                _cell(fmt.amount(line.amount, cur)),
                _cell(fmt.amount(line.tax, cur)),
                _cell(fmt.amount(line.total, cur)),
            ]
        )
        for line in doc.lines
    ]
    widths = [WIDTH - 90 * mm, 30 * mm, 30 * mm, 30 * mm]
    aligns = ["LEFT", "RIGHT", "RIGHT", "RIGHT"]
    return DataTable(header, rows, widths, aligns, ink=INK, rule=RULE)


def _totals(doc: CreditNoteDocument) -> Panel:
    cur = doc.currency
    notes: list[Text | Gap] = []
    if doc.reason:
        notes += [Text("Reason", 9, bold=True, color=ACCENT), Text(doc.reason)]
    if doc.memo:
        notes += [Gap(2 * mm), Text("Memo", 9, bold=True, color=ACCENT)]
        notes += [Text(line) for line in doc.memo.splitlines() if line.strip()]
    notes += [Gap(2 * mm), Text(f"Amounts in {cur}.", 7.5, color=MUTED)]
    labels, amounts = totals_rows(doc, "Total credited")
    return Panel(
        [
            Column(0, WIDTH - 94 * mm, notes),
            Column(WIDTH - 86 * mm, 40 * mm, labels),
            Column(WIDTH - 46 * mm, 46 * mm - 4, amounts),
        ],
        ink=INK,
        space_before=3 * mm,
    )


def _story(doc: CreditNoteDocument) -> list[Flowable]:
    return [
        _header(doc),
        Spacer(1, 7 * mm),
        Panel([Column(0, WIDTH, _party(doc.buyer, "CREDIT TO"))], ink=INK),
        Spacer(1, 6 * mm),
        _lines_table(doc),
        _totals(doc),
    ]


def render_credit_note_pdf(doc: CreditNoteDocument) -> bytes:
    """Render the credit note to A4 PDF bytes; the same document always gives the same bytes."""
    register_fonts()
    return build_pdf(
        _story(doc),
        title=f"Credit note {doc.number}",
        author=doc.seller.name,
        subject=f"Credit note {doc.number} for {doc.buyer.name} (invoice {doc.invoice_number})",
        on_page=footer_decorator(f"{doc.seller.name} \u00b7 Credit note {doc.number}"),
    )
