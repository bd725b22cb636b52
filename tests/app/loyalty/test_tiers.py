"""VIP tiers: up at once on the qualifying order, down only when tiers are reviewed; the basis
(spend or points) and the period (lifetime, rolling 12 months, calendar year in the shop's zone)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.loyalty.apply import apply_event
from app.loyalty.expiry import expire_inactive_points
from app.loyalty.intents import NotifyCustomer
from app.loyalty.tiers import review_tiers
from app.models import Customer, Tier
from tests.factories import cancelled, make_customer, make_shop, paid, refunded, set_rule


def _reload(session, row) -> None:
    session.flush()
    session.refresh(row)


def _tier(session, shop, name: str) -> Tier:
    return session.query(Tier).filter_by(shop_id=shop.id, name=name).one()


def _tier_name(session, customer) -> str | None:
    _reload(session, customer)
    return session.get(Tier, customer.tier_id).name if customer.tier_id else None


def _tier_notices(outcome) -> list[NotifyCustomer]:
    return [i for i in outcome.intents if isinstance(i, NotifyCustomer) and i.template == "tier_reached"]


# --- promotion ------------------------------------------------------------------------------

def test_promotion_happens_at_once_on_the_qualifying_order(session, now):
    shop = make_shop(session)  # Bronze 0, Silver 500, Gold 1500 (spend, lifetime)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="499.99"))
    assert _tier_name(session, customer) == "Bronze"
    later = now + timedelta(days=1)
    outcome = apply_event(session, shop.id, paid(2, later, customer=customer, subtotal="0.01"))
    assert _tier_name(session, customer) == "Silver"
    assert customer.tier_achieved_at == later
    silver = _tier(session, shop, "Silver")
    assert _tier_notices(outcome) == [
        NotifyCustomer(shop.id, customer.id, "tier_reached", key=f"tier:{silver.id}:customer:{customer.id}")]


def test_one_big_order_promotes_straight_to_the_highest_tier_reached(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    outcome = apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="1500"))
    assert _tier_name(session, customer) == "Gold"
    gold = _tier(session, shop, "Gold")
    assert [n.key for n in _tier_notices(outcome)] == [f"tier:{gold.id}:customer:{customer.id}"]


def test_tier_reached_is_announced_only_for_tiers_above_zero(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    first = apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="10"))
    assert _tier_name(session, customer) == "Bronze"
    assert _tier_notices(first) == []
    second = apply_event(session, shop.id, paid(2, now, customer=customer, subtotal="600"))
    assert _tier_name(session, customer) == "Silver"
    assert len(_tier_notices(second)) == 1
    # Staying in the tier announces nothing more.
    third = apply_event(session, shop.id, paid(3, now, customer=customer, subtotal="10"))
    assert _tier_notices(third) == []


# --- demotion only at review ----------------------------------------------------------------

def test_refund_and_cancellation_do_not_demote_until_tiers_are_reviewed(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="600"))
    assert _tier_name(session, customer) == "Silver"
    apply_event(session, shop.id, refunded(1, "r1", "200"))
    assert _tier_name(session, customer) == "Silver"
    apply_event(session, shop.id, cancelled(1))
    assert _tier_name(session, customer) == "Silver"
    assert customer.total_spent == Decimal("0")
    # A later small order re-checks the tier, but only ever upwards.
    apply_event(session, shop.id, paid(2, now + timedelta(days=1), customer=customer, subtotal="10"))
    assert _tier_name(session, customer) == "Silver"
    assert review_tiers(session, shop.id, now + timedelta(days=30)) == 1
    assert _tier_name(session, customer) == "Bronze"


def test_review_tiers_demotes_and_promotes_in_one_pass(session, now):
    shop = make_shop(session)
    falling = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=falling, subtotal="600"))
    apply_event(session, shop.id, cancelled(1))
    steady = make_customer(session, shop)
    apply_event(session, shop.id, paid(2, now, customer=steady, subtotal="700"))
    # A customer whose spend was counted without a promotion (e.g. imported): no tier yet.
    rising = make_customer(session, shop, total_spent=Decimal("2000"))
    assert _tier_name(session, rising) is None
    review_at = now + timedelta(days=30)
    assert review_tiers(session, shop.id, review_at) == 2
    assert _tier_name(session, falling) == "Bronze"
    assert _tier_name(session, steady) == "Silver"
    assert _tier_name(session, rising) == "Gold"
    assert rising.tier_achieved_at == review_at and falling.tier_achieved_at == review_at
    # A second review with nothing changed changes nothing.
    assert review_tiers(session, shop.id, review_at) == 0


def test_review_tiers_only_touches_its_own_shop(session, now):
    shop = make_shop(session)
    other_shop = make_shop(session)
    other = make_customer(session, other_shop)
    apply_event(session, other_shop.id, paid(1, now, customer=other, subtotal="600"))
    apply_event(session, other_shop.id, cancelled(1))
    make_customer(session, shop)
    review_tiers(session, shop.id, now)
    assert _tier_name(session, other) == "Silver"


# --- basis ----------------------------------------------------------------------------------

def test_tier_basis_points_promotes_on_points_earned(session, now):
    shop = make_shop(session, tier_basis="points")
    set_rule(session, shop, "order", points_per_unit=Decimal("2"))
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="300"))  # spend 300, points 600
    assert _tier_name(session, customer) == "Silver"


def test_tier_basis_points_ignores_spend(session, now):
    shop = make_shop(session, tier_basis="points")
    set_rule(session, shop, "order", points_per_unit=Decimal("0.5"))
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="600"))  # spend 600, points 300
    assert _tier_name(session, customer) == "Bronze"
    assert review_tiers(session, shop.id, now) == 0
    assert _tier_name(session, customer) == "Bronze"


def test_tier_basis_points_review_counts_reversed_points(session, now):
    shop = make_shop(session, tier_basis="points", tier_period="rolling_12_months")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="600"))
    assert _tier_name(session, customer) == "Silver"
    apply_event(session, shop.id, refunded(1, "r1", "300", at=now + timedelta(days=1)))  # 300 points back
    assert _tier_name(session, customer) == "Silver"
    review_tiers(session, shop.id, now + timedelta(days=2))
    assert _tier_name(session, customer) == "Bronze"


# --- period ---------------------------------------------------------------------------------

def test_rolling_12_months_counts_only_the_last_365_days(session):
    shop = make_shop(session, tier_period="rolling_12_months")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2025, 1, 1, tzinfo=UTC), customer=customer, subtotal="400"))
    apply_event(session, shop.id, paid(2, datetime(2026, 3, 1, tzinfo=UTC), customer=customer, subtotal="200"))
    # Lifetime spend is 600, but only 200 falls in the last 365 days.
    assert _tier_name(session, customer) == "Bronze"


def test_rolling_12_months_review_keeps_the_tier_365_days_then_demotes(session):
    shop = make_shop(session, tier_period="rolling_12_months")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2025, 3, 1, 12, tzinfo=UTC), customer=customer, subtotal="600"))
    assert _tier_name(session, customer) == "Silver"
    assert review_tiers(session, shop.id, datetime(2026, 2, 28, 12, tzinfo=UTC)) == 0
    assert _tier_name(session, customer) == "Silver"
    assert review_tiers(session, shop.id, datetime(2026, 3, 2, 12, tzinfo=UTC)) == 1
    assert _tier_name(session, customer) == "Bronze"


def test_calendar_year_keeps_last_years_tier_through_this_year(session):
    shop = make_shop(session, tier_period="calendar_year")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2025, 6, 1, tzinfo=UTC), customer=customer, subtotal="600"))
    assert _tier_name(session, customer) == "Silver"
    review_tiers(session, shop.id, datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert _tier_name(session, customer) == "Silver"
    review_tiers(session, shop.id, datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert _tier_name(session, customer) == "Silver"
    review_tiers(session, shop.id, datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert _tier_name(session, customer) == "Bronze"


def test_calendar_year_is_decided_by_the_best_single_year_not_two_years_added(session):
    shop = make_shop(session, tier_period="calendar_year")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2025, 11, 1, tzinfo=UTC), customer=customer, subtotal="300"))
    apply_event(session, shop.id, paid(2, datetime(2026, 2, 1, tzinfo=UTC), customer=customer, subtotal="300"))
    assert _tier_name(session, customer) == "Bronze"
    apply_event(session, shop.id, paid(3, datetime(2026, 2, 2, tzinfo=UTC), customer=customer, subtotal="200"))
    assert _tier_name(session, customer) == "Silver"  # 500 within 2026


def test_calendar_year_starts_at_new_year_in_the_shops_timezone(session):
    order_at = datetime(2025, 12, 31, 12, 0, tzinfo=UTC)  # 2026-01-01 01:00 in Auckland
    review_at = datetime(2027, 1, 10, tzinfo=UTC)          # counts 2026 and 2027 only
    auckland = make_shop(session, tier_period="calendar_year", timezone="Pacific/Auckland")
    utc = make_shop(session, tier_period="calendar_year")
    in_auckland = make_customer(session, auckland)
    in_utc = make_customer(session, utc)
    apply_event(session, auckland.id, paid(1, order_at, customer=in_auckland, subtotal="600"))
    apply_event(session, utc.id, paid(1, order_at, customer=in_utc, subtotal="600"))
    review_tiers(session, auckland.id, review_at)
    review_tiers(session, utc.id, review_at)
    assert _tier_name(session, in_auckland) == "Silver"  # the order was made in 2026 there
    assert _tier_name(session, in_utc) == "Bronze"       # 2025 in UTC: no longer counted


def test_calendar_year_promotion_counts_the_order_in_the_shops_local_year(session):
    auckland = make_shop(session, tier_period="calendar_year", timezone="Pacific/Auckland")
    customer = make_customer(session, auckland)
    # 2024-12-31 11:30Z is 2025-01-01 00:30 in Auckland; 2026-12-31 10:30Z is still 2026 there.
    apply_event(session, auckland.id, paid(1, datetime(2024, 12, 31, 11, 30, tzinfo=UTC), customer=customer,
                                           subtotal="300"))
    apply_event(session, auckland.id, paid(2, datetime(2025, 6, 1, tzinfo=UTC), customer=customer, subtotal="250"))
    assert _tier_name(session, customer) == "Silver"  # 550 in Auckland's 2025
    review_tiers(session, auckland.id, datetime(2026, 12, 31, 10, 30, tzinfo=UTC))
    assert _tier_name(session, customer) == "Silver"
    review_tiers(session, auckland.id, datetime(2026, 12, 31, 11, 30, tzinfo=UTC))  # 2027 in Auckland
    assert _tier_name(session, customer) == "Bronze"


def test_a_late_delivered_order_promotes_on_everything_recorded_in_its_period(session):
    # Order B (10:05) reaches us first; order A (10:00) an hour later, by a retry or the
    # reconciliation, with its own time. A and B add up to Silver: the late event promotes at once,
    # for rolling and calendar-year periods alike, not at the next review.
    a_at, b_at = datetime(2026, 3, 10, 10, 0, tzinfo=UTC), datetime(2026, 3, 10, 10, 5, tzinfo=UTC)
    for basis in ("spend", "points"):
        for period in ("rolling_12_months", "calendar_year"):
            shop = make_shop(session, tier_basis=basis, tier_period=period)
            customer = make_customer(session, shop)
            apply_event(session, shop.id, paid("B", b_at, customer=customer, subtotal="300"))
            assert _tier_name(session, customer) == "Bronze"
            outcome = apply_event(session, shop.id, paid("A", a_at, customer=customer, subtotal="300"))
            assert _tier_name(session, customer) == "Silver", (basis, period)
            assert len(_tier_notices(outcome)) == 1


def test_a_promotion_committed_while_tiers_are_reviewed_is_not_overwritten(app, session, now, monkeypatch):
    """An order lifts a customer to Gold while the review runs (after it read the values): the
    review must not then write the lower tier it computed from the older values."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session as PlainSession

    from app.extensions import db
    from app.loyalty import tiers

    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="600"))
    apply_event(session, shop.id, refunded(1, "r1", "500"))  # spend 100: the review would demote to Bronze
    assert _tier_name(session, customer) == "Silver"
    session.commit()
    shop_id, customer_id, info = shop.id, customer.id, customer
    engine = create_engine(db.engine.url)
    original = tiers.qualifying_values
    orders = [paid(2, now + timedelta(days=30), customer=info, subtotal="1500")]

    def values_then_a_big_order_elsewhere(*args, **kwargs):
        values = original(*args, **kwargs)
        while orders:  # once, after the first read (the review then locks the customer)
            with PlainSession(engine) as other:
                apply_event(other, shop_id, orders.pop())
                other.commit()
        return values

    monkeypatch.setattr(tiers, "qualifying_values", values_then_a_big_order_elsewhere)
    tiers.review_tiers(session, shop_id, now + timedelta(days=30))
    session.commit()
    engine.dispose()
    session.expire_all()
    assert _tier_name(session, session.get(type(customer), customer_id)) == "Gold"


