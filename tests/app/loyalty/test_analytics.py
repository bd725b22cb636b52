"""Analytics: exact figures on small hand-built shops (members vs non-members, refunds, local days,
zero-filled series, liability, churn by the win-back rule, campaigns, cross-shop isolation, CSV)."""
from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from app.loyalty.analytics import SERIES_KEYS, daily_series, series_csv, summary
from app.loyalty.apply import apply_event
from app.loyalty.errors import Invalid
from app.loyalty.events import OrderPaid, OrderRefundsListed
from app.loyalty.expiry import expire_inactive_points
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.pending import release_pending_points
from app.loyalty.winback import email_key, select_lapsing
from app.models import EmailSend, LedgerEntry, Order, Referral, ReferralClick, Reward, WinbackEnrollment
from tests.factories import cancelled, make_customer, make_shop, paid, refunded

TZ = "America/New_York"  # UTC-5 in early March (DST starts 8 March 2026)
START, END = date(2026, 3, 1), date(2026, 3, 7)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def local(day: int, hour: int = 12, minute: int = 0) -> datetime:
    """March `day`, 2026, at hour:minute New York time (EST), as UTC."""
    return datetime(2026, 3, day, hour + 5, minute, tzinfo=UTC) if hour + 5 < 24 else \
        datetime(2026, 3, day + 1, hour + 5 - 24, minute, tzinfo=UTC)


def buy(session, shop, customer, at: datetime, amount: str, **kwargs) -> Order:
    """A paid order through the real order path; a customer of None is a guest (pass email=...)."""
    order_id = f"o{next(_ids)}"
    apply_event(session, shop.id, paid(order_id, at=at, customer=customer, subtotal=amount, placed_at=at, **kwargs))
    session.flush()
    return session.query(Order).filter_by(shop_id=shop.id, platform_order_id=order_id).one()


def entry(session, shop, customer, kind: str, points: int, at: datetime, **kwargs) -> None:
    post_entry(session, lock_customer(session, shop.id, customer.id), kind=kind, key=f"test:{next(_ids)}", now=at,
               points=points, **kwargs)
    session.flush()


def day_row(rows, day: int) -> dict:
    return next(r for r in rows if r["date"] == f"2026-03-{day:02d}")


@pytest.fixture
def shop(session):
    return make_shop(session, timezone=TZ)


# --- members vs non-members ------------------------------------------------------------------

def test_member_and_non_member_orders_revenue_aov_and_repeat_rate(session, shop):
    alice, bob = make_customer(session, shop), make_customer(session, shop)
    buy(session, shop, alice, local(2, 10), "100.00")
    buy(session, shop, alice, local(4, 10), "60.00")
    buy(session, shop, bob, local(3, 10), "40.00")
    carol = make_customer(session, shop)
    buy(session, shop, carol, datetime(2026, 2, 20, tzinfo=UTC), "50.00")  # before the period: makes carol a repeat buyer
    buy(session, shop, carol, local(5, 10), "10.00")
    # Non-members: a guest checking out twice under one email, and a customer whose only order
    # was imported history (no points, so no ledger activity).
    buy(session, shop, None, local(2, 11), "30.00", email="guest@example.com")
    buy(session, shop, None, local(5, 11), "20.00", email="Guest@Example.com")
    dave = make_customer(session, shop)
    history = paid(f"o{next(_ids)}", at=local(3, 9), customer=dave, subtotal="90.00")
    apply_event(session, shop.id, OrderPaid(history.order, history.occurred_at, historical=True))
    session.flush()

    s = summary(session, shop.id, START, END, NOW)

    assert (s["member_orders"], s["member_buyers"], s["member_revenue"]) == (4, 3, "210.00")
    assert s["member_aov"] == "52.50" and s["member_orders_per_buyer"] == pytest.approx(4 / 3, abs=1e-4)
    assert s["member_repeat_purchase_rate"] == pytest.approx(2 / 3, abs=1e-4)  # alice (2 in it), carol (1 before)
    assert (s["non_member_orders"], s["non_member_buyers"], s["non_member_revenue"]) == (3, 2, "140.00")
    assert s["non_member_aov"] == "46.67" and s["non_member_repeat_purchase_rate"] == 0.5  # the guest, not dave
    assert s["members"] == 3 and s["new_members"] == 2  # carol joined in February
    assert s["active_members"] == 3


def test_refunds_reduce_revenue_on_the_day_the_order_was_paid(session, shop):
    alice = make_customer(session, shop)
    order = buy(session, shop, alice, local(2), "100.00")
    apply_event(session, shop.id, refunded(order.platform_order_id, "r1", "25.00", at=local(6)))
    session.flush()

    s = summary(session, shop.id, START, END, NOW)
    rows = daily_series(session, shop.id, START, END)

    assert s["member_revenue"] == "75.00" and s["member_aov"] == "75.00"
    assert day_row(rows, 2)["member_revenue"] == "75.00" and day_row(rows, 6)["member_revenue"] == "0.00"
    assert s["points_issued"] == 100 and s["points_reversed"] == 25


def test_cancelled_and_test_orders_are_not_sales(session, shop):
    alice = make_customer(session, shop)
    buy(session, shop, alice, local(2), "100.00", is_test=True)
    order = buy(session, shop, alice, local(3), "70.00")
    apply_event(session, shop.id, cancelled(order.platform_order_id, at=local(4)))
    session.flush()

    s = summary(session, shop.id, START, END, NOW)

    assert s["member_orders"] == 0 and s["non_member_orders"] == 0 and s["member_revenue"] == "0.00"


# --- days in the shop's timezone ---------------------------------------------------------------

def test_an_order_at_2330_local_lands_on_its_local_day_not_the_utc_one(session, shop):
    alice = make_customer(session, shop)
    late = local(2, 23, 30)
    assert late.date() == date(2026, 3, 3)  # already the 3rd in UTC
    buy(session, shop, alice, late, "40.00")

    rows = daily_series(session, shop.id, START, END)

    assert day_row(rows, 2)["member_orders"] == 1 and day_row(rows, 2)["points_issued"] == 40
    assert day_row(rows, 3)["member_orders"] == 0 and day_row(rows, 3)["points_issued"] == 0


def test_the_period_runs_from_local_midnight_to_local_midnight(session, shop):
    alice = make_customer(session, shop)
    buy(session, shop, alice, local(1, 0, 10), "11.00")    # 05:10 UTC on the 1st: in
    buy(session, shop, alice, local(7, 23, 50), "13.00")   # 04:50 UTC on the 8th: in
    buy(session, shop, alice, datetime(2026, 3, 1, 4, 50, tzinfo=UTC), "17.00")  # 23:50 on 28 Feb local: out

    s = summary(session, shop.id, START, END, NOW)

    assert (s["member_orders"], s["member_revenue"]) == (2, "24.00")


def test_daily_series_has_every_day_with_zeros_filled(session, shop):
    buy(session, shop, make_customer(session, shop), local(3), "40.00")

    rows = daily_series(session, shop.id, START, END)

    assert [r["date"] for r in rows] == [f"2026-03-0{d}" for d in range(1, 8)]
    assert all(list(r) == ["date", *SERIES_KEYS] for r in rows)
    quiet = day_row(rows, 5)
    assert quiet["member_orders"] == 0 and quiet["member_revenue"] == "0.00" and quiet["member_aov"] is None
    assert quiet["points_issued"] == 0 and quiet["winback_sends"] == 0 and quiet["redemption_rate"] is None
    assert [r["members"] for r in rows] == [0, 0, 1, 1, 1, 1, 1]
    assert [r["points_outstanding"] for r in rows] == [0, 0, 40, 40, 40, 40, 40]


def test_a_period_ending_before_it_starts_or_over_a_year_is_refused(session, shop):
    with pytest.raises(Invalid):
        summary(session, shop.id, END, START, NOW)
    with pytest.raises(Invalid):
        daily_series(session, shop.id, date(2025, 1, 1), date(2026, 1, 2))


def test_a_period_on_the_calendars_first_or_last_day_is_refused_not_an_overflow(session):
    # Their midnights in UTC fall outside what a datetime holds (east of UTC for the first day).
    east = make_shop(session, timezone="Pacific/Kiritimati")  # UTC+14
    for start, end in ((date.min, date.min + timedelta(days=1)), (date.max - timedelta(days=1), date.max)):
        with pytest.raises(Invalid):
            summary(session, east.id, start, end, NOW)


# --- points and the liability ------------------------------------------------------------------

def test_points_flows_outstanding_and_redemption_rate(session, shop):
    alice, bob = make_customer(session, shop), make_customer(session, shop)
    entry(session, shop, alice, "earn", 1000, datetime(2026, 2, 1, tzinfo=UTC))  # before: outstanding only
    entry(session, shop, alice, "earn", 800, local(2), source="order")
    entry(session, shop, bob, "earn", 0, local(2), pending_delta=200, source="order")  # held: issued, not spendable
    entry(session, shop, alice, "redeem", -500, local(3))
    entry(session, shop, alice, "redeem_reversal", 100, local(4))
    entry(session, shop, alice, "adjust", -30, local(4), reason="goodwill correction", actor="staff:1")
    entry(session, shop, alice, "expire", -170, local(6))
    entry(session, shop, alice, "earn", 999, local(8))  # after the period: not in its closing balance

    s = summary(session, shop.id, START, END, NOW)
    rows = daily_series(session, shop.id, START, END)

    assert (s["points_issued"], s["points_redeemed"], s["points_expired"], s["points_adjusted"]) == (1000, 400, 170, -30)
    assert s["points_outstanding"] == 1000 + 800 - 500 + 100 - 30 - 170 and s["points_pending"] == 200
    assert s["redemption_rate"] == 0.4
    assert [r["points_outstanding"] for r in rows] == [1000, 1800, 1300, 1370, 1370, 1200, 1200]
    assert day_row(rows, 3)["points_redeemed"] == 500 and day_row(rows, 4)["points_redeemed"] == -100


def test_expired_points_a_later_refund_drew_on_count_as_reversed_not_expired(session):
    """An expiry took two orders' points; a refund of one then takes its points from that expiry
    (expiry_cover): those points are the refunded order's reversal, not expired points."""
    shop = make_shop(session, timezone=TZ, expiry_months=6)
    alice = make_customer(session, shop)
    earned_at = datetime(2025, 8, 1, 12, tzinfo=UTC)
    refunded_order = buy(session, shop, alice, earned_at, "100")
    buy(session, shop, alice, earned_at, "60")
    assert expire_inactive_points(session, shop.id, local(2)).status == "applied"
    apply_event(session, shop.id, refunded(refunded_order.platform_order_id, "r1", "100", local(5)))
    session.flush()
    covered = session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="reverse").one()
    assert (covered.points, covered.expiry_cover) == (0, 100)

    s = summary(session, shop.id, START, END, NOW)
    rows = daily_series(session, shop.id, START, END)

    assert (s["points_expired"], s["points_reversed"]) == (60, 100)
    assert (day_row(rows, 2)["points_expired"], day_row(rows, 5)["points_reversed"]) == (60, 100)
    # A period that ends before the refund: what expired is what is known now, as a refund also
    # lowers the revenue of the day its order was paid; the days do not depend on the period.
    assert summary(session, shop.id, START, date(2026, 3, 3), NOW)["points_expired"] == 60
    assert daily_series(session, shop.id, date(2026, 3, 2), date(2026, 3, 2))[0]["points_expired"] == 60


