"""Points expire after `expiry_months` calendar months (in the shop's zone) without an earn or a
redemption; the job expires each inactive balance once, and expires_at() says when."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.loyalty.apply import apply_event
from app.loyalty.calendar import local
from app.loyalty.expiry import expire_inactive_points, expires_at
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import find_balance_drift, ledger_sums
from app.loyalty.redemptions import redeem_reward
from app.models import LedgerEntry, Reward
from tests.factories import make_customer, make_shop, paid

SECOND = timedelta(seconds=1)


def _reload(session, row) -> None:
    session.flush()
    session.refresh(row)


def _expiries(session, shop) -> list[LedgerEntry]:
    return session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="expire").order_by(LedgerEntry.id).all()


def _earner(session, shop, at, subtotal="100"):
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(f"first-{customer.id}", at, customer=customer, subtotal=subtotal))
    _reload(session, customer)
    return customer


def test_points_expire_after_expiry_months_without_activity(session):
    shop = make_shop(session, expiry_months=6)
    earned_at = datetime(2025, 1, 10, 9, 30, tzinfo=UTC)
    customer = _earner(session, shop, earned_at)
    assert expire_inactive_points(session, shop.id, datetime(2025, 7, 10, 9, 30, tzinfo=UTC)).status == "noop"
    assert _expiries(session, shop) == []

    run_at = datetime(2025, 7, 10, 9, 30, 1, tzinfo=UTC)
    outcome = expire_inactive_points(session, shop.id, run_at)
    [entry] = _expiries(session, shop)
    assert (entry.points, entry.customer_id, entry.source) == (-100, customer.id, "inactivity")
    assert entry.created_at == run_at
    assert outcome.intents == [NotifyCustomer(shop.id, customer.id, "points_expired", key=entry.idempotency_key)]
    _reload(session, customer)
    assert customer.points_balance == 0
    session.flush()
    assert find_balance_drift(session, shop.id) == []
    assert ledger_sums(session, shop.id, customer.id) == (0, 0)


def test_running_the_expiry_twice_expires_once(session):
    shop = make_shop(session, expiry_months=6)
    customer = _earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    run_at = datetime(2025, 8, 1, tzinfo=UTC)
    assert expire_inactive_points(session, shop.id, run_at).status == "applied"
    assert expire_inactive_points(session, shop.id, run_at).status == "noop"
    assert expire_inactive_points(session, shop.id, run_at + timedelta(days=40)).status == "noop"
    assert len(_expiries(session, shop)) == 1
    _reload(session, customer)
    assert customer.points_balance == 0


def test_only_inactive_customers_of_the_shop_expire(session):
    shop = make_shop(session, expiry_months=6)
    other_shop = make_shop(session, expiry_months=6)
    idle = _earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    active = _earner(session, shop, datetime(2025, 5, 10, tzinfo=UTC))
    elsewhere = _earner(session, other_shop, datetime(2025, 1, 10, tzinfo=UTC))
    expire_inactive_points(session, shop.id, datetime(2025, 8, 1, tzinfo=UTC))
    for customer in (idle, active, elsewhere):
        _reload(session, customer)
    assert (idle.points_balance, active.points_balance, elsewhere.points_balance) == (0, 100, 100)


def test_an_earn_resets_the_clock(session):
    shop = make_shop(session, expiry_months=6)
    customer = _earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    apply_event(session, shop.id, paid("second", datetime(2025, 5, 1, tzinfo=UTC), customer=customer, subtotal="20"))
    assert expire_inactive_points(session, shop.id, datetime(2025, 8, 1, tzinfo=UTC)).status == "noop"
    assert expire_inactive_points(session, shop.id, datetime(2025, 11, 1, tzinfo=UTC)).status == "noop"
    expire_inactive_points(session, shop.id, datetime(2025, 11, 1, tzinfo=UTC) + SECOND)
    [entry] = _expiries(session, shop)
    assert entry.points == -120  # everything, the older points included
    _reload(session, customer)
    assert customer.points_balance == 0


def test_a_redemption_resets_the_clock(session):
    shop = make_shop(session, expiry_months=6)
    customer = _earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC), subtotal="400")
    reward = session.query(Reward).filter_by(shop_id=shop.id, points_cost=300).one()
    redeemed_at = datetime(2025, 6, 1, tzinfo=UTC)
    redeem_reward(session, shop.id, customer.id, reward.id, "spend", redeemed_at)
    assert expire_inactive_points(session, shop.id, datetime(2025, 8, 1, tzinfo=UTC)).status == "noop"
    assert expire_inactive_points(session, shop.id, datetime(2025, 12, 1, tzinfo=UTC)).status == "noop"
    expire_inactive_points(session, shop.id, datetime(2025, 12, 1, tzinfo=UTC) + SECOND)
    [entry] = _expiries(session, shop)
    assert entry.points == -100
    _reload(session, customer)
    assert customer.points_balance == 0


def test_points_earned_again_after_an_expiry_expire_again_later(session):
    shop = make_shop(session, expiry_months=6)
    customer = _earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    expire_inactive_points(session, shop.id, datetime(2025, 8, 1, tzinfo=UTC))
    apply_event(session, shop.id, paid("again", datetime(2025, 9, 1, tzinfo=UTC), customer=customer, subtotal="30"))
    assert expire_inactive_points(session, shop.id, datetime(2026, 3, 1, tzinfo=UTC)).status == "noop"
    expire_inactive_points(session, shop.id, datetime(2026, 3, 2, tzinfo=UTC))
    assert [e.points for e in _expiries(session, shop)] == [-100, -30]
    _reload(session, customer)
    assert customer.points_balance == 0


def test_no_expiry_when_expiry_months_is_none(session):
    shop = make_shop(session)  # expiry_months defaults to None
    customer = _earner(session, shop, datetime(2020, 1, 1, tzinfo=UTC))
    assert expires_at(shop, customer) is None
    assert expire_inactive_points(session, shop.id, datetime(2026, 3, 10, tzinfo=UTC)).status == "noop"
    assert _expiries(session, shop) == []
    _reload(session, customer)
    assert customer.points_balance == 100


# --- the shop's calendar ----------------------------------------------------------------------

def test_expires_at_is_the_same_local_time_expiry_months_later(session):
    shop = make_shop(session, expiry_months=6)
    customer = _earner(session, shop, datetime(2025, 1, 10, 9, 30, tzinfo=UTC))
    assert expires_at(shop, customer) == datetime(2025, 7, 10, 9, 30, tzinfo=UTC)


def test_expires_at_is_none_without_a_balance(session):
    shop = make_shop(session, expiry_months=6)
    customer = make_customer(session, shop)
    assert expires_at(shop, customer) is None


def test_months_are_counted_in_the_shops_timezone(session):
    shop = make_shop(session, expiry_months=1, timezone="America/Los_Angeles")
    # 2026-03-01 05:00Z is still Feb 28 (21:00) in Los Angeles: one month later is Mar 28 there,
    # 21:00 PDT = Mar 29 04:00Z; counted in UTC it would be Apr 1 05:00Z.
    customer = _earner(session, shop, datetime(2026, 3, 1, 5, 0, tzinfo=UTC))
    expected = datetime(2026, 3, 29, 4, 0, tzinfo=UTC)
    assert expires_at(shop, customer) == expected
    assert local(expires_at(shop, customer), shop.timezone).date() == date(2026, 3, 28)
    assert expire_inactive_points(session, shop.id, expected - SECOND).status == "noop"
    assert expire_inactive_points(session, shop.id, expected + SECOND).status == "applied"
    _reload(session, customer)
    assert customer.points_balance == 0


def test_months_follow_the_local_clock_across_a_daylight_saving_change(session):
    shop = make_shop(session, expiry_months=1, timezone="Pacific/Auckland")
    # Mar 15 01:00 NZDT (+13); a month later is Apr 15 01:00 NZST (+12) = Apr 14 13:00Z.
    customer = _earner(session, shop, datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    expected = datetime(2026, 4, 14, 13, 0, tzinfo=UTC)
    assert expires_at(shop, customer) == expected
    assert expire_inactive_points(session, shop.id, datetime(2026, 4, 14, 12, 30, tzinfo=UTC)).status == "noop"
    assert expire_inactive_points(session, shop.id, expected + SECOND).status == "applied"


def test_expiry_from_a_month_end_is_clamped_to_the_last_day_of_the_shorter_month(session):
    shop = make_shop(session, expiry_months=1, timezone="Europe/Berlin")
    # Jan 31 10:00 in Berlin: one month later is Feb 28 10:00 there (09:00Z).
    customer = _earner(session, shop, datetime(2026, 1, 31, 9, 0, tzinfo=UTC))
    expected = datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    assert expires_at(shop, customer) == expected
    # The job honours the date the shopper is shown: not a second early, and not days late.
    assert expire_inactive_points(session, shop.id, expected - SECOND).status == "noop"
    assert expire_inactive_points(session, shop.id, expected + SECOND).status == "applied"
    _reload(session, customer)
    assert customer.points_balance == 0


def test_a_late_older_event_does_not_wind_the_expiry_clock_back(session):
    shop = make_shop(session, expiry_months=6)
    recent = datetime(2025, 6, 1, tzinfo=UTC)
    customer = _earner(session, shop, recent)
    # A retried webhook for an order from months earlier is applied now.
    apply_event(session, shop.id, paid("late-older", datetime(2025, 1, 1, tzinfo=UTC), customer=customer, subtotal="10"))
    _reload(session, customer)
    assert customer.last_activity_at == recent
    assert expire_inactive_points(session, shop.id, datetime(2025, 8, 1, tzinfo=UTC)).status == "noop"


def test_points_given_by_staff_after_an_expiry_can_expire_again(session):
    from app.loyalty.adjustments import adjust_points

    shop = make_shop(session, expiry_months=6)
    customer = _earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    expire_inactive_points(session, shop.id, datetime(2025, 8, 1, tzinfo=UTC))
    adjust_points(session, shop.id, customer.id, 40, reason="goodwill", actor="staff:a", now=datetime(2025, 8, 2, tzinfo=UTC))
    # Adjustments are not shopper activity: the 40 points expire on the next run, with a new key.
    assert expire_inactive_points(session, shop.id, datetime(2025, 8, 3, tzinfo=UTC)).status == "applied"
    _reload(session, customer)
    assert customer.points_balance == 0
    assert len(_expiries(session, shop)) == 2


# --- reminders before the expiry (points_expiring) --------------------------------------------

def _reminded(session, shop, now) -> list[tuple[int, str]]:
    from app.loyalty.expiry import expiry_reminders

    return [(i.customer_id, i.key) for i in expiry_reminders(session, shop.id, now).intents
            if i.template == "points_expiring"]


def _consenting_earner(session, shop, at, subtotal="100"):
    customer = make_customer(session, shop, accepts_marketing=True)
    apply_event(session, shop.id, paid(f"first-{customer.id}", at, customer=customer, subtotal=subtotal))
    _reload(session, customer)
    return customer


def test_reminders_30_and_7_days_before_in_the_shops_timezone(session):
    shop = make_shop(session, expiry_months=6, timezone="Pacific/Auckland")
    # Earned 2025-01-10 20:00Z = Jan 11 09:00 NZDT: expires Jul 11 09:00 NZST (local date Jul 11).
    customer = _consenting_earner(session, shop, datetime(2025, 1, 10, 20, 0, tzinfo=UTC))
    assert local(expires_at(shop, customer), shop.timezone).date() == date(2025, 7, 11)
    # Jun 10 12:00Z is still Jun 11 00:00 in Auckland (UTC+12): 30 days before Jul 11 there.
    # Counted in UTC (Jun 10) it would be 31 days: nothing yet an hour earlier.
    assert _reminded(session, shop, datetime(2025, 6, 10, 11, 0, tzinfo=UTC)) == []
    assert _reminded(session, shop, datetime(2025, 6, 10, 12, 0, tzinfo=UTC)) == [
        (customer.id, f"expiry-reminder:{customer.id}:2025-07-11:30")]
    # Between the thresholds the 30-day reminder stays the one due (until it is sent).
    assert _reminded(session, shop, datetime(2025, 6, 25, 12, 0, tzinfo=UTC)) == [
        (customer.id, f"expiry-reminder:{customer.id}:2025-07-11:30")]
    assert _reminded(session, shop, datetime(2025, 7, 4, 12, 0, tzinfo=UTC)) == [
        (customer.id, f"expiry-reminder:{customer.id}:2025-07-11:7")]
    # On the local expiry day itself there is nothing left to remind of.
    assert _reminded(session, shop, datetime(2025, 7, 10, 12, 0, tzinfo=UTC)) == []


def test_no_reminders_without_expiry_months(session):
    from app.loyalty.expiry import expiry_reminders

    shop = make_shop(session)
    _consenting_earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    outcome = expiry_reminders(session, shop.id, datetime(2025, 6, 10, 12, 0, tzinfo=UTC))
    assert (outcome.status, outcome.intents) == ("noop", [])


def test_no_reminder_for_a_zero_balance_or_without_consent(session):
    from app.loyalty.adjustments import adjust_points

    shop = make_shop(session, expiry_months=6)
    spent = _consenting_earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    adjust_points(session, shop.id, spent.id, -100, reason="test", actor="staff:a",
                  now=datetime(2025, 1, 11, tzinfo=UTC))
    no_consent = _earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    other_shop = make_shop(session, expiry_months=6)
    _consenting_earner(session, other_shop, datetime(2025, 1, 10, tzinfo=UTC))
    session.flush()
    assert no_consent.points_balance == 100
    assert _reminded(session, shop, datetime(2025, 6, 20, tzinfo=UTC)) == []


def test_reminded_once_per_threshold_per_expiry_date(session):
    from app.models import EmailSend

    shop = make_shop(session, expiry_months=6)
    customer = _consenting_earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    first = _reminded(session, shop, datetime(2025, 6, 10, tzinfo=UTC))
    assert first == [(customer.id, f"expiry-reminder:{customer.id}:2025-07-10:30")]
    # The email job records the send (jobs.emails); from then on the next days select nothing.
    session.add(EmailSend(shop_id=shop.id, customer_id=customer.id, template="points_expiring",
                          send_key=first[0][1], status="sent"))
    session.flush()
    assert _reminded(session, shop, datetime(2025, 6, 10, tzinfo=UTC)) == []
    assert _reminded(session, shop, datetime(2025, 6, 11, tzinfo=UTC)) == []
    seven = _reminded(session, shop, datetime(2025, 7, 3, tzinfo=UTC))
    assert seven == [(customer.id, f"expiry-reminder:{customer.id}:2025-07-10:7")]
    session.add(EmailSend(shop_id=shop.id, customer_id=customer.id, template="points_expiring",
                          send_key=seven[0][1], status="sent"))
    session.flush()
    assert _reminded(session, shop, datetime(2025, 7, 5, tzinfo=UTC)) == []
    # An earn moves the expiry date: a new date is a new reminder.
    apply_event(session, shop.id, paid("later", datetime(2025, 7, 6, tzinfo=UTC), customer=customer, subtotal="5"))
    assert _reminded(session, shop, datetime(2025, 12, 10, tzinfo=UTC)) == [
        (customer.id, f"expiry-reminder:{customer.id}:2026-01-06:30")]


def test_an_order_still_in_its_pending_period_resets_the_clock(session):
    from app.loyalty.pending import release_pending_points

    shop = make_shop(session, expiry_months=6, pending_days=14)
    customer = _earner(session, shop, datetime(2025, 1, 10, tzinfo=UTC))
    release_pending_points(session, shop.id, datetime(2025, 1, 24, tzinfo=UTC))
    _reload(session, customer)
    assert customer.points_balance == 100
    # A new order 4 days before the old points would expire (Jul 24): it is an earn, held for
    # its return window; the shopper is active and their balance must not expire meanwhile.
    apply_event(session, shop.id, paid("recent", datetime(2025, 7, 20, tzinfo=UTC), customer=customer, subtotal="20"))
    assert expire_inactive_points(session, shop.id, datetime(2025, 7, 25, tzinfo=UTC)).status == "noop"
    _reload(session, customer)
    assert (customer.points_balance, customer.pending_points) == (100, 20)
    assert expires_at(shop, customer) == datetime(2026, 1, 20, tzinfo=UTC)
