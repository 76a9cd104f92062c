"""The invoice PDF layout (layout version 1): `InvoiceDocument` in, PDF bytes out.

Pure: it reads only the document (and the font files), so an invoice re-renders identically
years later from its frozen snapshot. Determinism comes from reportlab's invariant mode (fixed
dates and document id); nothing here reads the clock or draws random ids.

Speed matters (the invoice run renders thousands of these), so texts and tables are laid out
by the lean flowables of `billing.pdf.flowables` rather than reportlab's Paragraph and Table;
platypus still flows them onto pages.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Iterable
from decimal import Decimal

from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Spacer
from reportlab.platypus.flowables import Flowable

from billing.credit_notes.document import InvoiceCredit
from billing.document import DocumentLine, InvoiceDocument, PartyBlock
from billing.pdf import formatting as fmt
from billing.pdf.flowables import LEADING, Column, DataTable, Gap, Panel, Row, Text
from billing.pdf.fonts import register_fonts
from billing.pdf.pages import NumberedCanvas, page_decorator
from billing.pdf.theme import (
    ACCENT,
    BOTTOM,
    INK,
    LOGO_BOX,
    LOGO_PIXELS,
    MARGIN,
    MUTED,
    RULE,
    SHADE,
    WIDTH,
)


def _logo(data: bytes | None) -> tuple[ImageReader, float, float] | None:
    if not data:
        return None
    prepared = _prepared_logo(hashlib.sha256(data).digest(), data)
    if prepared is None:
        return None
    jpeg, width, height = prepared
    scale = min(LOGO_BOX[0] / width, LOGO_BOX[1] / height)
    return ImageReader(io.BytesIO(jpeg)), width * scale, height * scale


@functools.lru_cache(maxsize=32)
def _prepared_logo(digest: bytes, data: bytes) -> tuple[bytes, int, int] | None:
    """The logo as a JPEG of at most LOGO_PIXELS, flattened on white; None if unreadable.

    Done once per process and logo: reportlab copies JPEG data into the PDF as is, while a PNG
    is decoded and recompressed on every render (~6 ms for a 600x180 logo). Transparency is
    flattened onto white, the colour of the page behind the logo. A broken logo must never
    break the invoice, so any decoding error means "no logo".
    """
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.load()
            rgba = image.convert("RGBA")
        flat = PILImage.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        flat.thumbnail(LOGO_PIXELS, PILImage.Resampling.LANCZOS)
        out = io.BytesIO()
        flat.save(out, format="JPEG", quality=92, subsampling=0)
    except Exception:  # decoders raise many types; none may break an invoice
        return None
    width, height = flat.size
    return (out.getvalue(), width, height) if width > 0 and height > 0 else None


def _party(block: PartyBlock, heading: str | None) -> list[Text | Gap]:
    out: list[Text | Gap] = []
    if heading:
        out.append(Text(heading, 7.5, bold=True, color=MUTED))
    out.append(Text(block.name, 10.5, bold=True))
    out.extend(Text(line) for line in block.address_lines if line)
    if block.tax_id:
        out.append(Text(f"Tax ID: {block.tax_id}"))
    if block.email:
        out.append(Text(block.email, 8, color=MUTED))
    return out


def _header(doc: InvoiceDocument) -> Panel:
    meta = [("Invoice number", fmt.invoice_label(doc))]
    if doc.replaces:  # a reissue: the voided invoice it takes the place of
        meta.append(("Replaces", doc.replaces))
    meta += [
        ("Issue date", fmt.date_label(doc.issued_on)),
        ("Due date", fmt.date_label(doc.due_on)),
    ]
    if doc.layout_version >= 2 and doc.payment_terms_days is not None:
        days = doc.payment_terms_days
        meta.append(("Payment terms", "Due on receipt" if days == 0 else f"Net {days} days"))
    meta += [
        ("Billing period", fmt.period_label(doc)),
        ("Time zone", doc.timezone),
        ("Status", doc.status.capitalize()),
    ]
    return title_panel(doc.seller, doc.logo, "INVOICE", meta)


def title_panel(
    seller: PartyBlock, logo: bytes | None, title: str, meta: list[tuple[str, str]]
) -> Panel:
    """Seller (and logo) on the left; the document's title and key facts on the right."""
    half = WIDTH / 2
    keys: list[Text | Gap] = [Gap(20 * LEADING + 4)]
    values: list[Text | Gap] = [Text(title, 20, bold=True, color=ACCENT, align="RIGHT"), Gap(4)]
    for key, value in meta:
        keys.append(Text(key, 8, bold=True, color=MUTED, line_height=8.5 * LEADING))
        values.append(Text(value, 8.5, align="RIGHT"))
    return Panel(
        [
            Column(0, half - 6 * mm, _party(seller, None), image=_logo(logo)),
            Column(half, 30 * mm, keys),
            Column(half + 30 * mm, half - 30 * mm, values),
        ],
        ink=INK,
    )


