"""A refund's share is of the part of the order that earns: gift cards bought and tips earn
nothing, so refunding them takes nothing back, and refunding what earned takes back all of it.

The example order throughout: a 100 shirt and a 50 gift card (total 150) earns 100 points.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from app.loyalty.adjustments import adjust_points
from app.loyalty.apply import apply_event
from app.loyalty.events import OrderFulfilled, OrderPaid
from app.loyalty.pending import release_pending_points
from app.models import LedgerEntry, Order, OrderRefund
from tests.factories import checked_balance, make_customer, make_shop, paid, refunded, set_rule, snapshot

GIFT_CARD = Decimal("50")


def _order(session, shop, order_id="1") -> Order:
    session.flush()
    return session.query(Order).filter_by(shop_id=shop.id, platform_order_id=str(order_id)).populate_existing().one()


def _reversals(session, shop) -> list[tuple[int, int, int]]:
    rows = session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="reverse").order_by(LedgerEntry.id).all()
    return [(row.points, row.pending_delta, row.uncollected) for row in rows]


@pytest.fixture
def bought(session):
    """A shop and its customer who bought the example order (the program's defaults)."""
    shop = make_shop(session)
    customer = make_customer(session, shop)
    _shirt_and_gift_card(session, shop, customer)
    return shop, customer


def _shirt_and_gift_card(session, shop, customer, at=None, **fields):
    apply_event(session, shop.id, paid(1, at, customer=customer, subtotal="150", gift_cards=GIFT_CARD, **fields))
    order = _order(session, shop)
    assert (order.points_earned, order.total, order.non_earning_amount) == (100, Decimal("150"), GIFT_CARD)
    return order


def test_refunding_the_shirt_takes_back_all_its_points(session, bought):
    shop, customer = bought
    apply_event(session, shop.id, refunded(1, "r1", "100"))
    assert _order(session, shop).points_reversed == 100  # not 100 x 100/150 = 67
    assert _reversals(session, shop) == [(-100, 0, 0)]
    assert checked_balance(session, shop, customer) == 0
    assert customer.total_spent == Decimal("50")  # the money still counts in full


def test_refunding_the_gift_card_takes_nothing_back(session, bought):
    shop, customer = bought
    assert apply_event(session, shop.id, refunded(1, "r1", "50", non_earning="50")).status == "applied"
    order = _order(session, shop)
    assert (order.refunded_amount, order.refunded_non_earning, order.points_reversed) == (GIFT_CARD, GIFT_CARD, 0)
    assert _reversals(session, shop) == []
    assert checked_balance(session, shop, customer) == 100
    assert customer.total_spent == Decimal("100")
    # The shirt refunded afterwards takes back everything.
    apply_event(session, shop.id, refunded(1, "r2", "100"))
    assert checked_balance(session, shop, customer) == 0


def test_the_whole_order_refunded_takes_back_everything(session, bought):
    shop, customer = bought
    apply_event(session, shop.id, refunded(1, "r1", "150", non_earning="50"))
    assert _order(session, shop).points_reversed == 100
    assert checked_balance(session, shop, customer) == 0


def test_a_whole_refund_without_line_detail_is_capped_at_everything(session):
    # WooCommerce refunds say only how much: the amount counts as earning, capped at 100 %.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    _shirt_and_gift_card(session, shop, customer)
    apply_event(session, shop.id, refunded(1, "r1", "150"))
    assert _order(session, shop).points_reversed == 100
    assert _reversals(session, shop) == [(-100, 0, 0)]
    assert checked_balance(session, shop, customer) == 0


def test_partial_refunds_add_up_to_exactly_everything(session, bought):
    shop, customer = bought
    balances = []
    for n, (amount, non_earning) in enumerate([("30", "0"), ("50", "50"), ("33.33", "0"), ("36.67", "0")]):
        apply_event(session, shop.id, refunded(1, f"r{n}", amount, non_earning=non_earning))
        balances.append(checked_balance(session, shop, customer))
    # Cumulative earning refunds 30, 30, 63.33, 100 of an earning 100.
    assert balances == [70, 70, 37, 0]
    assert [points for points, _, _ in _reversals(session, shop)] == [-30, -33, -37]
    assert _order(session, shop).points_reversed == 100


def test_a_tip_is_not_part_of_the_share(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100", total="110", tips=Decimal("10")))
    order = _order(session, shop)
    assert (order.points_earned, order.non_earning_amount) == (100, Decimal("10"))
    apply_event(session, shop.id, refunded(1, "r1", "50"))
    assert _order(session, shop).points_reversed == 50  # 100 x 50/100, not 50/110 (45)
    apply_event(session, shop.id, refunded(1, "r2", "10", non_earning="10"))  # the tip given back
    assert _order(session, shop).points_reversed == 50
    assert checked_balance(session, shop, customer) == 50


def test_the_non_earning_part_of_a_refund_is_at_most_the_refund(session, bought):
    shop, customer = bought
    apply_event(session, shop.id, refunded(1, "r1", "30", non_earning="80"))
    assert session.query(OrderRefund).filter_by(shop_id=shop.id).one().non_earning == Decimal("30")
    assert _order(session, shop).refunded_non_earning == Decimal("30")
    apply_event(session, shop.id, refunded(1, "r2", "100"))
    assert checked_balance(session, shop, customer) == 0


def test_a_gift_card_refund_before_its_order_is_parked_with_its_non_earning_part(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    assert apply_event(session, shop.id, refunded(1, "r1", "50", non_earning="50")).status == "parked"
    _shirt_and_gift_card(session, shop, customer)
    order = _order(session, shop)
    assert (order.refunded_amount, order.refunded_non_earning, order.points_reversed) == (GIFT_CARD, GIFT_CARD, 0)
    assert checked_balance(session, shop, customer) == 100


def test_refunds_during_the_pending_period_reduce_the_held_points(session, now):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    _shirt_and_gift_card(session, shop, customer, now)
    apply_event(session, shop.id, refunded(1, "r1", "50", at=now + timedelta(days=1), non_earning="50"))
    apply_event(session, shop.id, refunded(1, "r2", "40", at=now + timedelta(days=2)))
    assert _reversals(session, shop) == [(0, -40, 0)]
    checked_balance(session, shop, customer)
    assert (customer.points_balance, customer.pending_points) == (0, 60)
    release_pending_points(session, shop.id, now + timedelta(days=14))
    assert checked_balance(session, shop, customer) == 60
    assert customer.pending_points == 0


def test_a_shirt_refunded_within_the_pending_period_leaves_nothing_to_release(session, now):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    _shirt_and_gift_card(session, shop, customer, now)
    apply_event(session, shop.id, refunded(1, "r1", "100", at=now + timedelta(days=1)))
    release_pending_points(session, shop.id, now + timedelta(days=14))
    assert _order(session, shop).points_status == "void"  # fully refunded: nothing was granted
    assert checked_balance(session, shop, customer) == 0
    assert customer.pending_points == 0


def test_clamp_takes_what_the_balance_holds_of_the_shirts_points(session, now):
    shop = make_shop(session, negative_balance="clamp")
    customer = make_customer(session, shop)
    _shirt_and_gift_card(session, shop, customer, now)
    adjust_points(session, shop.id, customer.id, -60, reason="points used in store", actor="staff:test", now=now)
    apply_event(session, shop.id, refunded(1, "r1", "100"))  # 100 due, 40 there
    assert _reversals(session, shop) == [(-40, 0, 60)]
    assert _order(session, shop).points_reversed == 100
    assert checked_balance(session, shop, customer) == 0


def test_a_later_snapshot_of_a_granted_order_keeps_the_base_its_points_came_from(session, now):
    # The points came from the first snapshot; a later one (a re-delivery, the GraphQL
    # reconciliation, which does not know the gift card) changes neither them nor the base.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    _shirt_and_gift_card(session, shop, customer, now, updated_at=now)
    later = snapshot(1, customer=customer, subtotal="150", updated_at=now + timedelta(hours=1))
    apply_event(session, shop.id, OrderPaid(later, now + timedelta(hours=1)))
    apply_event(session, shop.id, OrderFulfilled(later, now + timedelta(hours=2)))
    order = _order(session, shop)
    assert (order.points_earned, order.non_earning_amount, order.total) == (100, GIFT_CARD, Decimal("150"))
    apply_event(session, shop.id, refunded(1, "r1", "100"))
    assert checked_balance(session, shop, customer) == 0


def test_before_the_grant_the_base_follows_the_snapshot_the_points_come_from(session, now):
    # Award on fulfilment: the paid snapshot did not know the gift card, the fulfilled one does;
    # points and base both come from the fulfilled one.
    shop = make_shop(session, award_on="fulfilled")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="150", updated_at=now))
    assert _order(session, shop).non_earning_amount == 0
    fulfilled = snapshot(1, customer=customer, subtotal="150", gift_cards=GIFT_CARD, updated_at=now + timedelta(days=1))
    apply_event(session, shop.id, OrderFulfilled(fulfilled, now + timedelta(days=1)))
    order = _order(session, shop)
    assert (order.points_earned, order.non_earning_amount) == (100, GIFT_CARD)
    apply_event(session, shop.id, refunded(1, "r1", "100"))
    assert checked_balance(session, shop, customer) == 0


def test_an_order_with_nothing_earning_shares_its_bonus_by_its_whole_total(session):
    # A gift card alone earns only an Nth-order bonus: with no earning part to share by, its
    # refunds share by the whole total, gift-card lines or not.
    shop = make_shop(session)
    set_rule(session, shop, "nth_order", every_n=2, points=100)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="10"))
    apply_event(session, shop.id, paid(2, customer=customer, subtotal="50", gift_cards=GIFT_CARD))
    assert _order(session, shop, 2).points_earned == 100
    apply_event(session, shop.id, refunded(2, "r1", "25", non_earning="25"))
    assert _order(session, shop, 2).points_reversed == 50
    apply_event(session, shop.id, refunded(2, "r2", "25", non_earning="25"))
    assert _order(session, shop, 2).points_reversed == 100
    assert checked_balance(session, shop, customer) == 10


def test_an_order_stored_before_the_non_earning_part_was_kept_refunds_as_before(session):
    # Rows from before migration 0017 have a non-earning part of 0: the share of the whole total,
    # even of a refund whose gift-card line is marked.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    order = _shirt_and_gift_card(session, shop, customer)
    order.non_earning_amount = Decimal("0")
    apply_event(session, shop.id, refunded(1, "r1", "100"))
    assert _order(session, shop).points_reversed == 67
    apply_event(session, shop.id, refunded(1, "r2", "30", non_earning="30"))
    assert _order(session, shop).points_reversed == 87  # 100 x 130/150
    assert checked_balance(session, shop, customer) == 13


def test_a_refund_is_non_earning_only_up_to_the_orders_non_earning_part(session):
    # What a refund marks beyond the order's own non-earning part earned when the points were
    # granted (an order the webhook never described, a row from before 0017): it takes its share.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100", total="110", tips=Decimal("10")))
    apply_event(session, shop.id, refunded(1, "r1", "60", non_earning="60"))  # 10 of it can be the tip
    assert _order(session, shop).points_reversed == 50
    assert checked_balance(session, shop, customer) == 50