def test_a_refund_withdrawn_after_its_order_was_voided_is_no_longer_counted_as_reversed(session):
    """Refunded in full inside the return window, the order is voided at its release; the refund
    then withdrawn (a WooCommerce merchant deleted it) releases the points to the balance. What
    the refund took is given back, so it is reversed no more: the flows add up to the balance."""
    shop = make_shop(session, timezone=TZ, pending_days=1)
    alice = make_customer(session, shop)
    order = buy(session, shop, alice, local(1), "100")
    apply_event(session, shop.id, refunded(order.platform_order_id, "r1", "100", local(1, 14)))
    release_pending_points(session, shop.id, local(3))
    session.flush()
    assert session.get(Order, order.id).points_status == "void"
    apply_event(session, shop.id, OrderRefundsListed(order.platform_order_id, (), local(4)))
    session.flush()
    assert session.get(type(alice), alice.id).points_balance == 100

    s = summary(session, shop.id, START, END, NOW)
    rows = daily_series(session, shop.id, START, END)

    assert (s["points_issued"], s["points_reversed"], s["points_outstanding"]) == (100, 0, 100)
    assert (day_row(rows, 1)["points_reversed"], day_row(rows, 4)["points_reversed"]) == (100, -100)
    assert sum(r["points_reversed"] for r in rows) == 0


def test_liability_is_outstanding_points_at_the_best_fixed_reward_rate(session, shop):
    alice = make_customer(session, shop)
    entry(session, shop, alice, "earn", 1234, local(2))

    s = summary(session, shop.id, START, END, NOW)
    assert (s["point_value"], s["point_value_source"], s["liability"]) == ("0.01", "rewards", "12.34")  # 5.00 per 500

    session.add(Reward(shop_id=shop.id, name="3 off", kind="fixed_amount", points_cost=200, value=Decimal("3")))
    session.add(Reward(shop_id=shop.id, name="50 off", kind="fixed_amount", points_cost=100, value=Decimal("50"),
                       active=False))
    session.flush()
    s = summary(session, shop.id, START, END, NOW)
    assert (s["point_value"], s["liability"]) == ("0.015", "18.51")
    assert day_row(daily_series(session, shop.id, START, END), 7)["liability"] == "18.51"


def test_without_a_fixed_amount_reward_the_liability_is_unknown(session):
    shop = make_shop(session, default_program=False, timezone=TZ)
    entry(session, shop, make_customer(session, shop), "earn", 300, local(2))

    s = summary(session, shop.id, START, END, NOW)

    assert (s["point_value"], s["point_value_source"], s["liability"]) == (None, "none", None)
    assert s["points_outstanding"] == 300


# --- lapsing and churn (the win-back rule) -------------------------------------------------------

def _history(session, shop, days_ago: list[float], now: datetime, **fields):
    customer = make_customer(session, shop, accepts_marketing=True, **fields)
    for ago in sorted(days_ago, reverse=True):
        buy(session, shop, customer, now - timedelta(days=ago), "40.00")
    return customer


def test_lapsing_customers_are_the_win_back_rule_without_mailing_exclusions(session):
    shop = make_shop(session, timezone=TZ)
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    _history(session, shop, [61, 51, 41, 31], now)               # gap 10 -> threshold 30: lapsing
    _history(session, shop, [59, 49, 39, 29], now)               # 29 days: not yet
    _history(session, shop, [49 + 145, 49 + 125, 49 + 100, 49], now)  # median gap 25 -> 50: not yet
    _history(session, shop, [51 + 145, 51 + 125, 51 + 100, 51], now)  # 51 > 50: lapsing
    _history(session, shop, [61], now)                           # one-time after 60: lapsing
    _history(session, shop, [45], now)                           # one-time at 45: not yet
    unsubscribed = _history(session, shop, [90], now, unsubscribed_at=now)  # not mailed, but lapsed all the same

    s = summary(session, shop.id, date(2026, 5, 1), date(2026, 5, 31), now)

    mailed = {c.customer_id for page in select_lapsing(session, shop.id, now) for c in page}
    assert s["lapsing_customers"] == len(mailed) + 1 == 4 and unsubscribed.id not in mailed


