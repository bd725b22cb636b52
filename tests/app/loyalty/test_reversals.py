"""Taking order points back: refunds in proportion (cumulative, half up), cancellations in full,
always from the points actually granted for the order, in any arrival order."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from app.loyalty.adjustments import adjust_points
from app.loyalty.apply import apply_event
from app.loyalty.events import OrderCancelled, OrderFulfilled
from app.loyalty.ledger import find_balance_drift, ledger_sums
from app.loyalty.pending import release_pending_points
from app.loyalty.redemptions import redeem_reward
from app.models import LedgerEntry, Order, OrderRefund, Reward
from tests.factories import cancelled, make_customer, make_shop, paid, refunded, set_rule, snapshot


def _reload(session, row) -> None:
    """Re-read a row from the database, after writing out what the session still holds."""
    session.flush()
    session.refresh(row)


def _order(session, shop, order_id) -> Order:
    return session.query(Order).filter_by(shop_id=shop.id, platform_order_id=str(order_id)).one()


def _entries(session, shop, customer, kind: str) -> list[LedgerEntry]:
    return (session.query(LedgerEntry).filter_by(shop_id=shop.id, customer_id=customer.id, kind=kind)
            .order_by(LedgerEntry.id).all())


def _assert_ledger_agrees(session, shop, customer) -> None:
    session.flush()
    _reload(session, customer)
    assert find_balance_drift(session, shop.id) == []
    assert ledger_sums(session, shop.id, customer.id) == (customer.points_balance, customer.pending_points)


def _spend_everything(session, shop, customer, now) -> None:
    """Take the balance to exactly zero by redeeming a reward that costs all of it."""
    _reload(session, customer)
    reward = Reward(shop_id=shop.id, name="Everything", kind="fixed_amount", points_cost=customer.points_balance,
                    value=Decimal("1"))
    session.add(reward)
    session.flush()
    redeem_reward(session, shop.id, customer.id, reward.id, "spend-all", now)
    _reload(session, customer)
    assert customer.points_balance == 0


# --- partial refunds ------------------------------------------------------------------------

def test_partial_refund_reverses_the_refunded_share_of_the_order_total(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    # Earns on the subtotal (80) but the share is refunded / total (25 / 100).
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="80", total="100",
                                       total_shipping=Decimal("20")))
    outcome = apply_event(session, shop.id, refunded(1, "r1", "25"))
    assert outcome.status == "applied"
    order = _order(session, shop, 1)
    assert order.points_earned == 80
    assert order.refunded_amount == Decimal("25")
    assert order.points_reversed == 20
    [reversal] = _entries(session, shop, customer, "reverse")
    assert (reversal.points, reversal.pending_delta, reversal.uncollected) == (-20, 0, 0)
    assert reversal.order_id == order.id
    _reload(session, customer)
    assert customer.points_balance == 60
    assert customer.total_spent == Decimal("75")
    _assert_ledger_agrees(session, shop, customer)


@pytest.mark.parametrize(("subtotal", "refund", "reversed_points"), [
    ("25", "12.50", 13),   # 12.5 -> 13 (half up; banker's rounding would give 12)
    ("21", "10.50", 11),   # 10.5 -> 11 (banker's rounding would give 10)
    ("25", "12.40", 12),   # 12.4 -> 12
    ("25", "12.60", 13),   # 12.6 -> 13
    ("30", "10.00", 10),   # exact
])
def test_refund_share_is_rounded_half_up(session, subtotal, refund, reversed_points):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal=subtotal))
    apply_event(session, shop.id, refunded(1, "r1", refund))
    assert _order(session, shop, 1).points_reversed == reversed_points
    _reload(session, customer)
    assert customer.points_balance == int(subtotal) - reversed_points
    _assert_ledger_agrees(session, shop, customer)


def test_an_exact_half_share_is_rounded_up_even_when_the_refunded_fraction_does_not_terminate(session):
    # 30 points on a 60.00 order; 11.00 refunded -> 30 x 11/60 = 5.5 exactly -> 6 (half up).
    # Dividing first (11/60 = 0.18333...3, rounded to 28 digits) gives 5.4999...9 -> 5.
    shop = make_shop(session)
    set_rule(session, shop, "order", points_per_unit=Decimal("0.5"))
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="60"))
    apply_event(session, shop.id, refunded(1, "r1", "11"))
    order = _order(session, shop, 1)
    assert (order.points_earned, order.points_reversed) == (30, 6)
    _assert_ledger_agrees(session, shop, customer)


def test_three_one_third_refunds_reverse_exactly_all_points(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="10.00"))
    balances = []
    for n, amount in enumerate(["3.33", "3.33", "3.34"], start=1):
        apply_event(session, shop.id, refunded(1, f"r{n}", amount))
        _reload(session, customer)
        balances.append(customer.points_balance)
    # Cumulative targets 3.33 -> 3, 6.66 -> 7, 10 -> 10 (rounding each refund alone would leave 1 behind).
    assert balances == [7, 3, 0]
    assert [e.points for e in _entries(session, shop, customer, "reverse")] == [-3, -4, -3]
    assert _order(session, shop, 1).points_reversed == 10
    _assert_ledger_agrees(session, shop, customer)


def test_refunds_beyond_the_order_total_never_reverse_more_than_was_granted(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    apply_event(session, shop.id, paid(2, customer=customer, subtotal="50"))
    apply_event(session, shop.id, refunded(1, "r1", "60"))
    apply_event(session, shop.id, refunded(1, "r2", "60"))
    assert _order(session, shop, 1).points_reversed == 100
    _reload(session, customer)
    assert customer.points_balance == 50
    _assert_ledger_agrees(session, shop, customer)


def test_replayed_refund_with_the_same_refund_id_is_a_noop(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    event = refunded(1, "r1", "40")
    assert apply_event(session, shop.id, event).status == "applied"
    assert apply_event(session, shop.id, event).status == "noop"
    # The same refund id redelivered with a different timestamp is still the same refund.
    redelivered = refunded(1, "r1", "40", at=event.occurred_at + timedelta(hours=1))
    assert apply_event(session, shop.id, redelivered).status == "noop"
    order = _order(session, shop, 1)
    assert order.refunded_amount == Decimal("40")
    assert order.points_reversed == 40
    assert len(_entries(session, shop, customer, "reverse")) == 1
    assert session.query(OrderRefund).filter_by(shop_id=shop.id).count() == 1
    _reload(session, customer)
    assert customer.points_balance == 60
    assert customer.total_spent == Decimal("60")
    _assert_ledger_agrees(session, shop, customer)


# --- cancellations --------------------------------------------------------------------------

def test_cancellation_reverses_all_points_of_the_order(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    apply_event(session, shop.id, paid(2, customer=customer, subtotal="40"))
    assert apply_event(session, shop.id, cancelled(1)).status == "applied"
    order = _order(session, shop, 1)
    assert order.status == "cancelled"
    assert order.points_reversed == 100
    [reversal] = _entries(session, shop, customer, "reverse")
    assert reversal.points == -100 and reversal.details["cancelled"] is True
    _reload(session, customer)
    assert customer.points_balance == 40
    assert customer.orders_count == 1 and customer.total_spent == Decimal("40")
    _assert_ledger_agrees(session, shop, customer)


def test_cancellation_after_a_partial_refund_reverses_only_what_remains(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    apply_event(session, shop.id, refunded(1, "r1", "30"))
    apply_event(session, shop.id, cancelled(1))
    assert [e.points for e in _entries(session, shop, customer, "reverse")] == [-30, -70]
    assert _order(session, shop, 1).points_reversed == 100
    _reload(session, customer)
    assert customer.points_balance == 0
    assert customer.orders_count == 0 and customer.total_spent == Decimal("0")
    # A replayed cancellation, and a refund arriving after it, take nothing more.
    assert apply_event(session, shop.id, cancelled(1)).status == "noop"
    apply_event(session, shop.id, refunded(1, "r2", "70"))
    assert len(_entries(session, shop, customer, "reverse")) == 2
    _reload(session, customer)
    assert customer.points_balance == 0
    _assert_ledger_agrees(session, shop, customer)


def test_cancellation_before_paid_means_a_late_paid_never_earns(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    assert apply_event(session, shop.id, cancelled(9)).status == "applied"
    order = _order(session, shop, 9)
    assert (order.status, order.points_status) == ("cancelled", "void")
    assert apply_event(session, shop.id, paid(9, customer=customer, subtotal="100")).status == "noop"
    order = _order(session, shop, 9)
    assert order.status == "cancelled" and order.points_earned == 0 and order.paid_at is None
    _reload(session, customer)
    assert customer.points_balance == 0 and customer.orders_count == 0
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 0
    _assert_ledger_agrees(session, shop, customer)


def test_cancellation_with_a_snapshot_before_paid_also_blocks_the_late_paid(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, OrderCancelled("9", now, order=snapshot(9, customer=customer, subtotal="100")))
    apply_event(session, shop.id, paid(9, now + timedelta(minutes=1), customer=customer, subtotal="100"))
    _reload(session, customer)
    assert customer.points_balance == 0 and customer.orders_count == 0
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 0


# --- what is reversed: the points granted -----------------------------------------------------

def test_reversal_uses_the_points_awarded_not_todays_earn_rule(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))  # 1 point per unit: 100
    set_rule(session, shop, "order", points_per_unit=Decimal("5"))             # the merchant raises the rate
    apply_event(session, shop.id, refunded(1, "r1", "50"))
    assert [e.points for e in _entries(session, shop, customer, "reverse")] == [-50]
    apply_event(session, shop.id, cancelled(1))
    assert [e.points for e in _entries(session, shop, customer, "reverse")] == [-50, -50]
    _reload(session, customer)
    assert customer.points_balance == 0
    _assert_ledger_agrees(session, shop, customer)


def test_reversal_uses_the_points_awarded_with_the_tier_multiplier(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="600"))  # 600, and Silver (x1.25)
    apply_event(session, shop.id, paid(2, customer=customer, subtotal="100"))  # 125
    assert _order(session, shop, 2).points_earned == 125
    apply_event(session, shop.id, refunded(2, "r1", "50"))                     # 62.5 -> 63
    assert _order(session, shop, 2).points_reversed == 63
    _reload(session, customer)
    assert customer.points_balance == 600 + 125 - 63
    _assert_ledger_agrees(session, shop, customer)


def test_nth_order_bonus_is_part_of_the_order_points_and_reversed_in_proportion(session):
    shop = make_shop(session)
    set_rule(session, shop, "nth_order", every_n=2, points=100)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="10"))
    apply_event(session, shop.id, paid(2, customer=customer, subtotal="100"))  # 100 + 100 bonus
    order = _order(session, shop, 2)
    assert (order.bonus_points, order.points_earned) == (100, 200)
    apply_event(session, shop.id, refunded(2, "r1", "50"))                     # half of 200
    assert [e.points for e in _entries(session, shop, customer, "reverse")] == [-100]
    _reload(session, customer)
    assert customer.points_balance == 10 + 200 - 100
    apply_event(session, shop.id, cancelled(2))                                # the rest, bonus included
    _reload(session, customer)
    assert customer.points_balance == 10
    _assert_ledger_agrees(session, shop, customer)


# --- arrival order ----------------------------------------------------------------------------

def test_refund_before_its_order_is_parked_and_applied_when_the_order_arrives(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    outcome = apply_event(session, shop.id, refunded(5, "r1", "40"))
    assert outcome.status == "parked"
    assert session.query(Order).filter_by(shop_id=shop.id).count() == 0
    refund = session.query(OrderRefund).filter_by(shop_id=shop.id, platform_refund_id="r1").one()
    assert refund.applied_at is None

    apply_event(session, shop.id, paid(5, customer=customer, subtotal="100"))
    order = _order(session, shop, 5)
    assert order.refunded_amount == Decimal("40")
    assert (order.points_earned, order.points_reversed) == (100, 40)
    assert [e.points for e in _entries(session, shop, customer, "earn")] == [100]
    assert [e.points for e in _entries(session, shop, customer, "reverse")] == [-40]
    _reload(session, refund)
    assert refund.applied_at is not None
    _reload(session, customer)
    assert customer.points_balance == 60
    assert customer.total_spent == Decimal("60")
    # The refund redelivered now is still the same refund.
    assert apply_event(session, shop.id, refunded(5, "r1", "40")).status == "noop"
    _reload(session, customer)
    assert customer.points_balance == 60
    _assert_ledger_agrees(session, shop, customer)


def test_refund_before_fulfilment_is_applied_when_points_are_granted_on_fulfilment(session, now):
    shop = make_shop(session, award_on="fulfilled")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, customer=customer, subtotal="100"))
    apply_event(session, shop.id, refunded(1, "r1", "25"))
    assert _entries(session, shop, customer, "reverse") == []
    apply_event(session, shop.id, OrderFulfilled(snapshot(1, customer=customer, subtotal="100"), now))
    _reload(session, customer)
    assert customer.points_balance == 75
    _assert_ledger_agrees(session, shop, customer)


# --- pending (return window) -----------------------------------------------------------------

def test_refund_during_pending_period_reduces_pending_and_release_gives_only_the_rest(session, now):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="100"))
    apply_event(session, shop.id, refunded(1, "r1", "25", at=now + timedelta(days=1)))
    [reversal] = _entries(session, shop, customer, "reverse")
    assert (reversal.points, reversal.pending_delta) == (0, -25)
    _reload(session, customer)
    assert (customer.points_balance, customer.pending_points) == (0, 75)

    release_pending_points(session, shop.id, now + timedelta(days=14))
    [release] = _entries(session, shop, customer, "release")
    assert (release.points, release.pending_delta) == (75, -75)
    _reload(session, customer)
    assert (customer.points_balance, customer.pending_points) == (75, 0)
    # A refund after the release takes from the balance, still in proportion to the whole.
    apply_event(session, shop.id, refunded(1, "r2", "25", at=now + timedelta(days=20)))
    _reload(session, customer)
    assert (customer.points_balance, customer.pending_points) == (50, 0)
    _assert_ledger_agrees(session, shop, customer)


def test_cancellation_during_pending_period_leaves_nothing_to_release(session, now):
    shop = make_shop(session, pending_days=14)
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="100"))
    apply_event(session, shop.id, cancelled(1, at=now + timedelta(days=2)))
    _reload(session, customer)
    assert (customer.points_balance, customer.pending_points) == (0, 0)
    release_pending_points(session, shop.id, now + timedelta(days=15))
    assert _entries(session, shop, customer, "release") == []
    assert _order(session, shop, 1).points_status == "void"  # cancelled before anything was granted
    _reload(session, customer)
    assert (customer.points_balance, customer.pending_points) == (0, 0)
    _assert_ledger_agrees(session, shop, customer)


# --- negative balances ----------------------------------------------------------------------

def test_allow_lets_a_reversal_of_spent_points_leave_a_debt(session, now):
    shop = make_shop(session, negative_balance="allow")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="300"))
    _spend_everything(session, shop, customer, now)
    apply_event(session, shop.id, cancelled(1, at=now + timedelta(days=1)))
    [reversal] = _entries(session, shop, customer, "reverse")
    assert (reversal.points, reversal.uncollected) == (-300, 0)
    _reload(session, customer)
    assert customer.points_balance == -300
    # Later earnings repay the debt.
    apply_event(session, shop.id, paid(2, now + timedelta(days=2), customer=customer, subtotal="100"))
    _reload(session, customer)
    assert customer.points_balance == -200
    _assert_ledger_agrees(session, shop, customer)


def test_allow_debt_after_adjusting_the_balance_to_exactly_zero(session, now):
    shop = make_shop(session, negative_balance="allow")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="100"))
    adjust_points(session, shop.id, customer.id, -100, reason="points used in store", actor="staff:test", now=now)
    apply_event(session, shop.id, refunded(1, "r1", "50"))
    _reload(session, customer)
    assert customer.points_balance == -50
    _assert_ledger_agrees(session, shop, customer)


def test_clamp_stops_the_balance_at_zero_and_records_the_uncollected_points(session, now):
    shop = make_shop(session, negative_balance="clamp")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="300"))
    _spend_everything(session, shop, customer, now)
    apply_event(session, shop.id, cancelled(1, at=now + timedelta(days=1)))
    [reversal] = _entries(session, shop, customer, "reverse")
    assert (reversal.points, reversal.uncollected) == (0, 300)
    assert _order(session, shop, 1).points_reversed == 300
    _reload(session, customer)
    assert customer.points_balance == 0
    # Nothing is collected later either: the next order earns in full.
    apply_event(session, shop.id, paid(2, now + timedelta(days=2), customer=customer, subtotal="100"))
    _reload(session, customer)
    assert customer.points_balance == 100
    _assert_ledger_agrees(session, shop, customer)


def test_clamp_takes_what_is_there_and_records_the_rest_as_uncollected(session, now):
    shop = make_shop(session, negative_balance="clamp")
    customer = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=customer, subtotal="100"))
    adjust_points(session, shop.id, customer.id, -60, reason="points used in store", actor="staff:test", now=now)
    apply_event(session, shop.id, refunded(1, "r1", "80"))  # 80 due, 40 there
    [reversal] = _entries(session, shop, customer, "reverse")
    assert (reversal.points, reversal.uncollected) == (-40, 40)
    _reload(session, customer)
    assert customer.points_balance == 0
    _assert_ledger_agrees(session, shop, customer)


def test_cancelling_an_unclaimed_guest_order_leaves_a_same_email_account_untouched(session):
    shop = make_shop(session, guest_claim_days=14)
    t0 = paid("g1", subtotal="80", email="guest@example.com").occurred_at
    apply_event(session, shop.id, paid("g1", t0, subtotal="80", email="guest@example.com"))
    # The account appears after the claim window: the guest order stays unclaimed.
    account = make_customer(session, shop, email="guest@example.com")
    apply_event(session, shop.id, OrderCancelled("g1", t0 + timedelta(days=30),
                                                 snapshot("g1", subtotal="80", email="guest@example.com")))
    session.flush()
    session.refresh(account)
    assert (account.orders_count, account.total_spent, account.points_balance) == (0, 0, 0)
    assert session.query(Order).filter_by(shop_id=shop.id, platform_order_id="g1").one().status == "cancelled"
