"""The guarantees the whole product stands on, proven on real PostgreSQL:

- after any sequence of events, every cached balance equals the sum of its ledger entries;
- applying every event twice leaves the same state as applying it once;
- concurrent redemptions never overdraw: exactly floor(balance / cost) succeed;
- concurrent deliveries of one event credit once.
"""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.loyalty.adjustments import adjust_points
from app.loyalty.apply import apply_event
from app.loyalty.errors import InsufficientPoints, LoyaltyError
from app.loyalty.events import CustomerInfo, OrderFulfilled, OrderRestored
from app.loyalty.expiry import expire_inactive_points
from app.loyalty.ledger import find_balance_drift
from app.loyalty.pending import release_pending_points
from app.loyalty.redemptions import fail_redemption, redeem_reward
from app.models import Customer, LedgerEntry, Order, Reward
from tests.factories import cancelled, make_customer, make_shop, paid, refunded, set_rule, snapshot

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CUSTOMERS = ("c-a", "c-b", "c-c")

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("900"), places=2)
steps = st.one_of(
    st.tuples(st.just("paid"), st.integers(0, 5), st.integers(0, 2), amounts),
    st.tuples(st.just("fulfilled"), st.integers(0, 5), st.integers(0, 2), amounts),
    st.tuples(st.just("refund"), st.integers(0, 5), st.integers(0, 3), amounts),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("restore"), st.integers(0, 5)),
    st.tuples(st.just("redeem"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("fail_redemption"), st.integers(0, 5)),
    st.tuples(st.just("adjust"), st.integers(0, 2), st.integers(-300, 300).filter(bool), st.integers(0, 3)),
    st.tuples(st.just("advance"), st.integers(1, 40)),
)
program = st.fixed_dictionaries({
    "pending_days": st.sampled_from([0, 7]),
    "negative_balance": st.sampled_from(["allow", "clamp"]),
    "award_on": st.sampled_from(["paid", "fulfilled"]),
    "expiry_months": st.sampled_from([None, 1]),
    "every_nth": st.sampled_from([None, 2]),  # an Nth-order bonus rule (decided afresh on restore)
})


def _run(session: Session, shop, ops, *, twice: bool, every_nth: int | None = None) -> None:
    """Apply `ops` to `shop`; with twice=True every operation is applied a second time."""
    if every_nth:
        set_rule(session, shop, "nth_order", every_n=every_nth, points=50)
    customers = {pid: make_customer(session, shop, platform_customer_id=pid, email=f"{pid}@example.com")
                 for pid in CUSTOMERS}
    rewards = session.scalars(select(Reward).where(Reward.shop_id == shop.id).order_by(Reward.id)).all()
    clock = T0
    redemption_ids: list[int] = []
    for step_no, op in enumerate(ops):
        for _ in range(2 if twice else 1):
            kind = op[0]
            try:
                if kind in ("paid", "fulfilled"):
                    _, order, who, amount = op
                    snap = snapshot(f"o{order}", customer=customers[CUSTOMERS[who]], subtotal=amount)
                    event = paid(f"o{order}", clock, customer=customers[CUSTOMERS[who]], subtotal=amount) \
                        if kind == "paid" else OrderFulfilled(snap, clock)
                    apply_event(session, shop.id, event)
                elif kind == "refund":
                    _, order, refund_no, amount = op
                    apply_event(session, shop.id, refunded(f"o{order}", f"r{order}-{refund_no}", amount, clock))
                elif kind == "cancel":
                    apply_event(session, shop.id, cancelled(f"o{op[1]}", clock))
                elif kind == "restore":
                    if _ == 0:
                        clock += timedelta(minutes=1)  # a restoration is newer than the cancellation
                    apply_event(session, shop.id, OrderRestored(f"o{op[1]}", clock))
                elif kind == "redeem":
                    _, who, reward, key = op
                    result = redeem_reward(session, shop.id, customers[CUSTOMERS[who]].id, rewards[reward].id,
                                           f"key-{who}-{key}", clock)
                    if result.created:
                        redemption_ids.append(result.redemption.id)
                elif kind == "fail_redemption":
                    if redemption_ids:
                        fail_redemption(session, shop.id, redemption_ids[op[1] % len(redemption_ids)], "test", clock)
                elif kind == "adjust":
                    _, who, points, key = op
                    adjust_points(session, shop.id, customers[CUSTOMERS[who]].id, points, reason="hypothesis",
                                  actor="staff:test", now=clock, idempotency_key=f"adj-{step_no}-{who}-{key}")
                elif kind == "advance":
                    if _ == 0:
                        clock += timedelta(days=op[1])
                    release_pending_points(session, shop.id, clock)
                    expire_inactive_points(session, shop.id, clock)
            except InsufficientPoints:
                pass  # a refusal is a legitimate outcome; it must change nothing
            except LoyaltyError as exc:
                assert exc.code in ("idempotency_key_reused",), exc
        assert find_balance_drift(session, shop.id) == [], f"drift after {op}"
        assert _orders_off_their_ledger(session, shop) == [], f"order entries disagree after {op}"
    assert _overdrawn_expiries(session, shop) == []


