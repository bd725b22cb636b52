"""A referral whose qualifying order is later fully refunded or cancelled takes the advocate's
reward back (once, as the shop's negative-balance setting allows), becomes `reversed`, and still
fills the advocate's weekly cap; a partial refund, or the order coming back, changes nothing."""
from __future__ import annotations

from datetime import timedelta

from app.loyalty import referrals
from app.loyalty.adjustments import adjust_points
from app.loyalty.apply import apply_event
from app.loyalty.events import CustomerInfo, CustomerUpserted, OrderRestored
from app.loyalty.expiry import expire_inactive_points
from app.loyalty.ladder import ladder_stage
from app.loyalty.program import program_settings
from app.models import Customer, LedgerEntry, Order, Referral
from tests.factories import cancelled, checked_balance, make_customer, make_shop, paid, refunded, snapshot
from tests.sql_log import statements_sent

ADVOCATE_POINTS = 500  # the default program's referral_advocate rule


def _arrive(session, shop, code: str, at, platform_customer_id: str) -> Customer:
    apply_event(session, shop.id, CustomerUpserted(CustomerInfo(platform_customer_id, email=f"{platform_customer_id}@example.com"),
                                                   at, account_created=True, referral_code=code))
    return session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id=platform_customer_id).one()


def _referral(session, shop, friend) -> Referral:
    session.flush()
    return session.query(Referral).filter_by(shop_id=shop.id, friend_id=friend.id).populate_existing().one()


def _advocate_entries(session, shop, advocate) -> list[tuple[str, str, int, int, int]]:
    session.flush()
    rows = (session.query(LedgerEntry).filter_by(shop_id=shop.id, customer_id=advocate.id, source="referral_advocate")
            .order_by(LedgerEntry.id).all())
    return [(r.kind, r.idempotency_key, r.points, r.uncollected, r.expiry_cover) for r in rows]


def _refer_and_buy(session, shop, advocate, n, at, subtotal="40") -> Customer:
    friend = _arrive(session, shop, advocate.referral_code, at, f"friend{n}")
    apply_event(session, shop.id, paid(f"o{n}", at, customer=friend, subtotal=subtotal))
    assert _referral(session, shop, friend).status == "completed"
    return friend


def _reversed_reward(referral_id: int, points: int, uncollected: int = 0, cover: int = 0) -> list:
    return [("earn", f"referral:{referral_id}:advocate", ADVOCATE_POINTS, 0, 0),
            ("reverse", f"referral:{referral_id}:advocate:reverse", points, uncollected, cover)]


def _statements(session):
    return statements_sent(session.get_bind())


def test_a_full_refund_after_the_grant_takes_the_advocates_reward_back(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop, orders_count=2)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    assert checked_balance(session, shop, advocate) == ADVOCATE_POINTS
    assert ladder_stage(advocate.orders_count, advocate.referrals_completed) == "ambassador"
    apply_event(session, shop.id, refunded("o1", "r1", "40", at=now + timedelta(days=3)))
    referral = _referral(session, shop, friend)
    assert referral.status == "reversed"
    assert _advocate_entries(session, shop, advocate) == _reversed_reward(referral.id, -ADVOCATE_POINTS)
    assert checked_balance(session, shop, advocate) == 0
    assert advocate.referrals_completed == 0
    assert advocate.points_earned_lifetime == 0
    # The ladder counts successful referrals: the advocate is no ambassador any more.
    assert ladder_stage(advocate.orders_count, advocate.referrals_completed) == "returning"
    checked_balance(session, shop, friend)


