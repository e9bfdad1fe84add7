"""Charts as SVG made on the server: no charting library, no script, nothing fetched. The page stays
readable offline and in print, and every text in the picture is escaped here."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from markupsafe import Markup

from present.webui import svg

BLUE, ORANGE, GRID, INK = "#3b7dd8", "#f0a22e", "#e3e8ee", "#5f6b7a"


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1): round axis ends."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def sync_history(days: list[dict[str, Any]], *, width: int = 720, height: int = 220) -> Markup:
    """Grouped bars per day: changes received (blue) and batches (orange), one shared axis."""
    left, right, top, bottom = 40, 10, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max([1] + [max(d["changes"], d["batches"]) for d in days]))
    n = max(1, len(days))
    slot = plot_w / n
    bar = max(3.0, slot * 0.32)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg"'
        f' aria-labelledby="chart-title"><title id="chart-title">近{len(days)}天同步情况</title>'
    ]
    ticks = next((n for n in (4, 5, 2) if top_value % n == 0), 1)  # whole-number gridlines only
    for i in range(ticks + 1):
        value = top_value * i // ticks
        y = top + plot_h - plot_h * i / ticks
        label = str(value)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="13" fill="{INK}">{escape(label)}</text>'
        )
    for i, d in enumerate(days):
        x0 = left + slot * i + (slot - 2 * bar - 2) / 2
        for j, (value, colour, what) in enumerate(((d["changes"], BLUE, "条变更"), (d["batches"], ORANGE, "批"))):
            h = plot_h * value / top_value
            x = x0 + j * (bar + 2)
            y = top + plot_h - h
            tip = escape(f"{d['day']:%m-%d}：{value} {what}")
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0.0):.1f}"'
                f' fill="{colour}" rx="1.5"><title>{tip}</title></rect>'
            )
        cx = left + slot * i + slot / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="13"'
            f' fill="{INK}">{escape(format(d["day"], "%m-%d"))}</text>'
        )
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#9aa5b1"/>')
    parts.append("</svg>")
    return svg("".join(parts))
