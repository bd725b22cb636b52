"""The shopper read model: next tier and progress, points expiring soon, activity pages."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.loyalty import shopper
from app.loyalty.ledger import lock_customer, post_entry
from app.models import Reward, Tier
from tests.factories import make_customer, make_shop


def _tiers(session, shop):
    return list(session.scalars(select(Tier).where(Tier.shop_id == shop.id).order_by(Tier.threshold)))


def test_next_tier_measures_from_the_current_tiers_threshold(session):
    shop = make_shop(session)
    bronze, silver, gold = _tiers(session, shop)  # 0, 500, 1500
    up = shopper.next_tier([bronze, silver, gold], silver, Decimal("1000"))
    assert up.tier is gold and up.remaining == Decimal("500") and up.progress == 0.5
    none_yet = shopper.next_tier([bronze, silver, gold], None, Decimal("125"))
    assert none_yet.tier is silver and none_yet.remaining == Decimal("375") and none_yet.progress == 0.25
    assert shopper.next_tier([bronze, silver, gold], gold, Decimal("9999")) is None
    # Kept in Silver after a refund (demotion waits for the review): progress clamps at 0.
    kept = shopper.next_tier([bronze, silver, gold], silver, Decimal("100"))
    assert kept.tier is gold and kept.progress == 0.0 and kept.remaining == Decimal("1400")
    # Already past Gold's threshold but not promoted yet: nothing left, full bar.
    assert shopper.next_tier([bronze, silver, gold], silver, Decimal("2000")).progress == 1.0


def test_points_based_tiers_use_points_earned_over_the_period(session, now):
    shop = make_shop(session, tier_basis="points", tier_period="rolling_12_months")
    customer = make_customer(session, shop)
    locked = lock_customer(session, shop.id, customer.id)
    post_entry(session, locked, kind="earn", key="old", now=now - timedelta(days=400), points=900, source="order")
    post_entry(session, locked, kind="earn", key="recent", now=now - timedelta(days=10), points=200, source="order")
    found = shopper.summary(session, shop, locked, now)
    assert found.tier_basis == "points"
    assert found.next_tier.tier.name == "Silver" and found.next_tier.remaining == Decimal("300")


def test_expiring_soon_only_within_the_first_reminder_window(session, now):
    shop = make_shop(session, expiry_months=3)
    customer = make_customer(session, shop, points_balance=0)
    customer.points_balance = 250
    customer.last_activity_at = now - timedelta(days=80)  # 3 months later: 10 days from now
    soon = shopper.expiring_soon(shop, customer, now)
    assert soon.points == 250 and soon.expires_at - now == timedelta(days=10)
    customer.last_activity_at = now - timedelta(days=30)  # two months away
    assert shopper.expiring_soon(shop, customer, now) is None
    customer.points_balance = 0
    customer.last_activity_at = now - timedelta(days=80)
    assert shopper.expiring_soon(shop, customer, now) is None
    assert shopper.expiring_soon(make_shop(session), customer, now) is None  # no expiry configured


def test_activity_pages_are_keyset_newest_first_and_scoped_to_the_customer(session):
    shop = make_shop(session)
    kari, ola = make_customer(session, shop), make_customer(session, shop)
    for who in (kari, ola):
        locked = lock_customer(session, shop.id, who.id)
        for i in range(7):
            post_entry(session, locked, kind="earn", key=f"{who.id}:{i}", now=datetime.now(UTC), points=1, source="order")
    first = shopper.activity(session, shop.id, kari.id, limit=3)
    second = shopper.activity(session, shop.id, kari.id, before_id=first.next_cursor, limit=3)
    last = shopper.activity(session, shop.id, kari.id, before_id=second.next_cursor, limit=3)
    ids = [e.id for page in (first, second, last) for e in page.entries]
    assert len(ids) == 7 == len(set(ids)) and ids == sorted(ids, reverse=True)
    assert last.next_cursor is None and {e.customer_id for p in (first, second, last) for e in p.entries} == {kari.id}
    assert len(shopper.activity(session, shop.id, kari.id, limit=500).entries) == 7  # capped at 50, not an error


def test_rewards_are_active_ones_cheapest_first_and_unknown_customers_are_none(session):
    shop = make_shop(session)
    session.add(Reward(shop_id=shop.id, name="Hidden", kind="free_shipping", points_cost=1, active=False))
    session.flush()
    assert [r.points_cost for r in shopper.active_rewards(session, shop.id)] == [300, 500, 1000]
    assert shopper.find_customer(session, shop.id, "nobody") is None
    erased = make_customer(session, shop, redacted_at=datetime.now(UTC))
    assert shopper.find_customer(session, shop.id, erased.platform_customer_id) is None
