"""The tier review against orders committed while it runs: it locks the customers it would
change and judges them again from what is committed by then, so an order that keeps a customer
in their tier is never undone by a review computed before it."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

from app.extensions import db
from app.loyalty.apply import apply_event
from app.loyalty.tier_review import review_due_tiers
from app.models import Customer, Tier
from jobs import maintenance
from tests.db_locks import wait_for_a_lock_wait
from tests.factories import make_customer, make_shop, paid, refunded


def _at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _tier_name(session, customer_id: int) -> str | None:
    session.expire_all()
    customer = session.get(Customer, customer_id)
    return session.get(Tier, customer.tier_id).name if customer.tier_id else None


def _gold_worth_silver(session, shop, at: datetime) -> Customer:
    """Gold from an order of 1600, then 1000 of it refunded: the review would demote to Silver."""
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, at, customer=customer, subtotal="1600"))
    apply_event(session, shop.id, refunded(1, "r1", "1000", at))
    assert _tier_name(session, customer.id) == "Gold"
    return customer


def test_an_order_committed_while_the_review_runs_keeps_the_tier_it_holds(app, session):
    shop = make_shop(session)  # spend, lifetime: Bronze 0, Silver 500, Gold 1500
    customer = _gold_worth_silver(session, shop, _at(2026, 3, 2))
    session.commit()
    shop_id, customer_id = shop.id, customer.id
    # An order of 1000 brings them back to Gold's 1600: nothing to promote, the row stays locked
    # (lock_customer) until it commits.
    apply_event(session, shop_id, paid(2, _at(2026, 4, 1, 0, 5), customer=customer, subtotal="1000"))
    session.flush()
    results = []

    def review():
        with app.app_context():
            results.append(maintenance.review_tiers_if_period_ended(shop_id, now=_at(2026, 4, 1, 0, 10).isoformat()))

    thread = threading.Thread(target=review)
    thread.start()
    assert wait_for_a_lock_wait() and thread.is_alive()  # the review waits for the order's lock
    session.commit()
    thread.join(10)
    assert not thread.is_alive()
    assert results == ["reviewed:0"]
    assert _tier_name(session, customer_id) == "Gold"
    db.session.rollback()


def test_a_late_review_keeps_the_tier_an_order_paid_after_its_clock_qualifies_for(session):
    """The job's clock (late_at) is when it was due, not when it reads: an order paid after it
    (and committed before the review locked the customer) counts, as it would have promoted."""
    shop = make_shop(session, tier_period="rolling_12_months")
    customer = _gold_worth_silver(session, shop, _at(2025, 6, 2))
    assert review_due_tiers(session, shop.id, _at(2026, 3, 20)) == "not-due"  # the record starts
    apply_event(session, shop.id, paid(2, _at(2026, 4, 5, 0, 10), customer=customer, subtotal="1000"))
    assert _tier_name(session, customer.id) == "Gold"  # already Gold: nothing to promote
    assert review_due_tiers(session, shop.id, _at(2026, 4, 5)) == "reviewed:0"
    assert _tier_name(session, customer.id) == "Gold"


def test_the_review_judges_the_customers_it_changes_batch_by_batch(session, monkeypatch):
    from app.loyalty import tiers

    monkeypatch.setattr(tiers, "_REVIEW_BATCH", 2)
    shop = make_shop(session)
    falling = []
    for n in range(5):
        customer = make_customer(session, shop)
        apply_event(session, shop.id, paid(10 + n, _at(2026, 3, 2), customer=customer, subtotal="1600"))
        apply_event(session, shop.id, refunded(10 + n, f"r{n}", "1000", _at(2026, 3, 2)))
        falling.append(customer.id)
    keeping = make_customer(session, shop)
    apply_event(session, shop.id, paid(20, _at(2026, 3, 2), customer=keeping, subtotal="1600"))
    assert tiers.review_tiers(session, shop.id, _at(2026, 4, 1)) == 5
    assert [_tier_name(session, cid) for cid in falling] == ["Silver"] * 5
    assert _tier_name(session, keeping.id) == "Gold"
