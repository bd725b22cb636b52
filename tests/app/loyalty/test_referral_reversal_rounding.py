"""The advocate's reward is taken back only for a first order refunded in full (README,
Referrals: "a partial refund keeps it"), not for one whose points reversal merely rounded up."""
from __future__ import annotations

from datetime import timedelta

from app.loyalty.apply import apply_event
from app.models import Order
from tests.app.loyalty.test_referral_reversals import ADVOCATE_POINTS, _refer_and_buy, _referral
from tests.factories import checked_balance, make_customer, make_shop, refunded


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