def _groups(lines: Iterable[DocumentLine]) -> dict[str, list[DocumentLine]]:
    groups: dict[str, list[DocumentLine]] = {}
    for line in lines:
        groups.setdefault(line.group or "Other charges", []).append(line)
    return groups


def _header_row(labels: list[str]) -> Row:
    return Row([[Text(label, 8, bold=True, color=colors.white)] for label in labels], ACCENT)


def _lines_table(doc: InvoiceDocument) -> DataTable:
    cur = doc.currency
    header = _header_row(
        ["Description", "Quantity", "Unit", f"Unit price ({cur})", f"Amount ({cur})"]
    )
    rows: list[Row] = []
    for group, lines in _groups(doc.lines).items():
        rows.append(Row([[Text(group, bold=True)]], SHADE))
        for line in lines:
            label = line.description
            if line.sub_account:
                label += f" \u00b7 {line.sub_account}"
            description = [Text(label)]
            if line.detail:
                description.append(Text(line.detail, 7, color=MUTED))
            rows.append(
                Row(
                    [
                        description,
                        _cell(
                            "" if line.quantity is None else fmt.quantity(line.quantity, line.unit)
                        ),
                        _cell(line.unit),
                        _cell(
                            "" if line.unit_price is None else fmt.unit_price(line.unit_price, cur)
                        ),
                        _cell(fmt.amount(line.amount, cur)),
                    ]
                )
            )
        if len(lines) > 1:
            total = sum((line.amount for line in lines), start=Decimal(0))
            bold = [Text("Group total", bold=True), Text(fmt.amount(total, cur), bold=True)]
            rows.append(Row([[], [], [], [bold[0]], [bold[1]]]))
    if not rows:
        rows.append(Row([[Text("No charges in this period.", color=MUTED)]]))
    widths = [WIDTH - 100 * mm, 24 * mm, 16 * mm, 30 * mm, 30 * mm]
    aligns = ["LEFT", "RIGHT", "LEFT", "RIGHT", "RIGHT"]
    return DataTable(header, rows, widths, aligns, ink=INK, rule=RULE)


def _cell(text: str) -> list[Text]:
    return [Text(text)] if text else []


def totals_rows(doc, total_label: str = "Total") -> tuple[list[Text | Gap], list[Text | Gap]]:
    """The labels and amounts of subtotal, tax and total (an invoice or a credit note)."""
    cur = doc.currency
    labels: list[Text | Gap] = [
        Text("Subtotal", 9),
        Text(f"Tax ({fmt.percent(doc.tax_rate)})", 9),
        Gap(8),
        Text(total_label, 11, bold=True, color=ACCENT),
    ]
    amounts: list[Text | Gap] = [
        Text(fmt.money(doc.subtotal, cur), 9, align="RIGHT"),
        Text(fmt.money(doc.tax, cur), 9, align="RIGHT"),
        Gap(8),
        Text(fmt.money(doc.total, cur), 11, bold=True, color=ACCENT, align="RIGHT"),
    ]
    return labels, amounts


def _totals_and_payment(doc: InvoiceDocument, credit: InvoiceCredit | None = None) -> Panel:
    cur = doc.currency
    notes: list[Text | Gap] = [
        Text(f"Units: {doc.unit_note}. Amounts in {doc.currency}.", 7.5, color=MUTED)
    ]
    if doc.payment_instructions:
        notes += [Gap(3 * mm), Text("Payment instructions", 9, bold=True, color=ACCENT)]
        notes += [Text(line) for line in doc.payment_instructions.splitlines()]
    labels, amounts = totals_rows(doc)
    if doc.balance_applied:
        labels += [Gap(3), Text("Balance applied", 9), Text("Amount due", 9, bold=True)]
        amounts += [
            Gap(3),
            Text(fmt.money(-doc.balance_applied, cur), 9, align="RIGHT"),
            Text(fmt.money(doc.total - doc.balance_applied, cur), 9, bold=True, align="RIGHT"),
        ]
    if credit is not None:
        labels.append(Gap(3))
        amounts.append(Gap(3))
        if credit.amount_credited:
            labels.append(Text("Amount credited", 9))
            amounts.append(Text(fmt.money(-credit.amount_credited, cur), 9, align="RIGHT"))
        if credit.amount_paid:
            labels.append(Text("Paid", 9))
            amounts.append(Text(fmt.money(-credit.amount_paid, cur), 9, align="RIGHT"))
        labels.append(Text("Balance due", 9, bold=True))
        amounts.append(Text(fmt.money(credit.balance_due, cur), 9, bold=True, align="RIGHT"))
    return _TotalsPanel(
        [
            Column(0, WIDTH - 84 * mm, notes),
            Column(WIDTH - 76 * mm, 30 * mm, labels),
            Column(WIDTH - 46 * mm, 46 * mm - 4, amounts),
        ],
        ink=INK,
        space_before=3 * mm,
    )