def test_churn_counts_who_lapsed_in_the_period_against_who_was_active_at_its_start(session):
    shop = make_shop(session, timezone="UTC")
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    # Period: May. One-time customers lapse 60 days after their order.
    _history(session, shop, [80], now)    # lapses 12 May: churned in May
    _history(session, shop, [70], now)    # lapses 22 May: churned in May
    _history(session, shop, [100], now)   # lapsed 22 April: gone before May, not in the base
    _history(session, shop, [40], now)    # lapses 21 June: in the base, not churned
    _history(session, shop, [10], now)    # first order 22 May: not in the base

    s = summary(session, shop.id, date(2026, 5, 1), date(2026, 5, 31), now)
    rows = daily_series(session, shop.id, date(2026, 5, 1), date(2026, 5, 31), now)

    assert (s["churned_customers"], s["churn_base"], s["churn_rate"]) == (2, 3, pytest.approx(0.6667, abs=1e-4))
    assert s["lapsing_customers"] == 3
    assert {r["date"]: r["churned_customers"] for r in rows if r["churned_customers"]} == {
        "2026-05-12": 1, "2026-05-22": 1}


def test_clv_is_aov_times_orders_per_buyer_times_expected_lifespan_in_periods(session):
    shop = make_shop(session, timezone="UTC")
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    _history(session, shop, [80], now)   # churns in May
    _history(session, shop, [40], now)   # in the base, stays
    alice = _history(session, shop, [45], now)
    buy(session, shop, alice, datetime(2026, 5, 10, tzinfo=UTC), "60.00")
    buy(session, shop, alice, datetime(2026, 5, 20, tzinfo=UTC), "20.00")

    s = summary(session, shop.id, date(2026, 5, 1), date(2026, 5, 31), now)

    # churn 1 of 3 in 31 days -> lifespan 93 days = 3 periods; May: 2 orders, 1 buyer, AOV 40.00
    assert (s["churned_customers"], s["churn_base"]) == (1, 3)
    assert s["expected_lifespan_days"] == 93.0
    assert s["member_clv"] == "240.00" and s["non_member_clv"] is None


# --- ladder, campaigns ---------------------------------------------------------------------------

def test_ladder_distribution_counts_every_customer_at_their_stage(session, shop):
    make_customer(session, shop)
    make_customer(session, shop, orders_count=1)
    make_customer(session, shop, orders_count=3)
    make_customer(session, shop, orders_count=6)
    make_customer(session, shop, orders_count=2, referrals_completed=1)

    ladder = summary(session, shop.id, START, END, NOW)["ladder"]

    assert ladder == {"prospect": 1, "first_time": 1, "returning": 1, "loyal": 1, "ambassador": 1}


def test_winback_sends_conversions_and_recovered_revenue_after_refunds(session, shop):
    alice, bob = make_customer(session, shop), make_customer(session, shop)
    for n, (customer, template, status, at) in enumerate([
        (alice, "winback_reminder", "sent", local(1)), (alice, "winback_incentive", "sent", local(3)),
        (bob, "winback_reminder", "skipped", local(1)), (bob, "points_expiring", "sent", local(1)),
        (bob, "winback_reminder", "sent", local(8)),
    ]):
        session.add(EmailSend(shop_id=shop.id, customer_id=customer.id, template=template, send_key=f"k{n}",
                              status=status, sent_at=at if status == "sent" else None))
    order = buy(session, shop, alice, local(5), "80.00")
    apply_event(session, shop.id, refunded(order.platform_order_id, "r9", "30.00", at=local(6)))
    session.add(WinbackEnrollment(shop_id=shop.id, customer_id=alice.id, status="converted", enrolled_at=local(1),
                                  step1_sent_at=local(1), ended_at=local(5), converted_order_id=order.id,
                                  recovered_revenue=Decimal("80.00")))
    session.add(WinbackEnrollment(shop_id=shop.id, customer_id=bob.id, status="completed", enrolled_at=local(1),
                                  ended_at=local(6)))
    session.flush()

    s = summary(session, shop.id, START, END, NOW)
    rows = daily_series(session, shop.id, START, END)

    assert (s["winback_sends"], s["winback_conversions"], s["winback_recovered_revenue"]) == (2, 1, "50.00")
    assert day_row(rows, 5)["winback_conversions"] == 1 and day_row(rows, 5)["winback_recovered_revenue"] == "50.00"
    assert day_row(rows, 3)["winback_sends"] == 1


