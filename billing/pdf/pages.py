"""What every page carries: the status watermark, the footer, and "Page X of Y"."""

from __future__ import annotations

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from billing.document import InvoiceDocument
from billing.pdf import formatting as fmt
from billing.pdf.fonts import SANS, SANS_BOLD, runs
from billing.pdf.theme import MARGIN, MARKS, MUTED, RULE


def page_decorator(doc: InvoiceDocument):
    """Per-page drawing under the content: the status watermark and the footer's left side."""
    return footer_decorator(
        f"{doc.seller.name} \u00b7 Invoice {fmt.invoice_label(doc)}", MARKS.get(doc.status)
    )


def footer_decorator(footer_text: str, mark: tuple | None = None):
    """The footer's left side (and a watermark when `mark` is given) on every page."""
    footer = runs(footer_text, SANS)

    def draw(canvas: Canvas, _doc) -> None:
        canvas.saveState()
        if mark is not None:
            canvas.saveState()
            canvas.setFillColor(mark[1])
            canvas.setFont(SANS_BOLD, 110)
            canvas.translate(A4[0] / 2, A4[1] / 2)
            canvas.rotate(35)
            canvas.drawCentredString(0, -38, mark[0])
            canvas.restoreState()
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, 12 * mm, A4[0] - MARGIN, 12 * mm)
        text = canvas.beginText(MARGIN, 8.5 * mm)
        text.setFillColor(MUTED)
        for font, chunk in footer:
            text.setFont(font, 7.5)
            text.textOut(chunk)
        canvas.drawText(text)
        canvas.restoreState()

    return draw


class NumberedCanvas(Canvas):
    """Holds every page back until the end so that the footer can say "Page X of Y"."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        count = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont(SANS, 7.5)
            self.setFillColor(MUTED)
            self.drawRightString(A4[0] - MARGIN, 8.5 * mm, f"Page {number} of {count}")
            super().showPage()
        super().save()
