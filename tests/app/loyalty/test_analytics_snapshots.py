"""Analytics snapshots: a snapshot is exactly the live computation, is served only while fresh
and only for its own shop and period, and a refresh picks up new data."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.loyalty.analytics import daily_series, summary
from app.loyalty.analytics.snapshots import (MAX_AGE, PERIOD_DAYS, cached_report, refresh_snapshots, report,
                                             standard_periods)
from app.loyalty.apply import apply_event
from app.models import AnalyticsSnapshot
from tests.factories import make_customer, make_reward, make_shop, paid, refunded

TZ = "America/New_York"
NOW = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # 12:00 in New York
TODAY = date(2026, 3, 10)


@pytest.fixture
def shop(session):
    """Members and a guest buying over the last year, a refund, a point value (liability), a
    one-time buyer who joined and lapsed during the year (not in its churn base), one who
    bought before the year and lapsed during it (churned), and one who joined before it."""
    shop = make_shop(session, timezone=TZ)
    make_reward(session, shop)
    alice, bob, carol, dan, erin = (make_customer(session, shop) for _ in range(5))
    for n, (customer, days_ago, amount) in enumerate(((alice, 1, "80.00"), (alice, 20, "45.50"), (bob, 3, "120.00"),
                                                       (bob, 200, "60.00"), (None, 2, "30.00"), (carol, 300, "25.00"),
                                                       (dan, 400, "70.00"), (dan, 50, "35.00"), (erin, 380, "15.00"))):
        at = NOW - timedelta(days=days_ago)
        guest = {} if customer else {"email": f"guest{n}@example.com"}
        apply_event(session, shop.id, paid(f"s{n}", at=at, customer=customer, subtotal=amount, placed_at=at, **guest))
    apply_event(session, shop.id, refunded("s2", "r1", "20.00", at=NOW - timedelta(days=2)))
    session.flush()
    return shop


def _snapshots(session, shop_id) -> list[AnalyticsSnapshot]:
    session.expire_all()
    return session.query(AnalyticsSnapshot).filter_by(shop_id=shop_id).order_by(AnalyticsSnapshot.period_start).all()


def test_a_snapshot_is_exactly_the_live_summary_and_series_of_each_standard_period(session, shop):
    assert refresh_snapshots(session, shop.id, NOW) == len(PERIOD_DAYS)
    for start, end in standard_periods(TODAY):
        cached = cached_report(session, shop.id, start, end, NOW + timedelta(minutes=5))
        assert cached is not None and cached.computed_at == NOW
        assert cached.summary == summary(session, shop.id, start, end, NOW)
        live_rows = daily_series(session, shop.id, start, end, NOW)
        assert cached.series == live_rows
        assert [list(row) for row in cached.series] == [list(row) for row in live_rows]  # key order kept too
    year = cached_report(session, shop.id, TODAY - timedelta(days=364), TODAY, NOW)
    assert year.summary["member_orders"] == 6 and year.summary["liability"] is not None
    assert year.summary["churned_customers"] == 1 and sum(row["churned_customers"] for row in year.series) == 1


def test_a_shorter_periods_series_counts_churn_against_its_own_base_not_the_years(session, shop):
    """The snapshot series of the shorter periods are the year's tail, but churn depends on the
    period's start: a one-time buyer who first ordered inside the year and before the 90 days
    is in the 90-day base (churned when they lapse in it), not in the year's."""
    frank = make_customer(session, shop)
    at = NOW - timedelta(days=100)  # lapses 40 days ago: inside the 90 days
    apply_event(session, shop.id, paid("frank", at=at, customer=frank, subtotal="10.00", placed_at=at))
    session.flush()
    refresh_snapshots(session, shop.id, NOW)
    by_days = {(end - start).days + 1: cached_report(session, shop.id, start, end, NOW)
               for start, end in standard_periods(TODAY)}
    ninety, year = by_days[90], by_days[365]
    assert ninety.summary["churned_customers"] == sum(row["churned_customers"] for row in ninety.series) == 1
    assert year.summary["churned_customers"] == sum(row["churned_customers"] for row in year.series) == 1  # erin
    for start, end in standard_periods(TODAY):
        assert cached_report(session, shop.id, start, end, NOW).series == daily_series(session, shop.id, start, end, NOW)


def test_the_standard_periods_end_on_the_shops_local_today(session, shop):
    late_evening = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # still 10 March in New York
    refresh_snapshots(session, shop.id, late_evening)
    assert {(s.period_start, s.period_end) for s in _snapshots(session, shop.id)} == set(standard_periods(TODAY))
    assert [(TODAY - s.period_start).days + 1 for s in _snapshots(session, shop.id)] == sorted(PERIOD_DAYS, reverse=True)


def test_a_snapshot_older_than_max_age_is_not_used_and_report_computes_live(session, shop):
    refresh_snapshots(session, shop.id, NOW)
    start, end = standard_periods(TODAY)[0]
    later = NOW + MAX_AGE + timedelta(seconds=1)
    assert cached_report(session, shop.id, start, end, later) is None
    live = report(session, shop.id, start, end, later)
    assert live.computed_at == later and live.summary == summary(session, shop.id, start, end, later)
    assert cached_report(session, shop.id, start, end, NOW + MAX_AGE - timedelta(seconds=1)) is not None


def test_any_other_period_is_computed_live(session, shop):
    refresh_snapshots(session, shop.id, NOW)
    found = report(session, shop.id, TODAY - timedelta(days=13), TODAY, NOW + timedelta(minutes=1), with_series=False)
    assert found.computed_at == NOW + timedelta(minutes=1) and found.series is None
    assert found.summary["days"] == 14


def test_the_snapshot_keeps_its_figures_until_the_next_refresh(session, shop):
    start, end = standard_periods(TODAY)[0]
    refresh_snapshots(session, shop.id, NOW)
    buyer = make_customer(session, shop)
    apply_event(session, shop.id, paid("late", at=NOW + timedelta(minutes=10), customer=buyer, subtotal="200.00",
                                       placed_at=NOW + timedelta(minutes=10)))
    session.flush()
    read_at = NOW + timedelta(minutes=30)
    assert report(session, shop.id, start, end, read_at).summary["member_orders"] == 2  # the snapshot's figure
    refresh_snapshots(session, shop.id, read_at)
    fresh = report(session, shop.id, start, end, read_at + timedelta(minutes=1))
    assert fresh.computed_at == read_at and fresh.summary["member_orders"] == 3
    assert fresh.series[-1]["member_revenue"] == "200.00"  # today: only the new order


def test_a_refresh_on_the_next_day_replaces_the_periods_that_ended(session, shop):
    refresh_snapshots(session, shop.id, NOW)
    refresh_snapshots(session, shop.id, NOW + timedelta(days=1))
    snapshots = _snapshots(session, shop.id)
    assert len(snapshots) == len(PERIOD_DAYS) and {s.period_end for s in snapshots} == {TODAY + timedelta(days=1)}


def test_a_shop_never_reads_another_shops_snapshot(session, shop):
    other = make_shop(session, timezone=TZ)
    refresh_snapshots(session, shop.id, NOW)
    start, end = standard_periods(TODAY)[1]
    assert cached_report(session, other.id, start, end, NOW) is None
    assert report(session, other.id, start, end, NOW).summary["member_orders"] == 0
    refresh_snapshots(session, other.id, NOW + timedelta(days=1))  # prunes its own ended periods only
    assert len(_snapshots(session, shop.id)) == len(PERIOD_DAYS)
    assert cached_report(session, shop.id, start, end, NOW).summary["member_orders"] == 3


def test_a_customer_lapsing_later_today_is_not_churned_yet_in_the_series(session):
    shop = make_shop(session, timezone=TZ)
    customer = make_customer(session, shop)
    at = NOW - timedelta(days=60) + timedelta(hours=4)  # one order: lapses today at 16:00 in New York, after NOW
    apply_event(session, shop.id, paid("late-lapse", at=at, customer=customer, subtotal="20.00", placed_at=at))
    session.flush()
    start = TODAY - timedelta(days=6)
    live = report(session, shop.id, start, TODAY, NOW)
    assert live.summary["churned_customers"] == 0
    assert sum(row["churned_customers"] for row in live.series) == 0
    refresh_snapshots(session, shop.id, NOW)
    cached = cached_report(session, shop.id, start, TODAY, NOW)
    assert sum(row["churned_customers"] for row in cached.series) == cached.summary["churned_customers"] == 0


@pytest.mark.parametrize("change", [{"timezone": "Europe/Oslo"}, {"currency": "NOK"}])
def test_a_snapshot_computed_before_the_shops_timezone_or_currency_changed_is_not_used(session, shop, change):
    """Days are cut at the shop's local midnight and money is summed in its currency: a snapshot
    made under the old zone or currency answers a different question, so it is computed live."""
    refresh_snapshots(session, shop.id, NOW)
    start, end = standard_periods(TODAY)[1]
    assert cached_report(session, shop.id, start, end, NOW) is not None
    for attribute, value in change.items():
        setattr(shop, attribute, value)
    session.flush()
    assert cached_report(session, shop.id, start, end, NOW) is None
    found = report(session, shop.id, start, end, NOW)
    assert found.summary == summary(session, shop.id, start, end, NOW)
    assert (found.summary["timezone"], found.summary["currency"]) == (shop.timezone, shop.currency)
