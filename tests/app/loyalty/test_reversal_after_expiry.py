"""A refund or cancellation arriving after an expiry took the order's points takes them only once.

An expiry takes the whole balance, so an order's remaining points are gone at the first expire
entry after its grant; that entry's amount is a pool its reversal draws on first (recorded as
`expiry_cover`), and only the rest comes from the balance. Each pool covers once in all.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.loyalty import new_sale, orders
from app.loyalty.apply import apply_event
from app.loyalty.events import OrderCancelled, OrderRestored
from app.loyalty.expiry import expire_inactive_points
from app.loyalty.pending import release_pending_points
from app.loyalty.redemptions import redeem_reward
from app.models import Customer, LedgerEntry, Order
from tests.factories import cancelled, checked_balance, make_customer, make_reward, make_shop, paid, refunded, snapshot
from tests.sql_log import statements_sent

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
EXPIRY = T0 + 200 * DAY  # more than the shops' 6 months after anything earned at T0 .. T0 + 2 days


def _shop(session, **settings):
    return make_shop(session, expiry_months=6, **settings)


def _order(session, shop, order_id) -> Order:
    session.flush()
    return session.query(Order).filter_by(shop_id=shop.id, platform_order_id=str(order_id)).populate_existing().one()


def _reversals(session, shop, customer) -> list[tuple[int, int, int]]:
    rows = (session.query(LedgerEntry).filter_by(shop_id=shop.id, customer_id=customer.id, kind="reverse")
            .order_by(LedgerEntry.id).all())
    return [(row.points, row.uncollected, row.expiry_cover) for row in rows]


def _spend(session, shop, customer, points, at) -> None:
    reward = make_reward(session, shop, points_cost=points)
    redeem_reward(session, shop.id, customer.id, reward.id, f"spend-{reward.id}", at)


def _expire(session, shop, at=EXPIRY) -> None:
    assert expire_inactive_points(session, shop.id, at).status == "applied"


def _statements(session):
    return statements_sent(session.get_bind())


def test_full_refund_after_the_expiry_took_the_points_takes_nothing_more(session):
    shop = _shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer))
    _expire(session, shop)
    assert checked_balance(session, shop, customer) == 0

    apply_event(session, shop.id, refunded(1, "r1", "100", EXPIRY + DAY))
    assert checked_balance(session, shop, customer) == 0
    assert _reversals(session, shop, customer) == [(0, 0, 100)]
    assert _order(session, shop, 1).points_reversed == 100


def test_partial_spend_then_expiry_then_refund_takes_only_what_the_expiry_did_not_cover(session):
    shop = _shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer))
    _spend(session, shop, customer, 60, T0 + DAY)
    _expire(session, shop)  # takes the 40 left
    assert checked_balance(session, shop, customer) == 0

    apply_event(session, shop.id, refunded(1, "r1", "100", EXPIRY + DAY))
    # As a refund before the expiry would have left it: 40 - 100.
    assert checked_balance(session, shop, customer) == -60
    assert _reversals(session, shop, customer) == [(-60, 0, 40)]


def test_partial_refunds_either_side_of_the_expiry_take_the_order_back_once(session):
    shop = _shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer))
    apply_event(session, shop.id, refunded(1, "r1", "50", T0 + DAY))
    _expire(session, shop)  # takes the other 50
    apply_event(session, shop.id, refunded(1, "r2", "50", EXPIRY + DAY))
    assert checked_balance(session, shop, customer) == 0
    assert _reversals(session, shop, customer) == [(-50, 0, 0), (0, 0, 50)]


def test_two_orders_refunded_after_one_expiry_draw_on_one_pool_without_double_cover(session):
    shop = _shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer))
    apply_event(session, shop.id, paid(2, T0 + DAY, customer=customer, subtotal="50"))
    _spend(session, shop, customer, 60, T0 + 2 * DAY)
    _expire(session, shop)  # the 90 left: one pool for both orders
    assert checked_balance(session, shop, customer) == 0

    apply_event(session, shop.id, refunded(1, "r1", "100", EXPIRY + DAY))
    assert checked_balance(session, shop, customer) == -10
    apply_event(session, shop.id, refunded(2, "r2", "50", EXPIRY + 2 * DAY))
    # 90 - 150 had both refunds come before the expiry; the pool's 90 covered once in all.
    assert checked_balance(session, shop, customer) == -60
    assert _reversals(session, shop, customer) == [(-10, 0, 90), (-50, 0, 0)]


def test_an_order_granted_after_the_expiry_is_reversed_as_usual(session):
    shop = _shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer))
    _expire(session, shop)
    apply_event(session, shop.id, paid(2, EXPIRY + DAY, customer=customer))
    assert checked_balance(session, shop, customer) == 100

    apply_event(session, shop.id, cancelled(2, EXPIRY + 2 * DAY))
    assert checked_balance(session, shop, customer) == 0
    # The pool is still whole for the order it concerns.
    apply_event(session, shop.id, cancelled(1, EXPIRY + 3 * DAY))
    assert checked_balance(session, shop, customer) == 0
    assert _reversals(session, shop, customer) == [(-100, 0, 0), (0, 0, 100)]


def test_refund_of_an_order_granted_after_an_expiry_sends_no_extra_statement(session):
    # Expiry after a month, and no win-back lapse that would send a returning sale down the general path.
    shop = make_shop(session, expiry_months=1, winback_min_days=365, winback_one_time_days=365)
    quick, general, fresh = (make_customer(session, shop) for _ in range(3))
    for customer in (quick, general):
        apply_event(session, shop.id, paid(f"{customer.id}-1", T0, customer=customer))
    _expire(session, shop, T0 + 40 * DAY)
    back = T0 + 41 * DAY
    assert new_sale.apply_new_sale(session, shop.id, paid("q2", back, customer=quick)) is not None
    orders.apply_order_paid(session, shop.id, paid("g2", back, customer=general))
    apply_event(session, shop.id, paid("f1", back, customer=fresh))
    for customer, order_id in ((quick, "q2"), (general, "g2")):
        session.flush()
        session.refresh(customer)
        assert _order(session, shop, order_id).grant_expire_id == customer.last_expire_id is not None

    counts = []
    for order_id in ("q2", "g2", "f1"):
        with _statements(session) as sent:
            apply_event(session, shop.id, refunded(order_id, f"r-{order_id}", "40", back + DAY))
            session.flush()
        counts.append(len(sent))
    assert counts[0] == counts[1] == counts[2]
    assert checked_balance(session, shop, quick) == checked_balance(session, shop, general) == 60


def test_replaying_the_refund_or_cancellation_after_expiry_changes_nothing(session):
    shop = _shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer))
    apply_event(session, shop.id, paid(2, T0, customer=customer))
    _expire(session, shop)
    for _ in range(2):
        apply_event(session, shop.id, refunded(1, "r1", "100", EXPIRY + DAY))
        apply_event(session, shop.id, cancelled(2, EXPIRY + DAY))
    assert checked_balance(session, shop, customer) == 0
    assert _reversals(session, shop, customer) == [(0, 0, 100), (0, 0, 100)]


def test_clamp_shop_covers_from_the_expiry_then_clamps_the_rest_and_a_restore_settles_it(session):
    shop = _shop(session, negative_balance="clamp")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, updated_at=T0, customer=customer))
    _spend(session, shop, customer, 60, T0 + DAY)
    _expire(session, shop)  # takes the 40 left
    apply_event(session, shop.id, OrderCancelled("1", EXPIRY + DAY, snapshot(1, updated_at=EXPIRY + DAY)))
    # 40 covered by the expiry; the 60 spent cannot be collected from an empty balance.
    assert checked_balance(session, shop, customer) == 0
    assert _reversals(session, shop, customer) == [(0, 60, 40)]

    apply_event(session, shop.id, OrderRestored("1", EXPIRY + 2 * DAY,
                                                snapshot(1, customer=customer, updated_at=EXPIRY + 2 * DAY)))
    # As without the expiry (earn 100, spend 60, cancel, restore): the order pays out once.
    assert checked_balance(session, shop, customer) == 40
    assert _reversals(session, shop, customer) == [(0, 60, 40), (-60, -60, 0)]


def test_restored_order_is_covered_only_by_an_expiry_after_its_new_grant(session):
    shop = _shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, updated_at=T0, customer=customer))
    _expire(session, shop)
    apply_event(session, shop.id, OrderCancelled("1", EXPIRY + DAY, snapshot(1, updated_at=EXPIRY + DAY)))
    assert checked_balance(session, shop, customer) == 0

    restored_at = EXPIRY + 2 * DAY
    apply_event(session, shop.id, OrderRestored("1", restored_at, snapshot(1, customer=customer, updated_at=restored_at)))
    assert checked_balance(session, shop, customer) == 100
    # The first pool is used up; this generation's points are gone only at the next expiry.
    second_expiry = restored_at + 200 * DAY
    _expire(session, shop, second_expiry)
    assert checked_balance(session, shop, customer) == 0
    apply_event(session, shop.id, OrderCancelled("1", second_expiry + DAY, snapshot(1, updated_at=second_expiry + DAY)))
    assert checked_balance(session, shop, customer) == 0
    assert _reversals(session, shop, customer) == [(0, 0, 100), (0, 0, 100)]


def test_restored_order_cancelled_again_without_a_new_expiry_is_taken_back_in_full(session):
    shop = _shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, updated_at=T0, customer=customer))
    _expire(session, shop)
    apply_event(session, shop.id, OrderCancelled("1", EXPIRY + DAY, snapshot(1, updated_at=EXPIRY + DAY)))
    apply_event(session, shop.id, OrderRestored("1", EXPIRY + 2 * DAY,
                                                snapshot(1, customer=customer, updated_at=EXPIRY + 2 * DAY)))
    apply_event(session, shop.id, OrderCancelled("1", EXPIRY + 3 * DAY, snapshot(1, updated_at=EXPIRY + 3 * DAY)))
    assert checked_balance(session, shop, customer) == 0
    assert _reversals(session, shop, customer) == [(0, 0, 100), (-100, 0, 0)]


def test_released_points_are_covered_and_never_released_ones_neither_expire_nor_draw_the_pool(session):
    shop = _shop(session, pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer))
    release_pending_points(session, shop.id, T0 + 15 * DAY)
    apply_event(session, shop.id, paid(2, T0 + 16 * DAY, customer=customer, subtotal="30"))  # never released
    expiry = T0 + 16 * DAY + 200 * DAY
    _expire(session, shop, expiry)
    assert checked_balance(session, shop, customer) == 0
    assert customer.pending_points == 30

    apply_event(session, shop.id, cancelled(2, expiry + DAY))
    apply_event(session, shop.id, refunded(1, "r1", "100", expiry + DAY))
    assert checked_balance(session, shop, customer) == 0
    assert customer.pending_points == 0
    assert _reversals(session, shop, customer) == [(0, 0, 0), (0, 0, 100)]


def test_expiry_records_the_customers_newest_expire_entry(session):
    shop = _shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, T0, customer=customer))
    _expire(session, shop)
    [entry] = session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="expire").all()
    assert session.get(Customer, customer.id).last_expire_id == entry.id
    assert _order(session, shop, 1).grant_expire_id is None  # granted before any expiry