def test_a_cancellation_after_the_grant_takes_the_advocates_reward_back(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    apply_event(session, shop.id, cancelled("o1", at=now + timedelta(days=3)))
    referral = _referral(session, shop, friend)
    assert referral.status == "reversed"
    assert _advocate_entries(session, shop, advocate) == _reversed_reward(referral.id, -ADVOCATE_POINTS)
    assert checked_balance(session, shop, advocate) == 0
    assert advocate.referrals_completed == 0


def test_refunds_adding_up_to_the_whole_order_take_the_reward_back_at_the_last_one(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    apply_event(session, shop.id, refunded("o1", "r1", "15", at=now + timedelta(days=1)))
    assert _referral(session, shop, friend).status == "completed"
    apply_event(session, shop.id, refunded("o1", "r2", "25", at=now + timedelta(days=2)))
    assert _referral(session, shop, friend).status == "reversed"
    assert checked_balance(session, shop, advocate) == 0


def test_a_partial_refund_keeps_the_advocates_reward(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    apply_event(session, shop.id, refunded("o1", "r1", "39", at=now + timedelta(days=3)))
    referral = _referral(session, shop, friend)
    assert referral.status == "completed"
    assert _advocate_entries(session, shop, advocate) == [("earn", f"referral:{referral.id}:advocate",
                                                           ADVOCATE_POINTS, 0, 0)]
    assert checked_balance(session, shop, advocate) == ADVOCATE_POINTS
    assert advocate.referrals_completed == 1


def test_the_same_take_back_applied_twice_reverses_once(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    refund = refunded("o1", "r1", "40", at=now + timedelta(days=3))
    apply_event(session, shop.id, refund)
    apply_event(session, shop.id, refund)
    # Later events about the same order, taken back already: a cancellation, its replay, an over-refund.
    apply_event(session, shop.id, cancelled("o1", at=now + timedelta(days=4)))
    apply_event(session, shop.id, cancelled("o1", at=now + timedelta(days=4)))
    apply_event(session, shop.id, refunded("o1", "r2", "5", at=now + timedelta(days=5)))
    # And the function itself, called again on the taken-back order.
    order = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="o1").one()
    referrals.take_back_for_order(session, shop, program_settings(shop), friend, order, now + timedelta(days=6))
    referral = _referral(session, shop, friend)
    assert _advocate_entries(session, shop, advocate) == _reversed_reward(referral.id, -ADVOCATE_POINTS)
    assert checked_balance(session, shop, advocate) == 0
    assert advocate.referrals_completed == 0


def test_a_clamped_shop_takes_back_what_the_balance_holds_and_records_the_rest_uncollected(session, now):
    shop = make_shop(session, negative_balance="clamp")
    advocate = make_customer(session, shop)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    adjust_points(session, shop.id, advocate.id, -300, reason="spent in store", actor="staff:test",
                  now=now + timedelta(days=1))
    apply_event(session, shop.id, refunded("o1", "r1", "40", at=now + timedelta(days=3)))
    referral = _referral(session, shop, friend)
    assert referral.status == "reversed"
    assert _advocate_entries(session, shop, advocate) == _reversed_reward(referral.id, -200, uncollected=300)
    assert checked_balance(session, shop, advocate) == 0
    assert advocate.points_earned_lifetime == 0  # the reward is gone from the lifetime, collected or not


def test_a_shop_allowing_debt_takes_the_whole_reward_back_below_zero(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    _refer_and_buy(session, shop, advocate, 1, now)
    adjust_points(session, shop.id, advocate.id, -300, reason="spent in store", actor="staff:test",
                  now=now + timedelta(days=1))
    apply_event(session, shop.id, cancelled("o1", at=now + timedelta(days=3)))
    assert checked_balance(session, shop, advocate) == -300


def test_a_reward_an_expiry_already_took_is_not_taken_again(session, now):
    shop = make_shop(session, expiry_months=6)
    advocate = make_customer(session, shop)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    assert expire_inactive_points(session, shop.id, now + timedelta(days=200)).status == "applied"
    assert checked_balance(session, shop, advocate) == 0
    adjust_points(session, shop.id, advocate.id, 100, reason="goodwill", actor="staff:test",
                  now=now + timedelta(days=201))
    apply_event(session, shop.id, refunded("o1", "r1", "40", at=now + timedelta(days=202)))
    referral = _referral(session, shop, friend)
    assert _advocate_entries(session, shop, advocate) == _reversed_reward(referral.id, 0, cover=ADVOCATE_POINTS)
    assert checked_balance(session, shop, advocate) == 100  # the goodwill points are not the reward's


def test_a_reversed_referral_still_counts_toward_the_weekly_cap(session, now):
    shop = make_shop(session, referral_weekly_cap=1)
    advocate = make_customer(session, shop)
    _refer_and_buy(session, shop, advocate, 1, now)
    apply_event(session, shop.id, refunded("o1", "r1", "40", at=now + timedelta(hours=1)))
    # A refund-and-reorder loop through another friend does not free the week's slot.
    second = _arrive(session, shop, advocate.referral_code, now + timedelta(hours=2), "friend2")
    apply_event(session, shop.id, paid("o2", now + timedelta(hours=2), customer=second, subtotal="40"))
    referral = _referral(session, shop, second)
    assert (referral.status, referral.rejection_reason) == ("rejected", "weekly_cap")
    assert checked_balance(session, shop, advocate) == 0
    # Seven days after the reversed one, the slot is free again.
    _refer_and_buy(session, shop, advocate, 3, now + timedelta(days=7, minutes=1))
    assert checked_balance(session, shop, advocate) == ADVOCATE_POINTS


def test_a_restored_order_does_not_reward_the_advocate_again(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    apply_event(session, shop.id, cancelled("o1", at=now + timedelta(days=1)))
    at = now + timedelta(days=2)
    apply_event(session, shop.id, OrderRestored("o1", at, snapshot("o1", customer=friend, subtotal="40", updated_at=at)))
    apply_event(session, shop.id, paid("o9", now + timedelta(days=3), customer=friend, subtotal="40"))
    assert _referral(session, shop, friend).status == "reversed"
    assert checked_balance(session, shop, advocate) == 0
    assert advocate.referrals_completed == 0
    assert checked_balance(session, shop, friend) > 0  # the friend's restored order earns again


def test_a_first_order_refunded_in_full_before_it_was_recorded_never_pays_the_advocate(session, now):
    shop = make_shop(session)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, now, "friend1")
    apply_event(session, shop.id, refunded("o1", "r1", "40", at=now))  # parked: the order is not here yet
    apply_event(session, shop.id, paid("o1", now + timedelta(minutes=1), customer=friend, subtotal="40"))
    assert _referral(session, shop, friend).status == "pending"
    assert _advocate_entries(session, shop, advocate) == []
    assert checked_balance(session, shop, advocate) == 0


def test_take_back_sends_no_statement_unless_a_referred_friends_order_is_fully_taken_back(session, now):
    shop = make_shop(session)
    settings = program_settings(shop)
    advocate = make_customer(session, shop)
    friend = _refer_and_buy(session, shop, advocate, 1, now)
    shopper = make_customer(session, shop)
    apply_event(session, shop.id, paid("o2", now, customer=shopper, subtotal="40"))
    apply_event(session, shop.id, refunded("o2", "r2", "40", at=now + timedelta(days=1)))
    apply_event(session, shop.id, refunded("o1", "r1", "10", at=now + timedelta(days=1)))
    session.flush()
    unreferred = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="o2").one()
    partly_refunded = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="o1").one()
    assert unreferred.points_reversed == unreferred.points_earned > 0
    with _statements(session) as sent:
        referrals.take_back_for_order(session, shop, settings, shopper, unreferred, now)
        referrals.take_back_for_order(session, shop, settings, friend, partly_refunded, now)
    assert sent == []
    assert _referral(session, shop, friend).status == "completed"