def test_period_points_tiers_drop_an_order_refunded_after_its_points_expired(session):
    # Rolling 12 months on points: 600 points lift the customer to Silver; the expiry takes them;
    # the full refund afterwards moves no points (the expiry covered it) yet takes the order's
    # 600 back out of what qualifies, as a refund before the expiry would have.
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    shop = make_shop(session, tier_basis="points", tier_period="rolling_12_months", expiry_months=6)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, t0, customer=customer, subtotal="600"))
    assert _tier_name(session, customer) == "Silver"
    expire_inactive_points(session, shop.id, t0 + timedelta(days=200))
    apply_event(session, shop.id, refunded(1, "r1", "600", t0 + timedelta(days=201)))
    _reload(session, customer)
    assert (customer.points_balance, customer.points_earned_lifetime) == (0, 0)
    assert review_tiers(session, shop.id, t0 + timedelta(days=202)) == 1
    assert _tier_name(session, customer) == "Bronze"


def test_period_points_tiers_take_a_refund_from_the_period_its_order_earned_in(session):
    # Calendar year on points: 1500 points earned in December 2025 (Gold, kept through 2026), that
    # order refunded in January 2026, then 600 points earned in 2026. The refund takes the 1500 out
    # of 2025, where they were earned, not out of 2026's 600: Silver at the 2027 review, as spend
    # (which counts a refund against its order's paid date) would say.
    shop = make_shop(session, tier_basis="points", tier_period="calendar_year")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2025, 12, 10, tzinfo=UTC), customer=customer, subtotal="1500"))
    assert _tier_name(session, customer) == "Gold"
    apply_event(session, shop.id, refunded(1, "r1", "1500", at=datetime(2026, 1, 20, tzinfo=UTC)))
    apply_event(session, shop.id, paid(2, datetime(2026, 3, 1, tzinfo=UTC), customer=customer, subtotal="400"))
    _reload(session, customer)
    assert customer.points_earned_lifetime == 600  # 400 at Gold's 1.5
    review_tiers(session, shop.id, datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert _tier_name(session, customer) == "Silver"


def test_rolling_points_tiers_ignore_the_refund_of_an_order_earned_before_the_window(session):
    shop = make_shop(session, tier_basis="points", tier_period="rolling_12_months")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2025, 1, 10, tzinfo=UTC), customer=customer, subtotal="1500"))
    apply_event(session, shop.id, paid(2, datetime(2026, 2, 1, tzinfo=UTC), customer=customer, subtotal="400"))
    apply_event(session, shop.id, refunded(1, "r1", "1500", at=datetime(2026, 2, 10, tzinfo=UTC)))
    # The last 365 days hold order 2's 600 points; order 1 and its refund belong to 2025.
    review_tiers(session, shop.id, datetime(2026, 3, 1, tzinfo=UTC))
    assert _tier_name(session, customer) == "Silver"


