"""Server-rendered SVG charts of the analytics daily series (no JavaScript library).

Each chart is an accessible image: `role="img"` labelled by its `<title>` and `<desc>`; the
page shows the same numbers as a table next to it (see `console/_chart.html`). Geometry is
computed here; every text that reaches the SVG goes through `Markup.format`, which escapes it.
Colours are presentation attributes, not `style=`, so a strict CSP (no inline styles) allows them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from itertools import count

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 12, 28
PALETTE = ("#2c6ecb", "#8a6116", "#008060", "#b98900")
_ids = count(1)


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    days: tuple[date, ...]
    series: tuple[Series, ...]
    kind: str = "line"           # line | bar
    unit: str = ""               # shown on the y axis ticks and in the table, e.g. "USD"

    @property
    def svg(self) -> Markup:
        return render_svg(self)

    def table_rows(self) -> list[tuple[date, tuple[float, ...]]]:
        return [(day, tuple(s.values[i] for s in self.series)) for i, day in enumerate(self.days)]


def nice_ceiling(value: float) -> tuple[float, float]:
    """(axis top, tick step): the smallest 1/2/5 x 10^k step whose 4 ticks cover `value`."""
    if value <= 0:
        return 4.0, 1.0
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step * 4 >= value:
            return step * 4, step
    return 40 * magnitude, 10 * magnitude  # unreachable: factor 10 always covers


def format_number(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _x_positions(n: int) -> list[float]:
    inner = WIDTH - PAD_LEFT - PAD_RIGHT
    if n == 1:
        return [PAD_LEFT + inner / 2]
    return [PAD_LEFT + inner * i / (n - 1) for i in range(n)]


def _y(value: float, top: float) -> float:
    inner = HEIGHT - PAD_TOP - PAD_BOTTOM
    return PAD_TOP + inner * (1 - (value / top if top else 0))


def _axes(chart: Chart, top: float, step: float) -> list[Markup]:
    parts = []
    for i in range(5):
        value = step * i
        y = _y(value, top)
        parts.append(Markup('<line class="grid" x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" stroke="#e3e3e3"/>')
                     .format(PAD_LEFT, WIDTH - PAD_RIGHT, y, y))
        parts.append(Markup('<text x="{}" y="{:.1f}" text-anchor="end" font-size="11" fill="#616161">{}</text>')
                     .format(PAD_LEFT - 6, y + 4, format_number(value)))
    if chart.days:
        xs = _x_positions(len(chart.days))
        picks = sorted({0, len(chart.days) // 2, len(chart.days) - 1})
        anchors = {0: "start", len(chart.days) - 1: "end"}
        for i in picks:
            parts.append(Markup('<text x="{:.1f}" y="{}" text-anchor="{}" font-size="11" fill="#616161">{}</text>')
                         .format(xs[i], HEIGHT - 8, anchors.get(i, "middle"), chart.days[i].strftime("%b %-d")))
    return parts


def _line(values: tuple[float, ...], top: float, colour: str) -> list[Markup]:
    xs = _x_positions(len(values))
    points = [(x, _y(v, top)) for x, v in zip(xs, values)]
    line = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
    baseline = _y(0, top)
    # A faint area under the line, so a flat series still shows as a shape with a size.
    area = f"{line} L{points[-1][0]:.1f},{baseline:.1f} L{points[0][0]:.1f},{baseline:.1f} Z"
    return [Markup('<path class="area" d="{}" fill="{}" fill-opacity="0.12" stroke="none"/>').format(area, colour),
            Markup('<path class="line" d="{}" fill="none" stroke="{}" stroke-width="2" '
                   'stroke-linejoin="round"/>').format(line, colour)]


def _bars(chart: Chart, top: float) -> list[Markup]:
    n, groups = len(chart.days), len(chart.series)
    slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / n
    width = max(slot * 0.8 / groups, 1.0)
    baseline = _y(0, top)
    parts = []
    for s_index, series in enumerate(chart.series):
        colour = PALETTE[s_index % len(PALETTE)]
        for i, value in enumerate(series.values):
            y = _y(max(value, 0), top)
            x = PAD_LEFT + slot * i + slot * 0.1 + width * s_index
            parts.append(Markup('<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}">'
                                '<title>{}: {}</title></rect>')
                         .format(x, y, width, max(baseline - y, 0), colour, chart.days[i].isoformat(),
                                 format_number(value)))
    return parts


def render_svg(chart: Chart) -> Markup:
    uid = next(_ids)
    peak = max((v for s in chart.series for v in s.values), default=0)
    top, step = nice_ceiling(peak)
    body = _axes(chart, top, step)
    if chart.days:
        if chart.kind == "bar":
            body += _bars(chart, top)
        else:
            for index, series in enumerate(chart.series):
                body += _line(series.values, top, PALETTE[index % len(PALETTE)])
    head = Markup('<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" '
                  'aria-labelledby="chart-{}-title chart-{}-desc">'
                  '<title id="chart-{}-title">{}</title><desc id="chart-{}-desc">{}</desc>') \
        .format(WIDTH, HEIGHT, uid, uid, uid, chart.title, uid, chart.description)
    return head + Markup("").join(body) + Markup("</svg>")