def _orders_off_their_ledger(session: Session, shop) -> list[tuple[str, int, int]]:
    """Orders whose entries do not net to what the order still pays: (order, net, earned - reversed).

    Net = points + pending - uncollected - expiry_cover over all the order's entries (every
    generation): a cancelled generation nets to zero, a settled rest too, the live one to its grant
    less what its refunds took."""
    L = LedgerEntry
    net = dict(session.execute(
        select(L.order_id, func.sum(L.points + L.pending_delta - L.uncollected - L.expiry_cover))
        .where(L.shop_id == shop.id, L.order_id.is_not(None)).group_by(L.order_id)).all())
    rows = session.execute(select(Order.id, Order.platform_order_id, Order.points_earned - Order.points_reversed)
                           .where(Order.shop_id == shop.id)).all()
    return [(pid, int(net.get(oid, 0)), due) for oid, pid, due in rows if int(net.get(oid, 0)) != due]


def _overdrawn_expiries(session: Session, shop) -> list[tuple[int, int, int]]:
    """Expire entries whose reversals drew more than they took: (id, expired, drawn)."""
    expired = dict(session.execute(select(LedgerEntry.id, -LedgerEntry.points)
                                   .where(LedgerEntry.shop_id == shop.id, LedgerEntry.kind == "expire")).all())
    drawn: dict[int, int] = {}
    for details, cover in session.execute(select(LedgerEntry.details, LedgerEntry.expiry_cover)
                                          .where(LedgerEntry.shop_id == shop.id, LedgerEntry.expiry_cover > 0)):
        drawn[details["expire_entry_id"]] = drawn.get(details["expire_entry_id"], 0) + cover
    return [(i, expired.get(i, 0), d) for i, d in drawn.items() if d > expired.get(i, 0)]