def test_points_tiers_drop_a_refunded_order_whose_points_a_clamped_balance_could_not_repay(session, now):
    # With negative_balance = clamp, a full refund after the points were spent takes what the
    # balance holds and records the rest as uncollected. The order still earned nothing net: its
    # 600 points leave what qualifies (lifetime and per period alike), as they would with "allow".
    from app.loyalty.redemptions import redeem_reward
    from tests.factories import make_reward

    for period in ("lifetime", "rolling_12_months"):
        shop = make_shop(session, tier_basis="points", tier_period=period, negative_balance="clamp")
        customer = make_customer(session, shop)
        apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="600"))
        assert _tier_name(session, customer) == "Silver"
        reward = make_reward(session, shop, points_cost=500)
        redeem_reward(session, shop.id, customer.id, reward.id, "spend", now + timedelta(hours=1))
        apply_event(session, shop.id, refunded(1, "r1", "600", at=now + timedelta(days=1)))
        _reload(session, customer)
        assert (customer.points_balance, customer.points_earned_lifetime) == (0, 0), period
        assert review_tiers(session, shop.id, now + timedelta(days=2)) == 1, period
        assert _tier_name(session, customer) == "Bronze", period


# --- points basis: every earning counts at once, not only orders ------------------------------

def test_tier_basis_points_promotes_at_once_on_a_custom_action(session, now):
    from app.loyalty.events import CustomActionCompleted
    shop = make_shop(session, tier_basis="points")
    set_rule(session, shop, "custom", action_key="review", points=500)
    customer = make_customer(session, shop)
    outcome = apply_event(session, shop.id, CustomActionCompleted(customer.platform_customer_id, "review", "r-1", now))
    assert _tier_name(session, customer) == "Silver"
    assert [n.template for n in _tier_notices(outcome)] == ["tier_reached"]


