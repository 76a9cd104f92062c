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
from billing.pdf.flowables import LEADING, Column, DataTable, Gap, Panel, Row, Text
from billing.pdf.fonts import register_fonts
from billing.pdf.pages import footer_decorator
from billing.pdf.render import _cell, _header_row, _logo, _party, build_pdf
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
    half = WIDTH / 2
    keys: list[Text | Gap] = [Gap(20 * LEADING + 4)]
    values: list[Text | Gap] = [
        Text("CREDIT NOTE", 20, bold=True, color=ACCENT, align="RIGHT"),
        Gap(4),
    ]
    for key, value in meta:
        keys.append(Text(key, 8, bold=True, color=MUTED, line_height=8.5 * LEADING))
        values.append(Text(value, 8.5, align="RIGHT"))
    return Panel(
        [
            Column(0, half - 6 * mm, _party(doc.seller, None), image=_logo(doc.logo)),
            Column(half, 30 * mm, keys),
            Column(half + 30 * mm, half - 30 * mm, values),
        ],
        ink=INK,
    )


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
    labels: list[Text | Gap] = [
        Text("Subtotal", 9),
        Text(f"Tax ({fmt.percent(doc.tax_rate)})", 9),
        Gap(8),
        Text("Total credited", 11, bold=True, color=ACCENT),
    ]
    amounts: list[Text | Gap] = [
        Text(fmt.money(doc.subtotal, cur), 9, align="RIGHT"),
        Text(fmt.money(doc.tax, cur), 9, align="RIGHT"),
        Gap(8),
        Text(fmt.money(doc.total, cur), 11, bold=True, color=ACCENT, align="RIGHT"),
    ]
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
