"""Admin API analytics read the hourly snapshot for a standard period while it is fresh (and
say when it was computed), and compute any other period live."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.loyalty.analytics.snapshots import refresh_snapshots, standard_periods
from app.loyalty.apply import apply_event
from app.loyalty.calendar import local
from tests.app.admin.conftest import API
from tests.factories import paid


def _buy(session, shop, customer, order_id: str, amount: str) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    apply_event(session, shop.id, paid(order_id, at=at, customer=customer, subtotal=amount, placed_at=at))
    session.commit()


def _week(shop) -> dict:
    start, end = standard_periods(local(datetime.now(UTC), shop.timezone).date())[0]
    return {"start": start.isoformat(), "end": end.isoformat()}


def test_summary_and_series_serve_the_snapshot_until_it_is_refreshed(client, session, shop_a, customer_a):
    headers, week = shop_a.headers["viewer"], _week(shop_a.shop)
    _buy(session, shop_a.shop, customer_a, "api-1", "40.00")
    computed_at = datetime.now(UTC) - timedelta(minutes=5)
    refresh_snapshots(session, shop_a.shop.id, computed_at)
    session.commit()
    _buy(session, shop_a.shop, customer_a, "api-2", "60.00")  # after the snapshot

    cached = client.get(f"{API}/analytics/summary", query_string=week, headers=headers).get_json()
    assert cached["metrics"]["member_orders"] == 1
    assert datetime.fromisoformat(cached["computed_at"]) == computed_at
    series = client.get(f"{API}/analytics/series", query_string=week, headers=headers).get_json()
    assert sum(day["member_orders"] for day in series["days"]) == 1 and series["computed_at"] == cached["computed_at"]
    csv = client.get(f"{API}/analytics/series", query_string={**week, "format": "csv"}, headers=headers)
    assert len(csv.get_data(as_text=True).strip().splitlines()) == 8

    refresh_snapshots(session, shop_a.shop.id, datetime.now(UTC))
    session.commit()
    fresh = client.get(f"{API}/analytics/summary", query_string=week, headers=headers).get_json()
    assert fresh["metrics"]["member_orders"] == 2 and fresh["metrics"]["member_revenue"] == "100.00"


def test_a_period_without_a_snapshot_is_computed_for_the_request(client, session, shop_a, customer_a):
    _buy(session, shop_a.shop, customer_a, "api-3", "40.00")
    refresh_snapshots(session, shop_a.shop.id, datetime.now(UTC))
    session.commit()
    week = _week(shop_a.shop)
    eight_days = {**week, "start": (datetime.fromisoformat(week["start"]) - timedelta(days=1)).date().isoformat()}
    before = datetime.now(UTC)
    body = client.get(f"{API}/analytics/summary", query_string=eight_days, headers=shop_a.headers["viewer"]).get_json()
    assert body["metrics"]["days"] == 8 and datetime.fromisoformat(body["computed_at"]) >= before


def test_another_shops_snapshot_is_never_served(client, session, shop_a, shop_b, customer_a):
    _buy(session, shop_a.shop, customer_a, "api-4", "40.00")
    refresh_snapshots(session, shop_a.shop.id, datetime.now(UTC) - timedelta(minutes=1))
    session.commit()
    body = client.get(f"{API}/analytics/summary", query_string=_week(shop_b.shop),
                      headers=shop_b.headers["viewer"]).get_json()
    assert body["metrics"]["member_orders"] == 0


def test_a_period_at_the_end_of_the_calendar_is_422_not_a_500(client, shop_a):
    for path in ("summary", "series"):
        response = client.get(f"{API}/analytics/{path}", query_string={"start": "9999-12-30", "end": "9999-12-31"},
                              headers=shop_a.headers["viewer"])
        assert response.status_code == 422 and "end" in response.get_json()["error"]["fields"]


def test_a_period_at_the_start_of_the_calendar_east_of_utc_is_not_a_500(client, session, shop_a):
    # Local midnight of 1 January year 1 in Tokyo is 31 December year 0 in UTC: not a datetime.
    shop_a.shop.timezone = "Asia/Tokyo"
    session.commit()
    for path in ("summary", "series"):
        response = client.get(f"{API}/analytics/{path}", query_string={"start": "0001-01-01", "end": "0001-01-02"},
                              headers=shop_a.headers["viewer"])
        assert response.status_code == 422 and "start" in response.get_json()["error"]["fields"]
    # The next day is the first the API accepts: its midnight in Tokyo is still in year 1 in UTC.
    response = client.get(f"{API}/analytics/summary", query_string={"start": "0001-01-02", "end": "0001-01-03"},
                          headers=shop_a.headers["viewer"])
    assert response.status_code == 200 and response.get_json()["start"] == "0001-01-02"