def test_tier_basis_points_promotes_at_once_on_birthday_points(session, now):
    from app.loyalty.actions import award_birthdays
    shop = make_shop(session, tier_basis="points")
    set_rule(session, shop, "birthday", points=600)
    customer = make_customer(session, shop, birthday=now.date().replace(year=1990))
    award_birthdays(session, shop.id, now.date(), now)
    assert _tier_name(session, customer) == "Silver"


def test_tier_basis_points_promotes_the_advocate_at_once_on_the_referral_reward(session, now):
    from app.loyalty.events import CustomerInfo
    shop = make_shop(session, tier_basis="points")  # referral_advocate 500 points
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("f1", email="friend@example.com"),
                                       subtotal="40", referral_code=advocate.referral_code))
    _reload(session, advocate)
    assert advocate.points_earned_lifetime == 500
    assert _tier_name(session, advocate) == "Silver"


def test_tier_basis_points_promotes_a_friend_at_once_on_the_welcome_points(session, now):
    from app.loyalty.events import CustomerInfo
    shop = make_shop(session, tier_basis="points")
    set_rule(session, shop, "referral_friend", points=500)
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=CustomerInfo("f1", email="friend@example.com"),
                                       subtotal="40", referral_code=advocate.referral_code))
    friend = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="f1").one()
    assert _tier_name(session, friend) == "Silver"