def test_a_holdout_conversion_is_not_a_winback_conversion(session, shop):
    # The holdout got no email: its orders are the baseline the lift is measured against
    # (app.loyalty.winback.campaign_results), not customers the emails brought back.
    carol = make_customer(session, shop)
    order = buy(session, shop, carol, local(5), "80.00")
    session.add(WinbackEnrollment(shop_id=shop.id, customer_id=carol.id, status="converted", holdout=True,
                                  enrolled_at=local(1), step1_sent_at=local(1), ended_at=local(5),
                                  converted_order_id=order.id, recovered_revenue=Decimal("80.00")))
    session.flush()
    s = summary(session, shop.id, START, END, NOW)
    assert (s["winback_conversions"], s["winback_recovered_revenue"]) == (0, "0.00")
    assert day_row(daily_series(session, shop.id, START, END), 5)["winback_conversions"] == 0


def test_referral_clicks_conversions_and_revenue(session, shop):
    advocate, friend, other = (make_customer(session, shop) for _ in range(3))
    for at in (local(1), local(1, 23), local(2), datetime(2026, 2, 27, tzinfo=UTC)):
        session.add(ReferralClick(shop_id=shop.id, advocate_id=advocate.id, clicked_at=at))
    first = buy(session, shop, friend, local(2), "90.00")
    session.add(Referral(shop_id=shop.id, advocate_id=advocate.id, friend_id=friend.id, status="completed",
                         order_id=first.id, completed_at=local(2)))
    session.add(Referral(shop_id=shop.id, advocate_id=advocate.id, friend_id=other.id, status="pending"))
    session.flush()

    s = summary(session, shop.id, START, END, NOW)
    rows = daily_series(session, shop.id, START, END)

    assert (s["referral_clicks"], s["referral_conversions"], s["referral_revenue"]) == (3, 1, "90.00")
    assert s["referral_conversion_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert day_row(rows, 1)["referral_clicks"] == 2 and day_row(rows, 2)["referral_revenue"] == "90.00"


# --- isolation and export ------------------------------------------------------------------------

def _busy_shop(session, shop):
    alice = make_customer(session, shop)
    buy(session, shop, alice, local(2), "100.00")
    buy(session, shop, None, local(3), "30.00", email="guest@example.com")
    entry(session, shop, alice, "redeem", -50, local(4))
    session.add(ReferralClick(shop_id=shop.id, advocate_id=alice.id, clicked_at=local(2)))
    session.add(EmailSend(shop_id=shop.id, customer_id=alice.id, template="winback_reminder", send_key=f"k{next(_ids)}",
                          status="sent", sent_at=local(2)))
    session.flush()
    return alice


def test_another_shops_data_is_never_counted(session, shop):
    _busy_shop(session, shop)
    before = summary(session, shop.id, START, END, NOW), daily_series(session, shop.id, START, END)

    other = make_shop(session, timezone=TZ)
    for _ in range(3):
        _busy_shop(session, other)
    _history(session, other, [61, 51], NOW)

    assert (summary(session, shop.id, START, END, NOW), daily_series(session, shop.id, START, END)) == before
    s = summary(session, other.id, START, END, NOW)
    assert (s["member_orders"], s["referral_clicks"], s["winback_sends"]) == (3, 3, 3)


def test_series_csv_has_a_stable_header_and_one_line_per_day(session, shop):
    _busy_shop(session, shop)
    rows = daily_series(session, shop.id, START, END)

    text = series_csv(rows)
    parsed = list(csv.reader(io.StringIO(text)))

    assert parsed[0] == ["date", *SERIES_KEYS]
    assert parsed[0][:5] == ["date", "new_members", "members", "active_members", "points_issued"]
    assert len(parsed) == 8 and text.endswith("\r\n")
    second = dict(zip(parsed[0], parsed[2], strict=True))
    assert (second["date"], second["member_orders"], second["member_revenue"], second["points_issued"]) == (
        "2026-03-02", "1", "100.00", "100")
    assert dict(zip(parsed[0], parsed[1], strict=True))["member_aov"] == ""  # None: no orders that day


def test_churn_rate_counts_only_the_base_so_it_never_exceeds_one(session):
    """Customers who first ordered inside a long period and lapsed before its end are churned
    but not in the base (they had not ordered before it): the rate must not count them against
    a base they are not part of (a 90-day dashboard period, one-time customers lapse at 60 days)."""
    shop = make_shop(session, timezone="UTC")
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    _history(session, shop, [101], now)  # 20 Feb, before the period: in the base, lapses 21 April
    _history(session, shop, [88], now)   # 5 March, in the period: lapses 4 May, not in the base
    _history(session, shop, [83], now)   # 10 March, in the period: lapses 9 May, not in the base

    s = summary(session, shop.id, date(2026, 3, 1), date(2026, 5, 31), now)
    rows = daily_series(session, shop.id, date(2026, 3, 1), date(2026, 5, 31), now)

    assert (s["churned_customers"], s["churn_base"], s["churn_rate"]) == (1, 1, 1.0)
    assert {r["date"]: r["churned_customers"] for r in rows if r["churned_customers"]} == {"2026-04-21": 1}


def test_a_winback_conversion_whose_order_was_cancelled_recovers_no_revenue(session, shop):
    """The order that converted a win-back sequence is cancelled afterwards: it is no sale (the
    sales figures drop it), so it cannot be revenue the campaign recovered nor a conversion."""
    alice = make_customer(session, shop)
    buy(session, shop, alice, datetime(2026, 1, 1, 17, tzinfo=UTC), "40.00")  # lapsed since
    enrollment = WinbackEnrollment(shop_id=shop.id, customer_id=alice.id, status="active", enrolled_at=local(1),
                                   step1_sent_at=local(1))
    session.add(enrollment)
    session.flush()
    session.add(EmailSend(shop_id=shop.id, customer_id=alice.id, template="winback_reminder",
                          send_key=email_key(enrollment.id, 1), status="sent", sent_at=local(1)))
    session.flush()
    order = buy(session, shop, alice, local(3), "80.00")  # the real order path converts the sequence
    session.refresh(enrollment)
    assert (enrollment.status, enrollment.converted_order_id) == ("converted", order.id)
    apply_event(session, shop.id, cancelled(order.platform_order_id, at=local(4)))
    session.flush()

    s = summary(session, shop.id, START, END, NOW)

    assert s["member_orders"] == 0 and s["member_revenue"] == "0.00"  # the cancelled order is no sale
    assert s["winback_recovered_revenue"] == "0.00"
    assert s["winback_conversions"] == 0
    assert sum(r["winback_conversions"] for r in daily_series(session, shop.id, START, END, NOW)) == 0


def test_a_winback_conversion_counts_its_order_net_of_refunds_and_not_at_all_once_fully_refunded(session, shop):
    enrollments = []
    for total in ("80.00", "50.00"):
        customer = make_customer(session, shop)
        buy(session, shop, customer, datetime(2026, 1, 1, 17, tzinfo=UTC), "40.00")
        enrollment = WinbackEnrollment(shop_id=shop.id, customer_id=customer.id, status="active",
                                       enrolled_at=local(1), step1_sent_at=local(1))
        session.add(enrollment)
        session.flush()
        session.add(EmailSend(shop_id=shop.id, customer_id=customer.id, template="winback_reminder",
                              send_key=email_key(enrollment.id, 1), status="sent", sent_at=local(1)))
        session.flush()
        enrollments.append((enrollment, buy(session, shop, customer, local(3), total)))
    (_, partly), (_, fully) = enrollments
    apply_event(session, shop.id, refunded(partly.platform_order_id, "r1", "30.00", at=local(4)))
    apply_event(session, shop.id, refunded(fully.platform_order_id, "r2", "50.00", at=local(4)))
    session.flush()

    s = summary(session, shop.id, START, END, NOW)

    assert (s["winback_conversions"], s["winback_recovered_revenue"]) == (1, "50.00")
