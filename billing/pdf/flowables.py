"""Lean flowables for the invoice: text laid out and drawn directly on the canvas.

reportlab's `Paragraph` and `Table` are general and slow for this job (markup parsing, per-cell
style resolution): with them a typical invoice took ~9 ms, most of it there. The invoice needs
little: short texts in a few styles, word wrap (also inside CJK text), right alignment, a table
that breaks across pages and repeats its header. That is what these classes do, drawing every
text of a flowable in one PDF text object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reportlab.lib.colors import Color
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus.flowables import Flowable

from billing.pdf.fonts import SANS, SANS_BOLD, runs

LEADING = 1.28
_TOKEN_RE = re.compile(r"\s+|[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]|[^\s]")
Runs = list[tuple[str, str]]


@dataclass(frozen=True)
class Text:
    """A piece of text in one style; `align` is LEFT or RIGHT within its box."""

    text: str
    size: float = 8.5
    bold: bool = False
    color: Color | None = None
    align: str = "LEFT"
    line_height: float | None = None  # defaults to size * LEADING


@dataclass
class Gap:
    height: float


def _width(parts: Runs, size: float) -> float:
    return sum(stringWidth(chunk, font, size) for font, chunk in parts)


def _merge(parts: Runs) -> Runs:
    out: Runs = []
    for font, chunk in parts:
        if out and out[-1][0] == font:
            out[-1] = (font, out[-1][1] + chunk)
        else:
            out.append((font, chunk))
    return out


def wrap_text(item: Text, width: float) -> list[tuple[Runs, float]]:
    """Greedy word wrap into lines of (runs, width); CJK may break between any characters."""
    base = SANS_BOLD if item.bold else SANS
    parts = runs(item.text, base)
    total = _width(parts, item.size)
    if total <= width + 0.01:
        return [(parts, total)]
    lines: list[tuple[Runs, float]] = []
    line: Runs = []
    line_width = 0.0
    word: Runs = []  # the current unbreakable word (Latin letters stick together)
    word_width = 0.0

    def emit() -> None:
        nonlocal line, line_width
        while line and line[-1][1].isspace():
            line_width -= stringWidth(line[-1][1], line[-1][0], item.size)
            line.pop()
        lines.append((_merge(line), line_width))

    def flush_word() -> None:
        nonlocal line, line_width, word, word_width
        if line and line_width + word_width > width:
            emit()
            line, line_width = [], 0.0
            while word and word[0][1].isspace():
                word_width -= stringWidth(word[0][1], word[0][0], item.size)
                word.pop(0)
        line += word
        line_width += word_width
        word, word_width = [], 0.0

    for font, chunk in parts:
        for token in _TOKEN_RE.findall(chunk):
            w = stringWidth(token, font, item.size)
            if token.isspace() or font != base or (word and word[-1][1].isspace()):
                flush_word()
            if word_width + w > width and word:  # a word wider than the line: break it
                flush_word()
            word.append((font, token))
            word_width += w
    flush_word()
    if line:
        emit()
    return [(parts, w) for parts, w in lines if parts]


class _Lines:
    """Text items laid out in a box of a given width: a list of positioned lines."""

    def __init__(self, items: list[Text | Gap], width: float, ink: Color) -> None:
        # (dx, baseline below the top, runs, size, colour) per line
        self.placed: list[tuple[float, float, Runs, float, Color]] = []
        y = 0.0
        for item in items:
            if isinstance(item, Gap):
                y += item.height
                continue
            for parts, w in wrap_text(item, width):
                y += item.line_height or item.size * LEADING
                dx = width - w if item.align == "RIGHT" else 0.0
                baseline = y - 0.29 * item.size  # centres cap height in the line box
                self.placed.append((dx, baseline, parts, item.size, item.color or ink))
        self.height = y

    def draw(self, pen: _Pen, x: float, top: float) -> None:
        for dx, dy, parts, size, color in self.placed:
            pen.text.setTextOrigin(x + dx, top - dy)
            pen.color(color)
            for font, chunk in parts:
                pen.font(font, size)
                pen.text.textOut(chunk)


class _Pen:
    """A text object that skips redundant font and colour changes (they add up per cell)."""

    def __init__(self, canvas) -> None:
        self.text = canvas.beginText()
        self._font: tuple[str, float] | None = None
        self._color: Color | None = None

    def font(self, name: str, size: float) -> None:
        if self._font != (name, size):
            self.text.setFont(name, size)
            self._font = (name, size)

    def color(self, color: Color) -> None:
        if self._color is not color:
            self.text.setFillColor(color)
            self._color = color


@dataclass
class Column:
    x: float
    width: float
    items: list[Text | Gap]
    image: object | None = None  # (ImageReader, width, height) drawn above the items


class Panel(Flowable):
    """Side-by-side columns of text (and an optional image); as tall as the tallest column."""

    def __init__(self, columns: list[Column], *, ink: Color, space_before: float = 0) -> None:
        super().__init__()
        self.columns = columns
        self.ink = ink
        self.spaceBefore = space_before
        self._laid: list[tuple[Column, _Lines, float]] = []

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        self._laid = []
        height = 0.0
        for col in self.columns:
            image_h = col.image[2] + 3 if col.image else 0.0
            lines = _Lines(col.items, col.width, self.ink)
            self._laid.append((col, lines, image_h))
            height = max(height, image_h + lines.height)
        self.width, self.height = availWidth, height
        return self.width, self.height

    def draw(self) -> None:
        canvas = self.canv
        pen = _Pen(canvas)
        for col, lines, image_h in self._laid:
            if col.image:
                reader, w, h = col.image
                canvas.drawImage(reader, col.x, self.height - h, w, h, mask="auto")
            lines.draw(pen, col.x, self.height - image_h)
        canvas.drawText(pen.text)


@dataclass
class Row:
    cells: list[list[Text]]  # one list of texts per column; a single cell spans all columns
    background: Color | None = None
    rule_above: tuple[float, Color] | None = None
    laid: list[_Lines] = field(default_factory=list)
    height: float = 0.0


class DataTable(Flowable):
    """A table with fixed columns that splits between rows and repeats its header row.

    The optional caption sits above the header on the first part only, so that a title is
    never left alone at the foot of a page.
    """

    def __init__(
        self,
        header: Row,
        rows: list[Row],
        widths: list[float],
        aligns: list[str],
        *,
        ink: Color,
        rule: Color,
        pad: float = 4,
        vpad: float = 2.5,
        caption: Row | None = None,
    ) -> None:
        super().__init__()
        self.header, self.rows, self.widths, self.aligns = header, rows, widths, aligns
        self.ink, self.rule, self.pad, self.vpad = ink, rule, pad, vpad
        self.caption = caption
        for row in (header, *rows):
            if not row.laid:
                self._layout(row)
        if caption is not None and not caption.laid:
            caption.laid = [_Lines(caption.cells[0], sum(widths), ink)]
            caption.height = caption.laid[0].height + 2 * vpad

    def _layout(self, row: Row) -> None:
        if len(row.cells) == 1:
            row.laid = [_Lines(row.cells[0], sum(self.widths) - 2 * self.pad, self.ink)]
        else:
            row.laid = [
                _Lines([_aligned(t, a) for t in cell], w - 2 * self.pad, self.ink)
                for cell, w, a in zip(row.cells, self.widths, self.aligns, strict=True)
            ]
        row.height = max(lines.height for lines in row.laid) + 2 * self.vpad

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        self.width = sum(self.widths)
        self.height = self._caption_height() + self.header.height
        self.height += sum(row.height for row in self.rows)
        return self.width, self.height

    def _caption_height(self) -> float:
        return self.caption.height if self.caption is not None else 0.0

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        room = availHeight - self._caption_height() - self.header.height
        count = 0
        for row in self.rows:
            if room < row.height:
                break
            room -= row.height
            count += 1
        if count == 0:
            return []
        kw = {"ink": self.ink, "rule": self.rule, "pad": self.pad, "vpad": self.vpad}
        first = DataTable(
            self.header, self.rows[:count], self.widths, self.aligns, caption=self.caption, **kw
        )
        rest = DataTable(self.header, self.rows[count:], self.widths, self.aligns, **kw)
        return [first, rest]

    def draw(self) -> None:
        canvas = self.canv
        pen = _Pen(canvas)
        top = self.height
        if self.caption is not None:
            self.caption.laid[0].draw(pen, 0, top - self.vpad)
            top -= self.caption.height
        canvas.setLineWidth(0.3)
        canvas.setStrokeColor(self.rule)
        for index, row in enumerate((self.header, *self.rows)):
            bottom = top - row.height
            if row.background is not None:
                canvas.setFillColor(row.background)
                canvas.rect(0, bottom, self.width, row.height, stroke=0, fill=1)
            if row.rule_above is not None:
                canvas.setLineWidth(row.rule_above[0])
                canvas.setStrokeColor(row.rule_above[1])
                canvas.line(0, top, self.width, top)
                canvas.setLineWidth(0.3)
                canvas.setStrokeColor(self.rule)
            elif index > 1:
                canvas.line(0, top, self.width, top)
            x = 0.0
            for lines, w in zip(row.laid, self.widths, strict=False):
                lines.draw(pen, x + self.pad, top - self.vpad)
                x += w
            top = bottom
        canvas.line(0, 0, self.width, 0)
        canvas.drawText(pen.text)


def _aligned(item: Text, align: str) -> Text:
    if item.align == align:
        return item
    return Text(item.text, item.size, item.bold, item.color, align, item.line_height)