def test_tier_basis_points_promotes_at_once_on_signup_points_for_a_known_shopper(session, now):
    from app.loyalty.events import CustomerInfo, CustomerUpserted
    shop = make_shop(session, tier_basis="points")
    set_rule(session, shop, "signup", points=500)
    customer = make_customer(session, shop)  # already known (e.g. from an order) when the account is made
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo(customer.platform_customer_id, email=customer.email),
                                                   now, account_created=True))
    assert _tier_name(session, customer) == "Silver"


def test_period_points_tiers_take_a_referral_reward_back_from_the_period_it_was_earned_in(session):
    # Calendar year on points: the advocate's 500-point referral reward is earned in December 2025
    # (Silver); the friend's order is refunded in full in January 2026, taking the reward back. That
    # reversal belongs to 2025, where the reward was earned, as an order's refund does: the 1500
    # points the advocate earns in 2026 reach Gold at once, not 1000 after last year's reward.
    from app.loyalty.events import CustomerInfo
    shop = make_shop(session, tier_basis="points", tier_period="calendar_year")  # referral_advocate 500
    advocate = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, datetime(2025, 12, 10, tzinfo=UTC), subtotal="40",
                                       customer=CustomerInfo("f1", email="friend@example.com"),
                                       referral_code=advocate.referral_code))
    assert _tier_name(session, advocate) == "Silver"
    apply_event(session, shop.id, refunded(1, "r1", "40", at=datetime(2026, 1, 20, tzinfo=UTC)))
    _reload(session, advocate)
    assert advocate.points_earned_lifetime == 0  # the reward was taken back
    apply_event(session, shop.id, paid(2, datetime(2026, 3, 1, tzinfo=UTC), customer=advocate, subtotal="1200"))
    _reload(session, advocate)
    assert advocate.points_earned_lifetime == 1500  # 1200 at Silver's 1.25
    assert _tier_name(session, advocate) == "Gold"
