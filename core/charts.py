"""Small server-rendered SVG charts for the admin: no JavaScript, no CDN, works offline.

Pure functions from numbers to markup. Values arrive as `Decimal`/`int` (money, GB) and
become pixel coordinates here only (floats are fine for drawing, never for the figures,
which are printed from the given values). Every text is escaped; every bar carries a
`<title>` so hovering shows the exact figure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

BLUE = "#2b6cb0"
GREY = "#a0aec0"
GREEN = "#2f855a"
RED = "#c53030"
AXIS = "#718096"
GRID = "#e2e8f0"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'

Number = Decimal | int


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering `[low, high]` (0 always included): 0, 25, 50, 75, 100."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt_tick(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == int(value):
        return f"{int(value)}"
    return f"{value:g}"


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int
    left: int = 56
    right: int = 12
    top: int = 14
    bottom: int = 28

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom


def _open(frame: _Frame, label: str, css_class: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flowbill-chart {css_class}" '
        f'viewBox="0 0 {frame.width} {frame.height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(label)}" {FONT} '
        f'font-size="11">',
        f"<title>{escape(label)}</title>",
    ]


def _y_axis(frame: _Frame, ticks: list[float], y: Callable[[float], float], unit: str) -> list[str]:
    out = []
    for tick in ticks:
        ypos = y(tick)
        out.append(
            f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{ypos:.1f}" '
            f'y2="{ypos:.1f}" stroke="{AXIS if tick == 0 else GRID}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{frame.left - 6}" y="{ypos + 4:.1f}" text-anchor="end" fill="{AXIS}">'
            f"{escape(_fmt_tick(tick))}</text>"
        )
    out.append(
        f'<text x="4" y="{frame.top - 2}" fill="{AXIS}" font-size="10">{escape(unit)}</text>'
    )
    return out


def daily_bar_chart(
    *,
    days: Sequence[tuple[dt.date, Number]],
    unit: str,
    label: str,
    value_text: Callable[[Number], str] | None = None,
    width: int = 760,
    height: int = 200,
) -> SafeString:
    """One bar per day (give every day, zeros included), month starts labelled on the x axis."""
    frame = _Frame(width=width, height=height)
    values = [float(v) for _, v in days]
    ticks = nice_ticks(0.0, max(values, default=0.0))
    top, bottom = ticks[-1], ticks[0]

    def y(value: float) -> float:
        return frame.top + frame.plot_height * (top - value) / (top - bottom)

    out = _open(frame, label, "flowbill-daily-chart")
    out += _y_axis(frame, ticks, y, unit)
    slot = frame.plot_width / max(len(days), 1)
    bar = max(slot * 0.8, 1.0)
    text = value_text or (lambda v: f"{v}")
    for index, (day, value) in enumerate(days):
        x = frame.left + index * slot + (slot - bar) / 2
        y0, y1 = y(0.0), y(float(value))
        out.append(
            f'<rect x="{x:.1f}" y="{min(y0, y1):.1f}" width="{bar:.1f}" '
            f'height="{abs(y0 - y1):.1f}" fill="{BLUE}">'
            f"<title>{escape(day.isoformat())}: {escape(text(value))}</title></rect>"
        )
        if day.day == 1 or index == 0:
            out.append(
                f'<text x="{x:.1f}" y="{frame.height - 10}" fill="{AXIS}">'
                f"{escape(day.strftime('%b %d' if index == 0 else '%b'))}</text>"
            )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped


@dataclass(frozen=True)
class MonthPoint:
    label: str
    revenue: Decimal
    cost: Decimal
    estimated: bool = False

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost


def revenue_margin_chart(
    *,
    months: Sequence[MonthPoint],
    currency_text: Callable[[Decimal], str],
    label: str,
    width: int = 760,
    height: int = 230,
) -> SafeString:
    """Per month: revenue and upstream cost as bars, margin as a line (estimates hatched)."""
    frame = _Frame(width=width, height=height, bottom=44)
    values = [float(v) for m in months for v in (m.revenue, m.cost, m.margin)]
    ticks = nice_ticks(min(values, default=0.0), max(values, default=0.0))
    top, bottom = ticks[-1], ticks[0]

    def y(value: float) -> float:
        return frame.top + frame.plot_height * (top - value) / (top - bottom)

    out = _open(frame, label, "flowbill-trend-chart")
    out.append(
        '<defs><pattern id="fb-est" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{BLUE}" '
        'opacity="0.45"/><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2"/>'
        "</pattern></defs>"
    )
    out += _y_axis(frame, ticks, y, "")
    slot = frame.plot_width / max(len(months), 1)
    bar = slot * 0.32
    points = []
    for index, month in enumerate(months):
        x0 = frame.left + index * slot + slot * 0.14
        for offset, value, fill, name in (
            (0.0, month.revenue, "url(#fb-est)" if month.estimated else BLUE, "revenue"),
            (bar, month.cost, GREY, "upstream cost"),
        ):
            y0, y1 = y(0.0), y(float(value))
            out.append(
                f'<rect x="{x0 + offset:.1f}" y="{min(y0, y1):.1f}" width="{bar:.1f}" '
                f'height="{abs(y0 - y1):.1f}" fill="{fill}"><title>{escape(month.label)} '
                f"{name}{' (estimate)' if month.estimated else ''}: "
                f"{escape(currency_text(value))}</title></rect>"
            )
        cx = frame.left + index * slot + slot / 2
        points.append((cx, y(float(month.margin)), month))
        out.append(
            f'<text x="{cx:.1f}" y="{frame.height - 28}" text-anchor="middle" fill="{AXIS}">'
            f"{escape(month.label)}</text>"
        )
    if points:
        path = " ".join(f"{x:.1f},{yy:.1f}" for x, yy, _ in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{GREEN}" stroke-width="2"/>')
        for x, yy, month in points:
            color = GREEN if month.margin >= 0 else RED
            out.append(
                f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="3.5" fill="{color}"><title>'
                f"{escape(month.label)} margin: {escape(currency_text(month.margin))}"
                "</title></circle>"
            )
    legend_y = frame.height - 8
    for x, fill, name in (
        (frame.left, BLUE, "Revenue"),
        (frame.left + 90, GREY, "Upstream cost"),
        (frame.left + 210, GREEN, "Margin"),
        (frame.left + 290, "url(#fb-est)", "This month (estimate)"),
    ):
        out.append(
            f'<rect x="{x}" y="{legend_y - 9}" width="12" height="10" fill="{fill}"/>'
            f'<text x="{x + 16}" y="{legend_y}" fill="{AXIS}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped
