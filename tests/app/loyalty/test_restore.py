"""A cancelled order restored (WooCommerce trash/untrash, or cancelled -> processing) earns
again under new ledger keys; stale restorations and stale cancellations change nothing."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.loyalty.adjustments import adjust_points
from app.loyalty.apply import apply_event
from app.loyalty.events import OrderCancelled, OrderRestored
from app.loyalty.pending import release_pending_points
from app.models import LedgerEntry, Order
from tests.factories import checked_balance, make_customer, make_shop, paid, refunded, set_rule, snapshot

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
T1, T2, T3 = T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=3)


def _order(session, shop, order_id="1") -> Order:
    session.flush()
    return session.query(Order).filter_by(shop_id=shop.id, platform_order_id=order_id).populate_existing().one()


def _keys(session, shop) -> list[tuple[str, int, int]]:
    rows = session.query(LedgerEntry).filter_by(shop_id=shop.id).order_by(LedgerEntry.id).all()
    return [(row.idempotency_key, row.points, row.pending_delta) for row in rows]


def _cancel(order_id, at, updated_at=None):
    return OrderCancelled(str(order_id), at, snapshot(order_id, updated_at=updated_at or at))


def _restore(order_id, at, customer=None, **fields):
    return OrderRestored(str(order_id), at, snapshot(order_id, customer=customer, updated_at=at, **fields))


def test_cancelled_then_restored_earns_again_under_new_keys(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    apply_event(session, shop.id, _cancel(1, T1))
    assert checked_balance(session, shop, customer) == 0
    outcome = apply_event(session, shop.id, _restore(1, T2, customer))
    assert outcome.status == "applied"
    assert checked_balance(session, shop, customer) == 100
    order = _order(session, shop)
    assert (order.status, order.cancelled_at, order.points_status, order.points_earned) == ("paid", None, "awarded", 100)
    oid = order.id
    assert _keys(session, shop) == [(f"order:{oid}:earn", 100, 0), (f"order:{oid}:reverse:100", -100, 0),
                                    (f"order:{oid}:r1:earn", 100, 0)]
    session.refresh(customer)
    assert customer.orders_count == 1 and customer.total_spent == Decimal("100")


def test_restoring_twice_or_replaying_grants_once(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    apply_event(session, shop.id, _cancel(1, T1))
    apply_event(session, shop.id, _restore(1, T2, customer))
    assert apply_event(session, shop.id, _restore(1, T2, customer)).status == "noop"
    assert apply_event(session, shop.id, paid(1, T2, customer=customer, updated_at=T2)).status == "applied"
    assert checked_balance(session, shop, customer) == 100


def test_a_second_cancellation_and_restoration_are_a_third_generation(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    apply_event(session, shop.id, _cancel(1, T1))
    apply_event(session, shop.id, _restore(1, T2, customer))
    apply_event(session, shop.id, _cancel(1, T3))
    assert checked_balance(session, shop, customer) == 0
    apply_event(session, shop.id, _restore(1, T3 + timedelta(hours=1), customer))
    assert checked_balance(session, shop, customer) == 100
    oid = _order(session, shop).id
    assert [key for key, *_ in _keys(session, shop)] == [
        f"order:{oid}:earn", f"order:{oid}:reverse:100", f"order:{oid}:r1:earn", f"order:{oid}:r1:reverse:100",
        f"order:{oid}:r2:earn"]


def test_a_restoration_older_than_the_cancellation_is_ignored(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    apply_event(session, shop.id, _cancel(1, T2))
    assert apply_event(session, shop.id, _restore(1, T1, customer)).status == "noop"
    assert _order(session, shop).status == "cancelled"
    assert checked_balance(session, shop, customer) == 0


def test_a_late_second_cancellation_still_beats_an_older_restoration(session):
    # Truth: cancelled T1, restored T2, cancelled T3. Arrival: T1, T3, T2.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    apply_event(session, shop.id, _cancel(1, T1))
    assert apply_event(session, shop.id, _cancel(1, T3)).status == "noop"
    assert apply_event(session, shop.id, _restore(1, T2, customer)).status == "noop"
    assert checked_balance(session, shop, customer) == 0


def test_a_cancellation_older_than_the_restoration_is_ignored(session):
    # Cancelled T1, restored T2; the T1 cancellation is delivered again (out of order).
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    apply_event(session, shop.id, _cancel(1, T1))
    apply_event(session, shop.id, _restore(1, T2, customer))
    assert apply_event(session, shop.id, _cancel(1, T1 + timedelta(minutes=1))).status == "noop"
    assert _order(session, shop).status == "paid"
    assert checked_balance(session, shop, customer) == 100


def test_a_bodyless_deletion_older_than_the_restoration_is_ignored_when_its_job_runs_again_late(session):
    # WooCommerce's order.deleted carries only the id: trashed T1 (no snapshot), restored T2;
    # the T1 deletion's job is retried after the restoration applied. The shopper keeps the points.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    apply_event(session, shop.id, OrderCancelled("1", T1))
    apply_event(session, shop.id, _restore(1, T2, customer))
    assert apply_event(session, shop.id, OrderCancelled("1", T1)).status == "noop"
    assert _order(session, shop).status == "paid"
    assert checked_balance(session, shop, customer) == 100


def test_restoring_an_order_that_is_not_cancelled_or_unknown_does_nothing(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    assert apply_event(session, shop.id, _restore(9, T1, customer)).status == "noop"
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    assert apply_event(session, shop.id, _restore(1, T1, customer)).status == "noop"
    assert checked_balance(session, shop, customer) == 100


def test_a_refund_before_the_cancellation_still_counts_after_restoring(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    apply_event(session, shop.id, refunded(1, "r1", "25", T0 + timedelta(minutes=5)))
    apply_event(session, shop.id, _cancel(1, T1))
    apply_event(session, shop.id, refunded(1, "r2", "25", T1 + timedelta(minutes=5)))  # while cancelled
    apply_event(session, shop.id, _restore(1, T2, customer))
    assert checked_balance(session, shop, customer) == 50  # 100 granted again, half of it refunded
    session.refresh(customer)
    assert customer.total_spent == Decimal("50") and customer.orders_count == 1


def test_an_order_cancelled_before_it_was_paid_earns_once_restored_and_paid(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, OrderCancelled("1", T1, snapshot(1, customer=customer, updated_at=T1)))
    assert apply_event(session, shop.id, _restore(1, T2, customer)).status == "applied"
    assert _order(session, shop).status == "open"
    apply_event(session, shop.id, paid(1, T2, customer=customer, updated_at=T2))
    assert checked_balance(session, shop, customer) == 100
    assert [key for key, *_ in _keys(session, shop)] == [f"order:{_order(session, shop).id}:earn"]


def test_a_restored_order_in_a_return_window_is_held_then_released_under_its_own_keys(session):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    apply_event(session, shop.id, _cancel(1, T1))
    apply_event(session, shop.id, _restore(1, T2, customer))
    session.refresh(customer)
    assert (customer.points_balance, customer.pending_points) == (0, 100)
    release_pending_points(session, shop.id, T2 + timedelta(days=15))
    assert checked_balance(session, shop, customer) == 100
    oid = _order(session, shop).id
    assert [key for key, *_ in _keys(session, shop)] == [
        f"order:{oid}:earn", f"order:{oid}:reverse:100", f"order:{oid}:r1:earn", f"order:{oid}:r1:release"]


def test_a_cancellation_delivered_after_the_newer_restored_state_is_ignored(session):
    # Truth: paid T0, cancelled T1, restored T2 (WooCommerce sends OrderRestored + OrderPaid for
    # the T2 payload). Arrival: T0, T2, T1. The T2 payload finds the order not cancelled (its
    # restoration is a no-op), but it is the newest state: the T1 cancellation must not undo it.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    assert apply_event(session, shop.id, _restore(1, T2, customer)).status == "noop"
    apply_event(session, shop.id, paid(1, T2, customer=customer, updated_at=T2))
    assert apply_event(session, shop.id, _cancel(1, T1)).status == "noop"
    assert _order(session, shop).status == "paid"
    assert checked_balance(session, shop, customer) == 100


def test_a_restored_order_that_is_no_longer_the_nth_does_not_keep_its_old_nth_order_bonus(session):
    # Every 2nd order +500. A (1st), B (2nd: bonus), B cancelled, C is now the 2nd (bonus),
    # B restored is the 3rd: it earns its 10 points, not a second 500 for the same slot.
    shop = make_shop(session)
    set_rule(session, shop, "nth_order", every_n=2, points=500)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid("A", T0, customer=customer, subtotal="10", updated_at=T0))
    apply_event(session, shop.id, paid("B", T0, customer=customer, subtotal="10", updated_at=T0))
    apply_event(session, shop.id, _cancel("B", T1))
    apply_event(session, shop.id, paid("C", T1, customer=customer, subtotal="10", updated_at=T1))
    apply_event(session, shop.id, _restore("B", T2, customer, subtotal="10"))
    assert _order(session, shop, "C").bonus_points == 500
    assert (_order(session, shop, "B").bonus_points, _order(session, shop, "B").points_earned) == (0, 10)
    assert checked_balance(session, shop, customer) == 30 + 500


def _earned_100_then_spent(session, spent: int, **shop_settings):
    """Order 1 earns 100 at T0, then the shopper spends `spent` of them (an in-store adjustment)."""
    shop = make_shop(session, **shop_settings)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    adjust_points(session, shop.id, customer.id, -spent, reason="spent in store", actor="staff:test", now=T0)
    return shop, customer


def test_clamp_a_restored_order_does_not_grant_again_what_the_clamped_cancellation_left_uncollected(session):
    # Earn 100, spend 100, cancel (clamped: 0 taken, 100 uncollected), restore: the shopper has
    # had this order's 100 points once already; granting 100 more pays the one order twice.
    shop, customer = _earned_100_then_spent(session, 100, negative_balance="clamp")
    apply_event(session, shop.id, _cancel(1, T1))
    apply_event(session, shop.id, _restore(1, T2, customer))
    assert checked_balance(session, shop, customer) == 0


def test_clamp_a_restored_order_settles_only_the_part_the_cancellation_could_not_take(session):
    # Earn 100, spend 60, cancel (40 taken, 60 uncollected), restore: +100, then the 60 are
    # settled from it: the shopper holds this order's 100 once, minus the 60 spent.
    shop, customer = _earned_100_then_spent(session, 60, negative_balance="clamp")
    apply_event(session, shop.id, _cancel(1, T1))
    assert checked_balance(session, shop, customer) == 0
    apply_event(session, shop.id, _restore(1, T2, customer))
    assert checked_balance(session, shop, customer) == 40
    oid = _order(session, shop).id
    settle = session.query(LedgerEntry).filter_by(shop_id=shop.id, idempotency_key=f"order:{oid}:r1:collect").one()
    assert (settle.kind, settle.points, settle.uncollected) == ("reverse", -60, -60)


def test_clamp_cancel_restore_twice_keeps_paying_the_order_once(session):
    shop, customer = _earned_100_then_spent(session, 100, negative_balance="clamp")
    for cancel_at, restore_at in ((T1, T2), (T3, T3 + timedelta(hours=1))):
        apply_event(session, shop.id, _cancel(1, cancel_at))
        apply_event(session, shop.id, _restore(1, restore_at, customer))
        assert checked_balance(session, shop, customer) == 0
    # Replaying the last restoration changes nothing.
    assert apply_event(session, shop.id, _restore(1, T3 + timedelta(hours=1), customer)).status == "noop"
    assert checked_balance(session, shop, customer) == 0


def test_clamp_a_refund_after_the_restoration_takes_its_share_of_what_the_order_still_pays(session):
    # 100 earned, 100 spent, half refunded (0 taken, 50 uncollected), cancelled (0 taken, 50 more
    # uncollected), restored: +100, 100 settled, the half refund's 50 again uncollected: 0.
    shop, customer = _earned_100_then_spent(session, 100, negative_balance="clamp")
    apply_event(session, shop.id, refunded(1, "R1", "50.00", T1))
    apply_event(session, shop.id, _cancel(1, T2))
    apply_event(session, shop.id, _restore(1, T3, customer))
    assert checked_balance(session, shop, customer) == 0
    uncollected = session.query(LedgerEntry).filter_by(shop_id=shop.id, customer_id=customer.id).all()
    assert sum(entry.uncollected for entry in uncollected) == 50
    # The shopper earns 80 elsewhere: the order's own rest is not taken from it again.
    adjust_points(session, shop.id, customer.id, 80, reason="goodwill", actor="staff:test", now=T3)
    assert checked_balance(session, shop, customer) == 80


def test_clamp_a_restored_order_in_a_return_window_settles_the_rest_when_its_points_are_released(session):
    shop = make_shop(session, negative_balance="clamp", pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, updated_at=T0))
    release_pending_points(session, shop.id, T0 + timedelta(days=15))
    later = T0 + timedelta(days=16)
    adjust_points(session, shop.id, customer.id, -100, reason="spent in store", actor="staff:test", now=later)
    apply_event(session, shop.id, _cancel(1, later + timedelta(hours=1)))
    apply_event(session, shop.id, _restore(1, later + timedelta(hours=2), customer))
    session.refresh(customer)
    assert (customer.points_balance, customer.pending_points) == (0, 100)
    release_pending_points(session, shop.id, later + timedelta(days=15))
    assert checked_balance(session, shop, customer) == 0
    session.refresh(customer)
    assert customer.pending_points == 0


def test_a_restored_order_in_an_allow_debt_shop_has_nothing_to_settle(session):
    # Without the clamp the cancellation took everything (a debt of 100); the restoration repays it.
    shop, customer = _earned_100_then_spent(session, 100)
    apply_event(session, shop.id, _cancel(1, T1))
    assert checked_balance(session, shop, customer) == -100
    apply_event(session, shop.id, _restore(1, T2, customer))
    assert checked_balance(session, shop, customer) == 0
    assert not [key for key, *_ in _keys(session, shop) if key.endswith(":collect")]


def test_a_restored_order_earns_at_the_tier_held_when_it_first_came_in_not_the_tier_it_lifted_the_customer_to(session):
    # Bronze x1; spend 600 lifts the customer to Silver (x1.25) and the order earns 600. A
    # cancellation never demotes, so restoring it must not earn 750: the order pays out once.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer, subtotal="600", updated_at=T0))
    assert checked_balance(session, shop, customer) == 600
    apply_event(session, shop.id, _cancel(1, T1))
    apply_event(session, shop.id, _restore(1, T2, customer, subtotal="600"))
    assert _order(session, shop).points_earned == 600
    assert checked_balance(session, shop, customer) == 600
