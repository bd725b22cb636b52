"""The tier review catches up a missed period start: judged as of that boundary, once, never
before a boundary has passed, and never for a boundary before the shop's tier period or its
first tiers existed."""
from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

from app.extensions import db
from app.loyalty.apply import apply_event
from app.loyalty.catalog import save_item
from app.loyalty.settings_admin import update_settings
from app.loyalty.tier_review import period_start, review_due_tiers
from app.models import Customer, Tier
from jobs import maintenance
from tests.db_locks import wait_for_a_lock_wait
from tests.factories import cancelled, make_customer, make_shop, paid


def _tier_name(session, customer) -> str | None:
    session.flush()
    session.refresh(customer)
    return session.get(Tier, customer.tier_id).name if customer.tier_id else None


def _at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _silver_then_cancelled(session, shop, order_id, at) -> Customer:
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(order_id, at, customer=customer, subtotal="600"))
    apply_event(session, shop.id, cancelled(order_id, at))
    assert _tier_name(session, customer) == "Silver"  # demotion waits for the review
    return customer


def test_period_start_is_the_shops_local_first_of_the_month_or_year():
    now = _at(2026, 3, 31, 11, 30)  # 00:30 on 1 April in Auckland
    assert period_start("rolling_12_months", now, "Pacific/Auckland") == _at(2026, 3, 31, 11)
    assert period_start("lifetime", now, "UTC") == _at(2026, 3, 1)
    assert period_start("rolling_12_months", now, "UTC", back=1) == _at(2026, 2, 1)
    assert period_start("calendar_year", now, "UTC") == _at(2026, 1, 1)
    assert period_start("calendar_year", now, "UTC", back=1) == _at(2025, 1, 1)


def test_a_missed_review_is_caught_up_later_as_of_its_boundary_not_today(session):
    shop = make_shop(session, tier_period="rolling_12_months")
    aging = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, _at(2025, 4, 2), customer=aging, subtotal="600"))
    falling = _silver_then_cancelled(session, shop, 2, _at(2026, 2, 10))
    assert review_due_tiers(session, shop.id, _at(2026, 3, 20)) == "not-due"  # first run: the record starts
    # Nothing ran on 1 April. On the 5th: as of 1 April, the order of 2 April 2025 is still
    # within 365 days (it is not as of today), the cancelled one counts nothing.
    assert review_due_tiers(session, shop.id, _at(2026, 4, 5, 12)) == "reviewed:1"
    assert (_tier_name(session, aging), _tier_name(session, falling)) == ("Silver", "Bronze")
    assert falling.tier_achieved_at == _at(2026, 4, 1)
    # Done once: later runs in the period change nothing.
    assert review_due_tiers(session, shop.id, _at(2026, 4, 20)) == "not-due"


def test_a_missed_new_year_review_is_caught_up_for_calendar_year_tiers(session):
    shop = make_shop(session, tier_period="calendar_year")
    falling = _silver_then_cancelled(session, shop, 1, _at(2026, 6, 1))
    keeping = make_customer(session, shop)
    apply_event(session, shop.id, paid(2, _at(2026, 7, 1), customer=keeping, subtotal="600"))
    assert review_due_tiers(session, shop.id, _at(2026, 12, 15)) == "not-due"
    assert review_due_tiers(session, shop.id, _at(2027, 1, 9)) == "reviewed:1"
    assert (_tier_name(session, falling), _tier_name(session, keeping)) == ("Bronze", "Silver")


def test_a_late_review_keeps_what_happened_after_the_boundary(session):
    """What the on-time review would have left: a promotion after the boundary stands (even if
    its order was then cancelled), and an order after it promotes from the reviewed tier."""
    shop = make_shop(session, tier_period="rolling_12_months")
    promoted_after = make_customer(session, shop)
    was_gold = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, _at(2026, 2, 10), customer=was_gold, subtotal="1600"))
    apply_event(session, shop.id, cancelled(1, _at(2026, 2, 11)))
    assert review_due_tiers(session, shop.id, _at(2026, 3, 20)) == "not-due"
    apply_event(session, shop.id, paid(2, _at(2026, 4, 3), customer=promoted_after, subtotal="600"))
    apply_event(session, shop.id, cancelled(2, _at(2026, 4, 4)))
    apply_event(session, shop.id, paid(3, _at(2026, 4, 3), customer=was_gold, subtotal="600"))  # Silver's worth
    assert _tier_name(session, was_gold) == "Gold"
    assert review_due_tiers(session, shop.id, _at(2026, 4, 5)) == "reviewed:1"
    assert (_tier_name(session, promoted_after), _tier_name(session, was_gold)) == ("Silver", "Silver")


