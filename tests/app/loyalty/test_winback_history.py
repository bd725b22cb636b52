"""The sale history the win-back rule reads (customers.sale_history, median_gap_days) is kept
by every order event that changes what counts as a sale, on both order paths, and migration
0012's backfill computes exactly the same from the orders."""
from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.loyalty import new_sale, orders
from app.loyalty.apply import apply_event
from app.loyalty.customers import SALE_HISTORY, median_gap_days, sale_times
from app.loyalty.events import OrderCancelled, OrderPaid, OrderRestored
from app.loyalty.winback import select_lapsing
from app.models import Customer
from tests.factories import make_customer, make_shop, paid, refunded, snapshot

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
NOW = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def _history(session, customer) -> tuple[list[datetime], float | None]:
    session.flush()
    session.refresh(customer)
    return sale_times(customer.sale_history), customer.median_gap_days


def _buy(session, shop, customer, order_id, at, **fields):
    apply_event(session, shop.id, paid(order_id, at, customer=customer, placed_at=at, updated_at=at, **fields))


def _cancel(session, shop, order_id, at):
    apply_event(session, shop.id, OrderCancelled(order_id, at, snapshot(order_id, updated_at=at)))


def _restore(session, shop, customer, order_id, at):
    apply_event(session, shop.id, OrderRestored(order_id, at, snapshot(order_id, customer=customer, updated_at=at)))


# --- the rule ------------------------------------------------------------------------------

def _us(times: list[datetime]) -> list[int]:
    return [(at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) for at in times]


def test_median_gap_is_the_middle_gap_or_the_mean_of_the_two_middle_ones():
    assert median_gap_days([]) is None and median_gap_days(_us([day(0)])) is None
    assert median_gap_days(_us([day(0), day(10)])) == 10
    assert median_gap_days(_us([day(0), day(10), day(30), day(70)])) == 20       # gaps 10, 20, 40
    assert median_gap_days(_us([day(0), day(10), day(30), day(70), day(71)])) == 15  # gaps 10, 20, 40, 1
    assert median_gap_days(_us([day(0), day(0), day(5)])) == 2.5                  # same-time sales: a gap of 0


# --- kept by the order paths ---------------------------------------------------------------

