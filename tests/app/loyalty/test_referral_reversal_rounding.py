"""The advocate's reward is taken back only for a first order refunded in full (README,
Referrals: "a partial refund keeps it"), not for one whose points reversal merely rounded up."""
from __future__ import annotations

from datetime import timedelta

from app.loyalty.apply import apply_event
from app.loyalty.pending import release_pending_points
from app.models import Order
from tests.app.loyalty.test_referral_reversals import ADVOCATE_POINTS, _arrive, _refer_and_buy, _referral
from tests.factories import checked_balance, make_customer, make_shop, paid, refunded


def test_a_partial_refund_whose_points_round_up_to_the_whole_order_keeps_the_advocates_reward(session, now):
    # $40 earns 40 points; $39.50 of it is refunded: 39.5 points, rounded half up to 40, so
    # points_reversed == points_earned and fully_taken_back() calls the order fully refunded,
    # though the friend kept (and paid for) 50 cents of it.
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    apply_event(session, shop.id, refunded("o1", "r1", "39.50", at=now + timedelta(days=3)))
    order = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="o1").populate_existing().one()
    assert order.refunded_amount < order.total  # a partial refund
    assert _referral(session, shop, friend).status == "completed"
    assert checked_balance(session, shop, advocate) == ADVOCATE_POINTS


def test_with_a_return_window_a_partial_refund_rounding_up_to_all_the_points_still_pays_the_advocate(session, now):
    # The same 39.50 of 40.00, refunded inside a 14-day window: the held 40 points all go back,
    # but the order stands (the friend paid 50 cents), so the release completes the referral as
    # the grant does without a window, instead of voiding the order as if refunded in full.
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "friend1")
    apply_event(session, shop.id, paid("o1", now, customer=friend, subtotal="40"))
    apply_event(session, shop.id, refunded("o1", "r1", "39.50", at=now + timedelta(days=3)))
    release_pending_points(session, shop.id, now + timedelta(days=14))
    order = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="o1").populate_existing().one()
    assert (order.points_status, order.points_earned, order.points_reversed) == ("awarded", 40, 40)
    assert _referral(session, shop, friend).status == "completed"
    assert checked_balance(session, shop, advocate) == ADVOCATE_POINTS
    assert checked_balance(session, shop, friend) == 300  # the welcome points only (sign-up 50 + friend 250)


def test_with_a_return_window_a_first_order_refunded_in_full_is_void_and_pays_nobody(session, now):
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "friend1")
    apply_event(session, shop.id, paid("o1", now, customer=friend, subtotal="40"))
    apply_event(session, shop.id, refunded("o1", "r1", "40", at=now + timedelta(days=3)))
    release_pending_points(session, shop.id, now + timedelta(days=14))
    order = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="o1").populate_existing().one()
    assert order.points_status == "void"
    assert _referral(session, shop, friend).status == "pending"
    assert checked_balance(session, shop, advocate) == 0
