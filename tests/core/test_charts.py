"""The SVG charts: pure functions from figures to escaped markup."""

import datetime as dt
import re
from decimal import Decimal

from core.charts import MonthPoint, daily_bar_chart, nice_ticks, revenue_margin_chart


def test_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 93) == [0, 25, 50, 75, 100]
    assert nice_ticks(0, 0) == [0, 0.25, 0.5, 0.75, 1]
    assert nice_ticks(-44.61, 1474) == [-500, 0, 500, 1000, 1500]


def test_daily_chart_has_a_bar_per_day_with_the_exact_figure():
    first = dt.date(2026, 9, 1)
    days = [(first + dt.timedelta(days=i), Decimal(i) / 4) for i in range(90)]

    svg = daily_bar_chart(
        days=days, unit="GB", label="Acme <script>", value_text=lambda v: f"{v:.2f} GB"
    )

    assert svg.count("<rect") == 90
    assert "<title>2026-09-03: 0.50 GB</title>" in svg
    assert "<title>2026-11-29: 22.25 GB</title>" in svg
    assert "<script>" not in svg and "Acme &lt;script&gt;" in svg
    assert re.findall(r">(Sep 01|Oct|Nov)</text>", svg) == ["Sep 01", "Oct", "Nov"]


def test_trend_chart_draws_revenue_cost_and_a_margin_line():
    months = [
        MonthPoint("Sep 26", Decimal("0"), Decimal("218.36")),
        MonthPoint("Oct 26", Decimal("1474.00"), Decimal("423.07")),
        MonthPoint("Nov 26", Decimal("1358.66"), Decimal("433.47"), estimated=True),
    ]

    svg = revenue_margin_chart(months=months, currency_text=lambda a: f"${a:,.2f}", label="Trend")

    assert "Oct 26 revenue: $1,474.00" in svg
    assert "Nov 26 revenue (estimate): $1,358.66" in svg
    assert "Sep 26 margin: $-218.36" in svg
    assert svg.count("<circle") == 3
    assert 'fill="#c53030"' in svg  # the negative margin point is red