def test_each_sale_is_recorded_on_the_general_and_the_quick_path(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    _buy(session, shop, customer, "a1", day(0))                    # first order: general path
    session.flush()
    # 10 days later, less than the shortest lapse: the quick path takes it.
    assert new_sale.apply_new_sale(session, shop.id, paid("a2", day(10), customer=customer, placed_at=day(10))) is not None
    assert _history(session, customer) == ([day(0), day(10)], 10)
    _buy(session, shop, customer, "a3", day(50))                   # 40 days on: general path
    assert _history(session, customer) == ([day(0), day(10), day(50)], 25)


def test_the_gap_is_between_paid_times(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid("p1", day(5), customer=customer, placed_at=day(0)))
    apply_event(session, shop.id, paid("p2", day(25), customer=customer, placed_at=day(24)))
    assert _history(session, customer) == ([day(5), day(25)], 20)


def test_the_history_keeps_the_last_sixteen_sales_and_follows_the_recent_rhythm(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    times = [day(2 * i) for i in range(20)] + [day(38 + 30 * i) for i in range(1, 16)]  # 19 gaps of 2, then 15 of 30
    for n, at in enumerate(times):
        _buy(session, shop, customer, f"h{n}", at)
    recent, median = _history(session, customer)
    assert recent == times[-SALE_HISTORY:] and median == 30
    assert customer.orders_count == len(times)


def test_imported_history_in_any_order_is_sorted_and_bounded(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    times = [day(3 * i) for i in range(SALE_HISTORY + 4)]
    for n, at in sorted(enumerate(times), key=lambda item: (item[0] * 7) % len(times)):  # shuffled
        apply_event(session, shop.id, OrderPaid(snapshot(f"i{n}", customer=customer, placed_at=at), at, historical=True))
    assert _history(session, customer) == (times[-SALE_HISTORY:], 3)


def test_refunds_change_nothing_a_cancellation_removes_the_sale_and_a_restoration_brings_it_back(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    for n, at in enumerate([day(0), day(10), day(30), day(70)]):
        _buy(session, shop, customer, f"c{n}", at, subtotal="50.00")
    before = _history(session, customer)
    assert before == ([day(0), day(10), day(30), day(70)], 20)
    apply_event(session, shop.id, refunded("c2", "r1", "50.00", day(71)))   # refunded in full: still a sale
    assert _history(session, customer) == before
    _cancel(session, shop, "c1", day(72))
    assert _history(session, customer) == ([day(0), day(30), day(70)], 35)
    _cancel(session, shop, "c1", day(73))                                 # a repeated cancellation: no-op
    assert _history(session, customer) == ([day(0), day(30), day(70)], 35)
    _restore(session, shop, customer, "c1", day(74))
    assert _history(session, customer) == before
    _cancel(session, shop, "c3", day(75))                                 # the last order
    assert _history(session, customer) == ([day(0), day(10), day(30)], 15)
    assert customer.orders_count == 3


def test_cancelling_within_a_full_history_lets_the_older_sale_back_in(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    times = [day(5 * i) for i in range(SALE_HISTORY + 2)]
    for n, at in enumerate(times):
        _buy(session, shop, customer, f"f{n}", at)
    assert _history(session, customer)[0] == times[2:]
    _cancel(session, shop, "f10", day(200))
    assert _history(session, customer) == (times[1:10] + times[11:], 5)


def test_a_claimed_guest_order_is_recorded(session):
    shop = make_shop(session)
    apply_event(session, shop.id, paid("g2", day(20), email="guest@example.com", placed_at=day(20)))  # as a guest
    customer = make_customer(session, shop, email="guest@example.com")   # the account comes later
    _buy(session, shop, customer, "g1", day(0))
    assert _history(session, customer) == ([day(0)], None)
    orders.claim_guest_orders(session, shop.id, customer, day(21))
    assert _history(session, customer) == ([day(0), day(20)], 20)


def test_a_late_paid_event_for_a_cancelled_order_records_nothing(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    _buy(session, shop, customer, "l1", day(0))
    _cancel(session, shop, "l2", day(5))
    _buy(session, shop, customer, "l2", day(6))
    assert _history(session, customer) == ([day(0)], None)


# --- the selection reads it, with the shop's settings of the day ------------------------------

def test_changing_the_multiplier_applies_at_the_next_selection(session):
    shop = make_shop(session)
    customer = make_customer(session, shop, accepts_marketing=True)
    for n, ago in enumerate([130, 110, 90, 70]):                           # gaps of 20 days
        _buy(session, shop, customer, f"m{n}", NOW - timedelta(days=ago))
    lapsing = lambda: {c.customer_id for page in select_lapsing(session, shop.id, NOW) for c in page}  # noqa: E731
    assert lapsing() == {customer.id}                                      # 70 > max(30, 2 x 20)
    shop.settings = {**(shop.settings or {}), "winback_gap_multiplier": 4}
    session.flush()
    assert lapsing() == set()                                              # 70 < 4 x 20


# --- migration 0012's backfill -------------------------------------------------------------

def _migration():
    path = Path(__file__).resolve().parents[3] / "migrations" / "versions" / "0012_winback_sale_history.py"
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migrations_backfill_computes_what_the_order_path_keeps(session):
    shop = make_shop(session)
    other = make_shop(session)
    odd = timedelta(seconds=7, microseconds=3)     # times off whole seconds: the median must match to the bit
    people = [make_customer(session, shop) for _ in range(6)]
    never = make_customer(session, shop)
    a, b, c, d, e, f = people
    _buy(session, shop, a, "b-a1", day(1) + odd)
    for n, at in enumerate([day(0), day(9) + odd, day(13), day(40) + odd, day(41)]):
        _buy(session, shop, b, f"b-b{n}", at)
    for n in range(SALE_HISTORY + 3):
        _buy(session, shop, c, f"b-c{n}", day(4 * n) + odd * n)
    for n, at in enumerate([day(0), day(10), day(30), day(31) + odd]):
        _buy(session, shop, d, f"b-d{n}", at, subtotal="20.00")
    _cancel(session, shop, "b-d2", day(32))
    _restore(session, shop, d, "b-d2", day(33))
    _cancel(session, shop, "b-d1", day(34))
    apply_event(session, shop.id, refunded("b-d3", "b-r", "5.00", day(35)))
    for n in range(5):
        at = day(100 - 7 * n) + odd
        apply_event(session, shop.id, OrderPaid(snapshot(f"b-e{n}", customer=e, placed_at=at), at, historical=True))
    apply_event(session, shop.id, paid("b-f2", day(3), email="later@example.com", placed_at=day(3)))  # a guest
    f.email, f.email_normalized = "later@example.com", "later@example.com"
    _buy(session, shop, f, "b-f1", day(0))
    orders.claim_guest_orders(session, shop.id, f, day(4))
    kept_elsewhere = make_customer(session, other)
    _buy(session, other, kept_elsewhere, "b-x1", day(0))
    _buy(session, other, kept_elsewhere, "b-x2", day(8))
    session.flush()

    def columns(shop_id):
        return {row.id: (sale_times(row.sale_history), row.median_gap_days) for row in session.execute(
            select(Customer.id, Customer.sale_history, Customer.median_gap_days).where(Customer.shop_id == shop_id))}

    kept, kept_other = columns(shop.id), columns(other.id)
    assert kept[never.id] == ([], None) and kept[a.id][1] is None and len(kept[c.id][0]) == SALE_HISTORY
    assert kept[f.id] == ([day(0), day(3)], 3)                                  # the claimed guest order
    session.execute(text("UPDATE customers SET sale_history = '', median_gap_days = NULL WHERE shop_id = :s"),
                    {"s": shop.id})
    session.expire_all()
    assert columns(shop.id) != kept
    _migration().backfill(session.connection(), shop_id=shop.id)
    assert columns(shop.id) == kept            # equal, to the microsecond and the last bit of the median
    assert columns(other.id) == kept_other     # the other shop untouched
    assert Decimal(str(kept[b.id][1])) > 0


@pytest.mark.parametrize("count", [2, 3, 4])
def test_backfill_median_matches_the_rule_bit_for_bit_on_awkward_gaps(session, count):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    for n in range(count):
        _buy(session, shop, customer, f"w{n}", day(0) + timedelta(days=n * 1.37, microseconds=n * n * 11))
    session.flush()
    session.refresh(customer)
    expected = customer.median_gap_days
    session.execute(text("UPDATE customers SET median_gap_days = NULL WHERE id = :id"), {"id": customer.id})
    _migration().backfill(session.connection(), shop_id=shop.id)
    session.refresh(customer)
    assert customer.median_gap_days == expected and expected == median_gap_days(_us(sale_times(customer.sale_history)))