class _TotalsPanel(Panel):
    """The totals with the accent rule above the grand total."""

    def draw(self) -> None:
        super().draw()
        y = self.height - (9 * LEADING * 2 + 3.5)
        self.canv.setStrokeColor(ACCENT)
        self.canv.setLineWidth(0.8)
        self.canv.line(WIDTH - 76 * mm, y, WIDTH, y)


def _usage_table(doc: InvoiceDocument) -> DataTable:
    header = _header_row(["Sub-account", "Upstream", "Bytes", "GB"])
    rows = [
        Row(
            [
                [Text(u.sub_account)],
                [Text(u.upstream)],
                [Text(fmt.byte_count(u.bytes))],
                [Text(fmt.gigabytes(u.gb))],
            ]
        )
        for u in doc.usage
    ]
    total_bytes = fmt.byte_count(sum(u.bytes for u in doc.usage))
    total_gb = fmt.gigabytes(sum((u.gb for u in doc.usage), start=Decimal(0)))
    rows.append(
        Row(
            [
                [Text("Total", bold=True)],
                [],
                [Text(total_bytes, bold=True)],
                [Text(total_gb, bold=True)],
            ],
            rule_above=(0.8, ACCENT),
        )
    )
    widths = [WIDTH - 96 * mm, 34 * mm, 38 * mm, 24 * mm]
    aligns = ["LEFT", "LEFT", "RIGHT", "RIGHT"]
    caption = Row([[Text("Usage by sub-account", 10, bold=True, color=ACCENT)]])
    return DataTable(header, rows, widths, aligns, ink=INK, rule=RULE, vpad=2, caption=caption)


def _story(doc: InvoiceDocument, credit: InvoiceCredit | None) -> list[Flowable]:
    story: list[Flowable] = [
        _header(doc),
        Spacer(1, 7 * mm),
        Panel([Column(0, WIDTH, _party(doc.buyer, "BILL TO"))], ink=INK),
        Spacer(1, 6 * mm),
        _lines_table(doc),
        _totals_and_payment(doc, credit),
    ]
    if doc.usage:
        story += [Spacer(1, 6 * mm), _usage_table(doc)]
    return story


def render_invoice_pdf(doc: InvoiceDocument, *, credit: InvoiceCredit | None = None) -> bytes:
    """Render the invoice to A4 PDF bytes; the same document always gives the same bytes.

    `credit` adds "Amount credited", "Paid" and "Balance due" under the total (the invoice as
    it stands after its credit notes and payments; the PDF stored and emailed at issue never
    has them)."""
    register_fonts()  # before the story: its flowables measure text as they are made
    label = fmt.invoice_label(doc)
    return build_pdf(
        _story(doc, credit),
        title=f"Invoice {label}",
        author=doc.seller.name,
        subject=f"Invoice {label} for {doc.buyer.name}",
        on_page=page_decorator(doc),
    )


def build_pdf(story: list[Flowable], *, title: str, author: str, subject: str, on_page) -> bytes:
    """Lay `story` out on A4 pages with the house margins, deterministically (invariant).
    Call `register_fonts()` before building the story."""
    buffer = io.BytesIO()
    template = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=BOTTOM,
        title=title,
        author=author,
        subject=subject,
        creator="Flowbill",
        producer="Flowbill",
        invariant=1,
        pageCompression=1,
    )
    frame = Frame(
        MARGIN, BOTTOM, WIDTH, A4[1] - MARGIN - BOTTOM, 0, 0, 0, 0, id="body", showBoundary=0
    )
    template.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=on_page)])
    template.build(story, canvasmaker=NumberedCanvas)
    return buffer.getvalue()
