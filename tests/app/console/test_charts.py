"""The SVG charts: accessible, escaped, and drawn to scale."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from app.console.charts import HEIGHT, PAD_BOTTOM, PAD_TOP, Chart, Series, nice_ceiling

DAYS = tuple(date(2026, 3, 1) + timedelta(days=i) for i in range(5))


@pytest.mark.parametrize("peak,top,step", [(0, 4, 1), (3, 4, 1), (7, 8, 2), (101, 200, 50), (800, 800, 200),
                                           (0.3, 0.4, 0.1), (12_345, 20_000, 5_000)])
def test_the_axis_top_is_the_next_round_number(peak, top, step):
    assert nice_ceiling(peak) == pytest.approx((top, step))


def test_a_chart_is_an_image_labelled_by_its_title_and_description():
    svg = str(Chart("Points issued", "Daily points issued.", DAYS, (Series("Issued", (1, 2, 3, 4, 5)),)).svg)
    ids = re.search(r'role="img" aria-labelledby="(chart-\d+-title) (chart-\d+-desc)"', svg)
    assert ids
    assert f'<title id="{ids.group(1)}">Points issued</title>' in svg
    assert f'<desc id="{ids.group(2)}">Daily points issued.</desc>' in svg


def test_text_in_a_chart_is_escaped():
    svg = str(Chart("<script>x</script>", "a & b", DAYS, (Series("s", (1,) * 5),)).svg)
    assert "<script>" not in svg and "&lt;script&gt;x&lt;/script&gt;" in svg and "a &amp; b" in svg


def test_bars_are_as_tall_as_their_values():
    svg = str(Chart("t", "d", DAYS[:2], (Series("s", (2, 4)),), kind="bar").svg)
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]* height="([\d.]+)"', svg)]
    inner = HEIGHT - PAD_TOP - PAD_BOTTOM
    assert heights == pytest.approx([inner / 2, inner])  # axis top 4: 2 is half, 4 is all


def test_a_line_chart_draws_one_point_per_day_and_the_highest_at_the_top():
    svg = str(Chart("t", "d", DAYS, (Series("s", (0, 1, 2, 3, 4)),)).svg)
    path = re.search(r'<path class="line" d="([^"]+)"', svg).group(1)
    points = [tuple(map(float, p.split(","))) for p in path[1:].split(" L")]
    assert len(points) == 5
    assert points[-1][1] == pytest.approx(PAD_TOP) and points[0][1] == pytest.approx(HEIGHT - PAD_BOTTOM)


def test_the_data_table_has_the_same_numbers():
    chart = Chart("t", "d", DAYS[:2], (Series("a", (1, 2)), Series("b", (3, 4))))
    assert chart.table_rows() == [(DAYS[0], (1, 3)), (DAYS[1], (2, 4))]
