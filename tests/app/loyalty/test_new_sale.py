"""The quick path for the common sale writes exactly what the general path writes.

The same events go to two identically configured shops: one through apply_event (the quick
path wherever it applies), one through orders.apply_order_paid (the general ORM path only).
Every customer, order and ledger row must come out the same, and so must the intents.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from app.loyalty import new_sale, orders
from app.loyalty.apply import apply_event
from app.loyalty.events import CustomerInfo, OrderPaid
from app.loyalty.ledger import find_balance_drift
from app.models import Customer, LedgerEntry, Order, Tier
from tests.factories import make_customer, make_shop, paid, refunded, set_rule, snapshot

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
CUSTOMERS = ("q-a", "q-b", "q-c")  # known before the first event
NEW_CUSTOMERS = ("q-d", "q-e")     # created by their first order
SHOPPERS = CUSTOMERS + NEW_CUSTOMERS
ADVOCATE = "q-adv"                 # known; their code attributes a referral

programs = st.fixed_dictionaries({
    "pending_days": st.sampled_from([0, 14]),
    "rounding": st.sampled_from(["floor", "nearest", "ceil"]),
    "tier_basis": st.sampled_from(["spend", "points"]),
    "earn_basis": st.sampled_from(["subtotal", "total", "total_excl_tax"]),
    "include_test_orders": st.booleans(),
})
sales = st.lists(
    st.tuples(
        st.integers(0, len(SHOPPERS) - 1),                                     # who
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("2500"), places=2),  # subtotal
        st.integers(0, 60),                                                     # days since the previous sale
        st.sampled_from([None, "Ada", "Bo"]),                                   # first name on the payload
        st.booleans(),                                                          # test order
        st.sampled_from([None, None, "NOSUCHCODE1", "advocate"]),               # referral code on the order
        st.sampled_from([("0", "0"), ("0", "0"), ("25.00", "0"), ("0", "3.50"), ("40.00", "6.00")]),  # gift cards, tip
    ),
    min_size=1, max_size=12,
)


def _setup(session, program: dict, nth_order: bool):
    shop = make_shop(session, **program)
    if nth_order:
        set_rule(session, shop, "nth_order", every_n=3, points=50)
    set_rule(session, shop, "order", points_per_unit=Decimal("1.5"))
    customers = [make_customer(session, shop, platform_customer_id=pid, email=f"{pid}@example.com")
                 for pid in (*CUSTOMERS, ADVOCATE)]
    return shop, customers


def _events(ops, advocate_code: str) -> list[OrderPaid]:
    """The same sales for either shop; "advocate" stands for that shop's advocate's code."""
    events, clock = [], T0
    for n, (who, subtotal, gap, first_name, is_test, referral, (gift_cards, tip)) in enumerate(ops):
        clock += timedelta(days=gap, minutes=1)
        info = CustomerInfo(SHOPPERS[who], email=f"{SHOPPERS[who]}@example.com", first_name=first_name,
                            updated_at=clock)
        # A gift card bought is in the subtotal (at most all of it); a tip is in the total only.
        gift_cards, tip = min(Decimal(gift_cards), subtotal), Decimal(tip)
        events.append(paid(f"o{n}", clock, customer=info, subtotal=subtotal, total=subtotal + Decimal("4.90") + tip,
                           total_tax=Decimal("1.10"), gift_cards=gift_cards, tips=tip, placed_at=clock,
                           updated_at=clock, is_test=is_test,
                           order_number=str(1000 + n),
                           referral_code=advocate_code.lower() if referral == "advocate" else referral))
    return events


def _entry_key(entry, order_ids: dict[int, str]) -> str:
    if entry.order_id is not None:
        return entry.idempotency_key.replace(f"order:{entry.order_id}:", f"order:{order_ids[entry.order_id]}:")
    return re.sub(r"\d+", "#", entry.idempotency_key)  # referral:{id}:friend


def _state(session, shop_id: int) -> dict:
    """Everything the sale writes, with database ids replaced by platform ids."""
    session.expire_all()
    tier_names = dict(session.execute(select(Tier.id, Tier.name).where(Tier.shop_id == shop_id)).all())
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.shop_id == shop_id))}
    codes = {c.referral_code.lower(): "advocate's code" for c in customers.values()}  # differs between the shops
    order_ids = {o.id: o.platform_order_id for o in session.scalars(select(Order).where(Order.shop_id == shop_id))}
    customer_cols = ("first_name", "email", "points_balance", "pending_points", "points_earned_lifetime",
                     "tier_achieved_at", "orders_count", "total_spent", "first_order_at", "last_order_at",
                     "last_activity_at", "platform_updated_at", "sale_history", "median_gap_days")
    order_cols = ("email_normalized", "order_number", "currency", "subtotal", "total", "eligible_amount", "status",
                  "is_test", "placed_at", "paid_at", "points_status", "points_earned", "bonus_points", "pending_until",
                  "platform_updated_at", "refunded_amount", "points_reversed", "referral_code", "sale_multiplier",
                  "non_earning_amount", "refunded_non_earning")
    return {
        "customers": {c.platform_customer_id: ({k: getattr(c, k) for k in customer_cols}, tier_names.get(c.tier_id),
                                               customers[c.referred_by_id].platform_customer_id
                                               if c.referred_by_id else None)
                      for c in customers.values()},
        "orders": {o.platform_order_id: ({k: codes.get(getattr(o, k), getattr(o, k)) for k in order_cols},
                                         customers[o.customer_id].platform_customer_id)
                   for o in session.scalars(select(Order).where(Order.shop_id == shop_id))},
        "ledger": sorted(
            (e.kind, e.source, e.points, e.pending_delta, _entry_key(e, order_ids), order_ids.get(e.order_id),
             str(sorted((k, v) for k, v in e.details.items() if not k.endswith("_id"))), e.created_at,
             customers[e.customer_id].platform_customer_id)
            for e in session.scalars(select(LedgerEntry).where(LedgerEntry.shop_id == shop_id))
        ),
    }


def _intents(session, outcome) -> list[tuple]:
    return [(i.template, session.get(Customer, i.customer_id).platform_customer_id, re.sub(r"\d+", "#", i.key))
            for i in outcome.intents]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=programs, nth_order=st.booleans(), ops=sales)
def test_quick_and_general_paths_write_the_same_rows_and_intents(session, program, nth_order, ops):
    quick_shop, quick_customers = _setup(session, program, nth_order)
    general_shop, general_customers = _setup(session, program, nth_order)
    for quick_event, general_event in zip(_events(ops, quick_customers[-1].referral_code),
                                          _events(ops, general_customers[-1].referral_code)):
        quick = apply_event(session, quick_shop.id, quick_event)
        general = orders.apply_order_paid(session, general_shop.id, general_event)
        session.flush()
        assert _intents(session, quick) == _intents(session, general)
    assert _state(session, quick_shop.id) == _state(session, general_shop.id)
    assert find_balance_drift(session, quick_shop.id) == []
    session.rollback()


def test_quick_path_takes_the_common_sale(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    outcome = new_sale.apply_new_sale(session, shop.id, paid("q1", T0, customer=customer, subtotal="80.00"))
    assert outcome is not None and outcome.status == "applied"
    session.refresh(customer)
    assert customer.points_balance == 80 and customer.orders_count == 1


def test_quick_path_sale_held_for_a_return_window_resets_the_expiry_clock(session):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    outcome = new_sale.apply_new_sale(session, shop.id, paid("q1", T0, customer=customer, subtotal="80.00"))
    assert outcome is not None
    session.refresh(customer)
    assert (customer.points_balance, customer.pending_points, customer.last_activity_at) == (0, 80, T0)


def _customer_updates(session) -> tuple[int, int]:
    """(updates, HOT updates) of customers rows in this transaction so far."""
    return tuple(session.execute(text(
        "SELECT pg_stat_get_xact_tuples_updated('customers'::regclass), "
        "pg_stat_get_xact_tuples_hot_updated('customers'::regclass)")).one())


def test_a_sale_rewrites_its_customer_without_touching_an_index(session):
    # Every order writes a new version of its customer's row: no index covers a column the sale
    # changes and each page keeps room (migration 0015), so it is a HOT update. An index on such a
    # column (last_order_at had one) would cost an entry in every index of the table per event.
    shop = make_shop(session)
    customer = make_customer(session, shop)
    session.flush()
    updates, hot = _customer_updates(session)
    assert new_sale.apply_new_sale(session, shop.id, paid("q1", T0, customer=customer)) is not None
    assert _customer_updates(session) == (updates + 1, hot + 1)


def _rows(session, shop_id: int) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(Order).where(Order.shop_id == shop_id)),
            session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.shop_id == shop_id)))


def test_quick_path_declines_everything_uncommon_and_writes_nothing(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    referred = make_customer(session, shop, referred_by_id=customer.id)
    apply_event(session, shop.id, paid("seen", T0, customer=customer))
    apply_event(session, shop.id, refunded("refund-first", "r1", "10.00", T0))
    session.flush()
    before = _rows(session, shop.id)
    declined = {
        "guest": paid("n2", T0, email="guest@example.com"),
        "order already seen": paid("seen", T0, customer=customer),
        "refund waiting for its order": paid("refund-first", T0, customer=customer),
        "an advocate's referral code": paid("n3", T0, customer=customer, referral_code=referred.referral_code),
        "a new shopper with an advocate's code": paid("n1", T0, customer=CustomerInfo("nobody-yet", email="n@e.com"),
                                                      referral_code=customer.referral_code),
        "referred customer": paid("n4", T0, customer=referred),
        "imported history": OrderPaid(snapshot("n5", customer=customer), T0, historical=True),
        "test order": paid("n6", T0, customer=customer, is_test=True),
        "may end a win-back sequence": paid("n7", T0 + timedelta(days=45), customer=customer,
                                            placed_at=T0 + timedelta(days=45)),
    }
    for why, event in declined.items():
        assert new_sale.apply_new_sale(session, shop.id, event) is None, why
    assert _rows(session, shop.id) == before


def test_quick_path_declines_shops_it_does_not_model(session):
    for program in ({"award_on": "fulfilled"}, {"tier_period": "calendar_year"}):
        shop = make_shop(session, **program)
        customer = make_customer(session, shop)
        assert new_sale.apply_new_sale(session, shop.id, paid("p1", T0, customer=customer)) is None, program
        assert _rows(session, shop.id) == (0, 0)


def test_a_customer_object_held_by_the_caller_sees_the_quick_paths_writes(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    assert customer.points_balance == 0
    apply_event(session, shop.id, paid("q9", T0, customer=customer, subtotal="25.00"))
    assert customer.points_balance == 25  # expired by the quick path, reloaded on access


def test_quick_path_takes_a_new_shopper_and_an_unknown_referral_code(session):
    shop = make_shop(session)
    info = CustomerInfo("brand-new", email="Brand.New@Example.com", first_name="Bea")
    outcome = new_sale.apply_new_sale(session, shop.id, paid("q2", T0, customer=info, subtotal="40.00",
                                                             referral_code="NOSUCHCODE1"))
    assert outcome is not None and outcome.status == "applied"
    customer = session.scalars(select(Customer).where(Customer.shop_id == shop.id,
                                                      Customer.platform_customer_id == "brand-new")).one()
    assert (customer.points_balance, customer.orders_count, customer.first_name) == (40, 1, "Bea")
    assert customer.email_normalized == "brand.new@example.com" and len(customer.referral_code) == 12
    order = session.scalars(select(Order).where(Order.shop_id == shop.id)).one()
    assert order.customer_id == customer.id and order.referral_code == "NOSUCHCODE1"
    assert find_balance_drift(session, shop.id) == []


def test_a_program_changed_since_it_was_seen_is_read_again(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid("p1", T0, customer=customer, subtotal="10.00"))
    set_rule(session, shop, "order", points_per_unit=Decimal("3"))
    session.flush()
    apply_event(session, shop.id, paid("p2", T0 + timedelta(minutes=1), customer=customer, subtotal="10.00"))
    session.refresh(customer)
    assert customer.points_balance == 10 + 30


def test_a_sale_rolled_back_leaves_nothing_the_next_one_trusts(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid("r1", T0, customer=customer, subtotal="10.00"))
    savepoint = session.begin_nested()
    apply_event(session, shop.id, paid("r2", T0 + timedelta(minutes=1), customer=customer, subtotal="50.00"))
    savepoint.rollback()
    apply_event(session, shop.id, paid("r3", T0 + timedelta(minutes=2), customer=customer, subtotal="7.00"))
    session.refresh(customer)
    assert (customer.points_balance, customer.orders_count, customer.total_spent) == (17, 2, Decimal("17.00"))
    assert find_balance_drift(session, shop.id) == []


def test_concurrent_sales_for_one_shopper_each_count_once(app, session):
    """Different orders of one shopper (known, and new) at once: each waits for the locked row
    (or loses the new shopper's INSERT and falls back); nothing lost, nothing doubled."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session as PlainSession

    from app.extensions import db
    from tests.app.loyalty.test_ledger_invariants import _race

    shop = make_shop(session)
    known = make_customer(session, shop)
    session.commit()
    shop_id, known_info = shop.id, CustomerInfo(known.platform_customer_id, email=known.email)
    new_info = CustomerInfo("arrives-twice-at-once", email="twice@example.com")
    with app.app_context():
        engine = create_engine(db.engine.url, pool_size=20, max_overflow=0)

    def sell(i: int) -> str:
        info = known_info if i % 2 else new_info
        with PlainSession(engine) as s:
            apply_event(s, shop_id, paid(f"c{i}", T0 + timedelta(seconds=i), customer=info, subtotal=str(10 + i)))
            s.commit()
        return "ok"

    assert _race(16, sell) == ["ok"] * 16
    engine.dispose()
    session.expire_all()
    rows = {c.platform_customer_id: c for c in session.scalars(select(Customer).where(Customer.shop_id == shop_id))}
    odd, even = [10 + i for i in range(16) if i % 2], [10 + i for i in range(16) if not i % 2]
    assert (rows[known.platform_customer_id].points_balance, rows[known.platform_customer_id].orders_count) == (sum(odd), 8)
    assert (rows[new_info.platform_customer_id].points_balance, rows[new_info.platform_customer_id].orders_count) == (sum(even), 8)
    assert find_balance_drift(session, shop_id) == []


def _scans(plan: dict, relation: str) -> list[dict]:
    found = [plan] if plan.get("Relation Name") == relation else []
    for child in plan.get("Plans", []):
        found += _scans(child, relation)
    return found


def test_the_advocate_is_found_by_its_code_not_by_walking_the_shops_customers(session):
    # Without statistics (a fresh table, autovacuum not yet round, a plan cached while the table
    # was small) the planner cannot tell `shop_id = ?` from a unique key: a lookup that also
    # names the shop may walk the shop's (shop_id, id) index, every customer on every order.
    shop = make_shop(session)
    for n in range(3):
        make_customer(session, shop, platform_customer_id=f"walk-{n}")
    session.flush()
    session.execute(text("SET LOCAL enable_seqscan = off"))  # a table this small would be read whole
    raw = session.connection().connection.driver_connection
    plan = raw.execute("EXPLAIN (FORMAT JSON) " + new_sale._READ_SQL,
                       {"shop": shop.id, "order": "o-1", "referral": "SOMECODE",
                        "customer": "walk-1"}).fetchone()[0][0]["Plan"]
    scans = [s for s in _scans(plan, "customers") if s.get("Alias") == "a"]  # the advocate's probe
    assert scans and all(s.get("Index Name") == "uq_customers_referral_code" for s in scans), scans