def _state(session: Session, shop) -> dict:
    customers = {
        c.platform_customer_id: (c.points_balance, c.pending_points, c.orders_count, c.total_spent, c.tier_id and 1)
        for c in session.scalars(select(Customer).where(Customer.shop_id == shop.id))
    }
    orders = {
        o.platform_order_id: (o.status, o.points_status, o.points_earned, o.points_reversed, o.refunded_amount)
        for o in session.scalars(select(Order).where(Order.shop_id == shop.id))
    }
    entries = session.execute(
        select(LedgerEntry.kind, func.sum(LedgerEntry.points), func.sum(LedgerEntry.pending_delta), func.count())
        .where(LedgerEntry.shop_id == shop.id).group_by(LedgerEntry.kind).order_by(LedgerEntry.kind)
    ).all()
    return {"customers": customers, "orders": orders, "entries": [tuple(e) for e in entries]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(ops=st.lists(steps, min_size=1, max_size=25), program_settings=program)
def test_balance_equals_ledger_sum_and_twice_equals_once(session, ops, program_settings):
    try:
        program_settings = dict(program_settings)
        every_nth = program_settings.pop("every_nth")
        once = make_shop(session, **program_settings)
        _run(session, once, ops, twice=False, every_nth=every_nth)
        twice = make_shop(session, **program_settings)
        _run(session, twice, ops, twice=True, every_nth=every_nth)
        assert _state(session, once) == _state(session, twice)
        if program_settings["negative_balance"] == "clamp":
            assert session.scalar(select(func.min(Customer.points_balance)).where(Customer.shop_id == once.id)) >= 0
    finally:
        session.rollback()


def _thread_engine(app):
    with app.app_context():
        url = db.engine.url
    return create_engine(url, pool_size=55, max_overflow=0)


def _race(count: int, work) -> list:
    """Run work(i) in `count` threads released together; return each result or exception."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_fifty_concurrent_redemptions_never_overdraw(app, session):
    shop = make_shop(session)
    reward = session.scalars(select(Reward).where(Reward.shop_id == shop.id, Reward.points_cost == 300)).one()
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 1250, reason="seed", actor="staff:test", now=T0)
    session.commit()
    shop_id, customer_id, reward_id = shop.id, customer.id, reward.id  # threads must not touch these rows' session
    engine = _thread_engine(app)

    def redeem(i: int) -> str:
        with Session(engine) as s:
            try:
                redeem_reward(s, shop_id, customer_id, reward_id, f"tap-{i}", T0)
                s.commit()
                return "ok"
            except InsufficientPoints:
                s.rollback()
                return "refused"

    results = _race(50, redeem)
    engine.dispose()
    assert results.count("ok") == 1250 // 300 == 4
    assert results.count("refused") == 46, [r for r in results if r not in ("ok", "refused")]
    session.expire_all()
    assert session.get(Customer, customer.id).points_balance == 1250 - 4 * 300
    assert find_balance_drift(session, shop.id) == []


def test_same_event_delivered_concurrently_credits_once(app, session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    event = paid("race-1", T0, customer=customer, subtotal="75")
    session.commit()
    shop_id = shop.id
    engine = _thread_engine(app)

    def deliver(_: int) -> str:
        with Session(engine) as s:
            apply_event(s, shop_id, event)
            s.commit()
            return "ok"

    results = _race(8, deliver)
    engine.dispose()
    assert results == ["ok"] * 8
    session.expire_all()
    assert session.get(Customer, customer.id).points_balance == 75
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 1


def test_refund_racing_its_order_is_never_lost(app, session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    events = [paid("race-2", T0, customer=customer, subtotal="200"), refunded("race-2", "rf-1", "50", T0)]
    session.commit()
    shop_id = shop.id
    engine = _thread_engine(app)

    def deliver(i: int) -> str:
        with Session(engine) as s:
            apply_event(s, shop_id, events[i % 2])
            s.commit()
            return "ok"

    assert _race(2, deliver) == ["ok", "ok"]
    engine.dispose()
    session.expire_all()
    assert session.get(Customer, customer.id).points_balance == 150


def test_first_orders_of_a_new_shopper_racing_each_other_create_one_customer_and_credit_each(app, session):
    """The quick path inserts a shopper it has never seen; when several first orders of the
    same new shopper arrive at once, one insert wins and the others fall back to the general
    path: one customer row, every order credited once."""
    shop = make_shop(session)
    session.commit()
    shop_id = shop.id
    newcomer = CustomerInfo(platform_customer_id="new-9001", email="New.Shopper@Example.com")
    events = [paid(f"first-{i}", T0 + timedelta(minutes=i), customer=newcomer, subtotal="10") for i in range(6)]
    engine = _thread_engine(app)

    def deliver(i: int) -> str:
        with Session(engine) as s:
            apply_event(s, shop_id, events[i])
            s.commit()
            return "ok"

    assert _race(6, deliver) == ["ok"] * 6
    engine.dispose()
    [customer] = session.scalars(select(Customer).where(Customer.shop_id == shop_id)).all()
    assert customer.platform_customer_id == "new-9001" and customer.orders_count == 6
    assert customer.points_balance == 60
    assert session.query(LedgerEntry).filter_by(shop_id=shop_id, kind="earn").count() == 6
    assert find_balance_drift(session, shop_id) == []
