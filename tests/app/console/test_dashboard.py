"""Home: the KPIs over a chosen period, the SVG charts with their data tables, the CSV export."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.loyalty.apply import apply_event
from app.models import Shop
from tests.app.console.conftest import committed_console_shop, sign_in
from tests.factories import make_customer, paid


@pytest.fixture(scope="module")
def shop_with_sales(app):
    made = committed_console_shop(app)
    now = datetime.now(UTC)
    with app.app_context():
        shop = db.session.get(Shop, made.shop_id)
        buyer = make_customer(db.session, shop, first_name="Buyer")
        for n, days_ago in enumerate((2, 5, 40)):
            apply_event(db.session, shop.id, paid(f"d-{n}", at=now - timedelta(days=days_ago), customer=buyer,
                                                  subtotal="80.00", placed_at=now - timedelta(days=days_ago)))
        db.session.commit()
    return made


@pytest.fixture
def viewer(app, shop_with_sales):
    client = app.test_client()
    sign_in(client, shop_with_sales.emails["viewer"])
    return client


def test_dashboard_shows_the_kpis_for_the_default_30_days(viewer):
    html = viewer.get("/admin/").get_data(as_text=True)
    for label in ("Members", "Points outstanding", "Redemption rate", "Repeat purchase rate, members",
                  "Average order, members", "Win-back recovered revenue", "Referral revenue"):
        assert f'<p class="label">{label}</p>' in html
    assert '<a href="/admin/?days=30" aria-current="true">30 days</a>' in html
    assert '<p class="value">240</p>' in html  # points outstanding: three orders of 80


def test_the_period_changes_what_is_counted(viewer):
    week = viewer.get("/admin/?days=7").get_data(as_text=True)
    assert '<a href="/admin/?days=7" aria-current="true">7 days</a>' in week
    assert "160 of 160 points issued" not in week and "0 of 160 points issued" in week  # 2 of the 3 orders
    assert "0 of 240 points issued" in viewer.get("/admin/?days=90").get_data(as_text=True)


def test_an_unknown_period_falls_back_to_30_days(viewer):
    assert '<a href="/admin/?days=30" aria-current="true">' in viewer.get("/admin/?days=13").get_data(as_text=True)


def test_dashboard_charts_are_svg_images_with_a_table_of_the_same_data(viewer):
    html = viewer.get("/admin/?days=7").get_data(as_text=True)
    assert html.count('<svg class="chart"') == 3 and html.count('role="img"') == 3
    assert "<path class=\"line\"" in html and "<rect class=\"bar\"" in html
    assert "Revenue from members and non-members as a table" in html
    assert html.count('<th scope="row">') == 3 * 7  # one row per day in each table


def test_csv_export_has_one_row_per_day(viewer):
    response = viewer.get("/admin/analytics.csv?days=7")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="lojal-')
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 7
    assert sum(int(r["points_issued"]) for r in rows) == 160