def test_switching_tier_period_owes_no_review_for_boundaries_before_the_switch(session):
    shop = make_shop(session, tier_period="calendar_year")
    assert review_due_tiers(session, shop.id, _at(2026, 1, 1, 12)) == "reviewed:0"
    customer = _silver_then_cancelled(session, shop, 1, _at(2026, 2, 10))
    update_settings(session, shop.id, {"tier_period": "rolling_12_months"}, actor="staff:a",
                    now=_at(2026, 3, 15))
    # 1 March passed before the switch: not a rolling period this shop ever had.
    assert review_due_tiers(session, shop.id, _at(2026, 3, 20)) == "not-due"
    assert _tier_name(session, customer) == "Silver"
    assert review_due_tiers(session, shop.id, _at(2026, 4, 2)) == "reviewed:1"
    assert _tier_name(session, customer) == "Bronze"


def test_first_tiers_owe_no_review_for_boundaries_before_they_existed(session):
    shop = make_shop(session, default_program=False, tier_period="rolling_12_months")
    assert review_due_tiers(session, shop.id, _at(2026, 3, 20)) == "not-due"
    for name, threshold in (("Bronze", "0"), ("Silver", "500")):
        save_item(session, shop.id, Tier, {"name": name, "threshold": Decimal(threshold), "multiplier": Decimal("1")}, actor="staff:a",
                  now=_at(2026, 4, 5))
    # An order paid before 1 April, delivered after the tiers were made, promotes as of its own time.
    customer = _silver_then_cancelled(session, shop, 1, _at(2026, 3, 30))
    assert review_due_tiers(session, shop.id, _at(2026, 4, 7)) == "not-due"
    assert _tier_name(session, customer) == "Silver"
    assert review_due_tiers(session, shop.id, _at(2026, 5, 1, 12)) == "reviewed:1"


def test_two_reviews_at_once_demote_once(app, session):
    shop = make_shop(session, tier_period="rolling_12_months")
    customer = _silver_then_cancelled(session, shop, 1, _at(2026, 2, 10))
    assert review_due_tiers(session, shop.id, _at(2026, 3, 20)) == "not-due"
    session.commit()
    assert review_due_tiers(session, shop.id, _at(2026, 4, 2)) == "reviewed:1"  # holds the record, uncommitted
    results = []

    def other_worker():
        with app.app_context():
            results.append(maintenance.review_tiers_if_period_ended(shop.id, now=_at(2026, 4, 2, 1).isoformat()))

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert wait_for_a_lock_wait() and thread.is_alive()  # waiting for this review's record
    session.commit()
    thread.join(10)
    assert results == ["not-due"]
    assert _tier_name(session, customer) == "Bronze"
    db.session.rollback()


def test_an_event_from_before_a_done_review_does_not_bring_back_a_period_the_review_ended(session):
    # Gold on 2025's spend, kept through 2026 (calendar year) or for 365 days (rolling), and
    # demoted by the review at the next boundary. An order from before that boundary delivered
    # after the review (a retry, the reconciliation) is judged as the review would have judged it
    # with the order in: 2025's spend no longer counts, so the 10 it adds promotes nobody.
    cases = (("calendar_year", _at(2025, 6, 1, 12), _at(2026, 12, 20), _at(2027, 1, 1, 0, 5),
              _at(2026, 12, 15, 12)),
             ("rolling_12_months", _at(2025, 3, 15, 12), _at(2026, 3, 20), _at(2026, 4, 1, 0, 5),
              _at(2026, 3, 10, 12)))
    for period, gold_at, first_run, review_at, late_order_at in cases:
        shop = make_shop(session, tier_period=period)
        customer = make_customer(session, shop)
        apply_event(session, shop.id, paid(1, gold_at, customer=customer, subtotal="1500"))
        assert _tier_name(session, customer) == "Gold"
        assert review_due_tiers(session, shop.id, first_run) == "not-due"  # the record starts
        assert review_due_tiers(session, shop.id, review_at) == "reviewed:1", period
        assert _tier_name(session, customer) == "Bronze", period
        apply_event(session, shop.id, paid(2, late_order_at, customer=customer, subtotal="10"))
        assert _tier_name(session, customer) == "Bronze", period
