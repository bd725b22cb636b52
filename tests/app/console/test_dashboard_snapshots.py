"""Home reads the hourly analytics snapshot while it is fresh and says as of when; without one
it computes the figures for the request."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.loyalty.analytics.snapshots import refresh_snapshots
from app.loyalty.apply import apply_event
from app.models import Customer, Shop
from tests.app.console.conftest import committed_console_shop, sign_in
from tests.factories import make_customer, paid


def _buy(app, shop_id: int, order_id: str, amount: str, customer_id: int | None = None) -> int:
    at = datetime.now(UTC) - timedelta(hours=1)
    with app.app_context():
        shop = db.session.get(Shop, shop_id)
        customer = db.session.get(Customer, customer_id) if customer_id else make_customer(db.session, shop)
        apply_event(db.session, shop_id, paid(order_id, at=at, customer=customer, subtotal=amount, placed_at=at))
        db.session.commit()
        return customer.id


def _refresh(app, shop_id: int, at: datetime) -> None:
    with app.app_context():
        refresh_snapshots(db.session, shop_id, at)
        db.session.commit()


@pytest.fixture
def shop_and_viewer(app):
    made = committed_console_shop(app)
    client = app.test_client()
    sign_in(client, made.emails["viewer"])
    return made.shop_id, client


def test_the_dashboard_serves_the_snapshot_until_it_is_refreshed(app, shop_and_viewer):
    shop_id, viewer = shop_and_viewer
    buyer = _buy(app, shop_id, "snap-1", "80.00")
    _refresh(app, shop_id, datetime.now(UTC) - timedelta(minutes=10))
    _buy(app, shop_id, "snap-2", "50.00", buyer)  # after the snapshot

    cached = viewer.get("/admin/?days=7").get_data(as_text=True)
    assert '<p class="value">80</p>' in cached and "As of " in cached and "(refreshed hourly)" in cached
    exported = csv.DictReader(io.StringIO(viewer.get("/admin/analytics.csv?days=7").get_data(as_text=True)))
    assert sum(int(row["points_issued"]) for row in exported) == 80  # the snapshot's too

    _refresh(app, shop_id, datetime.now(UTC))
    assert '<p class="value">130</p>' in viewer.get("/admin/?days=7").get_data(as_text=True)


def test_without_a_snapshot_the_dashboard_computes_live_and_says_no_as_of(app, shop_and_viewer):
    shop_id, viewer = shop_and_viewer
    _buy(app, shop_id, "live-1", "80.00")
    html = viewer.get("/admin/?days=7").get_data(as_text=True)
    assert '<p class="value">80</p>' in html and "As of " not in html
