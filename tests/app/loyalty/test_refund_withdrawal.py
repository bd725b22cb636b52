"""A refund the store no longer lists (a WooCommerce merchant deleted it) is withdrawn: the points
it took back are given back, once, and a late delivery still listing it never counts it again.

Throughout: order 1 of 100 earns 100 points; refund r1 of 40 takes 40 back."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.loyalty.apply import apply_event
from app.loyalty.events import OrderEdited, OrderRefundsListed
from app.loyalty.expiry import expire_inactive_points
from app.loyalty.pending import release_pending_points
from app.loyalty.redemptions import redeem_reward
from app.models import LedgerEntry, Order, OrderRefund
from tests.app.loyalty.test_referral_reversals import ADVOCATE_POINTS, _arrive, _referral
from tests.factories import (
    cancelled, checked_balance, give_points, make_customer, make_reward, make_shop, paid, refunded, snapshot,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _order(session, shop, order_id="1") -> Order:
    session.flush()
    return session.query(Order).filter_by(shop_id=shop.id, platform_order_id=str(order_id)).populate_existing().one()


def _listed(order_id, *refund_ids, at=T0 + 3 * DAY, current=False) -> OrderRefundsListed:
    return OrderRefundsListed(str(order_id), tuple(refund_ids), at, current=current)


def _reversals(session, shop, customer) -> list[tuple[int, int, int, int]]:
    rows = (session.query(LedgerEntry).filter_by(shop_id=shop.id, customer_id=customer.id, kind="reverse")
            .order_by(LedgerEntry.id).all())
    return [(row.points, row.pending_delta, row.uncollected, row.expiry_cover) for row in rows]


def _bought_and_refunded(session, **settings):
    shop = make_shop(session, **settings)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, subtotal="100"))
    apply_event(session, shop.id, refunded(1, "r1", "40", T0 + DAY))
    return shop, customer


def test_a_refund_no_longer_listed_gives_its_points_back_once(session):
    shop, customer = _bought_and_refunded(session)
    assert checked_balance(session, shop, customer) == 60
    assert apply_event(session, shop.id, _listed(1)).status == "applied"
    assert checked_balance(session, shop, customer) == 100
    assert apply_event(session, shop.id, _listed(1)).status == "noop"  # the same state delivered again
    assert checked_balance(session, shop, customer) == 100
    order = _order(session, shop)
    assert (order.refunded_amount, order.points_reversed, order.refunds_withdrawn) == (Decimal("0"), 0, 1)
    assert _reversals(session, shop, customer) == [(-40, 0, 0, 0), (40, 0, 0, 0)]
    assert customer.total_spent == Decimal("100")
    assert customer.points_earned_lifetime == 100


def test_a_late_delivery_still_listing_the_withdrawn_refund_takes_nothing_again(session):
    shop, customer = _bought_and_refunded(session)
    apply_event(session, shop.id, _listed(1))
    assert apply_event(session, shop.id, refunded(1, "r1", "40", T0 + DAY)).status == "noop"
    assert apply_event(session, shop.id, _listed(1, "r1", at=T0 + DAY)).status == "noop"
    assert checked_balance(session, shop, customer) == 100


def test_a_list_from_before_the_refund_or_still_holding_it_withdraws_nothing(session):
    shop, customer = _bought_and_refunded(session)
    assert apply_event(session, shop.id, _listed(1, at=T0)).status == "noop"  # an older state, delivered late
    assert apply_event(session, shop.id, _listed(1, at=T0 + DAY)).status == "noop"  # the refund's own second
    assert apply_event(session, shop.id, _listed(1, "r1", "r2")).status == "noop"
    assert checked_balance(session, shop, customer) == 60


def test_the_store_read_now_withdraws_a_refund_recorded_at_the_same_modification_time(session):
    # Deleting a refund leaves the order's date_modified as it was: the reconciliation reads the
    # same time, without the refund.
    shop, customer = _bought_and_refunded(session)
    apply_event(session, shop.id, _listed(1, at=T0 + DAY, current=True))
    assert checked_balance(session, shop, customer) == 100


def test_only_the_refund_left_out_is_withdrawn(session):
    shop, customer = _bought_and_refunded(session)
    apply_event(session, shop.id, refunded(1, "r2", "20", T0 + 2 * DAY))
    assert checked_balance(session, shop, customer) == 40
    apply_event(session, shop.id, _listed(1, "r2"))
    assert checked_balance(session, shop, customer) == 80
    assert _order(session, shop).refunded_amount == Decimal("20")


def test_a_new_refund_after_a_withdrawal_takes_its_share_again(session):
    # The cumulative target comes back to 40, whose first key is used: the reversal after a
    # withdrawal has its own.
    shop, customer = _bought_and_refunded(session)
    apply_event(session, shop.id, _listed(1))
    apply_event(session, shop.id, refunded(1, "r2", "40", T0 + 4 * DAY))
    assert checked_balance(session, shop, customer) == 60
    apply_event(session, shop.id, _listed(1, "r2", at=T0 + 5 * DAY))
    assert checked_balance(session, shop, customer) == 60


def test_on_a_clamp_shop_the_uncollected_part_is_forgiven_before_points_come_back(session):
    shop = make_shop(session, negative_balance="clamp")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, subtotal="100"))
    reward = make_reward(session, shop, points_cost=70)
    redeem_reward(session, shop.id, customer.id, reward.id, "spend-70", T0)
    apply_event(session, shop.id, refunded(1, "r1", "40", T0 + DAY))
    assert _reversals(session, shop, customer) == [(-30, 0, 10, 0)]  # the balance held 30
    assert checked_balance(session, shop, customer) == 0
    apply_event(session, shop.id, _listed(1))
    assert _reversals(session, shop, customer)[-1] == (30, 0, -10, 0)
    assert checked_balance(session, shop, customer) == 30  # as if the refund never was
    assert customer.points_earned_lifetime == 100


def test_what_an_expiry_covered_stays_expired_and_returns_to_its_pool(session):
    shop = make_shop(session, expiry_months=6)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, subtotal="100"))
    assert expire_inactive_points(session, shop.id, T0 + 200 * DAY).status == "applied"
    apply_event(session, shop.id, refunded(1, "r1", "40", T0 + 201 * DAY))
    assert _reversals(session, shop, customer) == [(0, 0, 0, 40)]
    apply_event(session, shop.id, _listed(1, at=T0 + 202 * DAY))
    assert _reversals(session, shop, customer)[-1] == (0, 0, 0, -40)
    assert checked_balance(session, shop, customer) == 0
    # The pool is whole again: a later refund of the same points is still covered by it.
    apply_event(session, shop.id, refunded(1, "r2", "40", T0 + 203 * DAY))
    assert _reversals(session, shop, customer)[-1] == (0, 0, 0, 40)
    assert checked_balance(session, shop, customer) == 0


def test_a_pending_order_gets_its_pending_points_back_and_releases_them(session):
    shop, customer = _bought_and_refunded(session, pending_days=14)
    assert (checked_balance(session, shop, customer), customer.pending_points) == (0, 60)
    apply_event(session, shop.id, _listed(1))
    assert (checked_balance(session, shop, customer), customer.pending_points) == (0, 100)
    release_pending_points(session, shop.id, T0 + 30 * DAY)
    assert (checked_balance(session, shop, customer), customer.pending_points) == (100, 0)


def test_a_cancelled_order_gives_nothing_back(session):
    shop, customer = _bought_and_refunded(session)
    apply_event(session, shop.id, cancelled(1, T0 + 2 * DAY))
    apply_event(session, shop.id, _listed(1))
    assert checked_balance(session, shop, customer) == 0


def test_a_parked_refund_withdrawn_before_its_order_arrives_is_never_counted(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, refunded(1, "r1", "40", T0))
    apply_event(session, shop.id, _listed(1, at=T0 + DAY))
    assert session.query(OrderRefund).filter_by(shop_id=shop.id).one().withdrawn_at == T0 + DAY
    apply_event(session, shop.id, paid(1, T0 + 2 * DAY, customer=customer, subtotal="100"))
    assert _order(session, shop).refunded_amount == Decimal("0")
    assert checked_balance(session, shop, customer) == 100


def test_an_edit_growing_the_order_still_never_gives_back(session):
    # The target shrinks when an edit grows the order; only a withdrawal lowers what was taken.
    shop, customer = _bought_and_refunded(session)
    apply_event(session, shop.id, OrderEdited("1", "e1", T0 + 2 * DAY, snapshot(1, customer=customer, subtotal="200")))
    assert _order(session, shop).points_reversed == 40
    assert checked_balance(session, shop, customer) == 60 + 100


def test_a_refund_withdrawn_after_its_window_voided_the_order_releases_the_points_then(session):
    # Refunded in full inside the window, the order was voided at its release; the points the
    # withdrawal gives back reach the balance only now, so an expiry between the release and the
    # withdrawal never took them: a later full refund takes them all back, none counted as expired.
    shop = make_shop(session, pending_days=14, expiry_months=6)
    customer = make_customer(session, shop)
    give_points(session, customer, 50, T0)
    apply_event(session, shop.id, paid(1, T0, customer=customer, subtotal="100"))
    apply_event(session, shop.id, refunded(1, "r1", "100", T0 + DAY))
    release_pending_points(session, shop.id, T0 + 15 * DAY)
    assert _order(session, shop).points_status == "void"
    assert expire_inactive_points(session, shop.id, T0 + 200 * DAY).status == "applied"  # the 50 expire
    apply_event(session, shop.id, _listed(1, at=T0 + 201 * DAY))
    assert (checked_balance(session, shop, customer), customer.pending_points) == (100, 0)
    apply_event(session, shop.id, refunded(1, "r2", "100", T0 + 202 * DAY))
    assert _reversals(session, shop, customer)[-1] == (-100, 0, 0, 0)
    assert checked_balance(session, shop, customer) == 0
    assert _order(session, shop).points_status == "awarded"  # released by the withdrawal


def test_a_first_order_voided_in_its_window_and_then_standing_again_pays_the_advocate(session):
    shop = make_shop(session, pending_days=14)
    advocate = make_customer(session, shop)
    friend = _arrive(session, shop, advocate.referral_code, T0, "friend1")
    apply_event(session, shop.id, paid(1, T0, customer=friend, subtotal="100"))
    apply_event(session, shop.id, refunded(1, "r1", "100", T0 + DAY))
    release_pending_points(session, shop.id, T0 + 15 * DAY)
    assert _referral(session, shop, friend).status == "pending"  # a refunded first order pays nobody
    apply_event(session, shop.id, _listed(1, at=T0 + 16 * DAY))  # ... until its refund is withdrawn
    assert _referral(session, shop, friend).status == "completed"
    assert checked_balance(session, shop, advocate) == ADVOCATE_POINTS
    assert checked_balance(session, shop, friend) == 300 + 100  # welcome points and the order's
