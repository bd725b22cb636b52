"""Spending points: an atomic, idempotent debit; failed codes give the points back once (cancelling: test_redemption_cancel)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from app.loyalty.adjustments import adjust_points
from app.loyalty.errors import InsufficientPoints, Invalid, NotFound, RewardCostChanged
from app.loyalty.intents import IssueDiscount, NotifyCustomer
from app.loyalty.ledger import find_balance_drift, ledger_sums
from app.loyalty.redemption_cancel import request_cancellation
from app.loyalty.redemptions import fail_redemption, mark_issued, redeem_reward
from app.models import LedgerEntry, Redemption, Reward
from tests.factories import make_customer, make_shop


def _reload(session, row) -> None:
    session.flush()
    session.refresh(row)


def _reward(session, shop, points_cost: int) -> Reward:
    return session.query(Reward).filter_by(shop_id=shop.id, points_cost=points_cost).one()


def _customer_with(session, shop, points: int, now):
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, points, reason="opening balance", actor="test", now=now)
    return customer


def _entries(session, shop, kind: str) -> list[LedgerEntry]:
    return session.query(LedgerEntry).filter_by(shop_id=shop.id, kind=kind).order_by(LedgerEntry.id).all()


def _assert_ledger_agrees(session, shop, customer) -> None:
    _reload(session, customer)
    assert find_balance_drift(session, shop.id) == []
    assert ledger_sums(session, shop.id, customer.id) == (customer.points_balance, customer.pending_points)


# --- redeeming ------------------------------------------------------------------------------

def test_redeem_debits_the_cost_and_asks_for_a_discount_code(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    reward = _reward(session, shop, 500)  # "5 off your order", codes valid 90 days
    result = redeem_reward(session, shop.id, customer.id, reward.id, "key-1", now)
    redemption = result.redemption
    assert result.created is True
    assert result.intents == [IssueDiscount(shop.id, redemption.id)]
    assert redemption.status == "pending"
    assert redemption.points_cost == 500
    assert redemption.reward_id == reward.id and redemption.customer_id == customer.id
    assert redemption.code.startswith("LOJAL-") and len(redemption.code) == len("LOJAL-") + 10
    assert redemption.expires_at == now + timedelta(days=90)
    assert redemption.discount["kind"] == "fixed_amount"
    assert Decimal(redemption.discount["value"]) == Decimal("5")
    assert redemption.discount["currency"] == "USD"
    [debit] = _entries(session, shop, "redeem")
    assert (debit.points, debit.redemption_id, debit.customer_id) == (-500, redemption.id, customer.id)
    _reload(session, customer)
    assert customer.points_balance == 500
    assert customer.last_activity_at == now  # a redemption is activity (the expiry clock)
    _assert_ledger_agrees(session, shop, customer)


def test_the_same_idempotency_key_returns_the_same_redemption_and_debits_once(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    reward = _reward(session, shop, 300)
    first = redeem_reward(session, shop.id, customer.id, reward.id, "key-1", now)
    again = redeem_reward(session, shop.id, customer.id, reward.id, "key-1", now + timedelta(seconds=5))
    assert again.created is False
    assert again.intents == []
    assert again.redemption.id == first.redemption.id
    assert session.query(Redemption).filter_by(shop_id=shop.id).count() == 1
    assert len(_entries(session, shop, "redeem")) == 1
    _reload(session, customer)
    assert customer.points_balance == 700
    # Another key is another redemption.
    other = redeem_reward(session, shop.id, customer.id, reward.id, "key-2", now)
    assert other.created is True and other.redemption.id != first.redemption.id
    _reload(session, customer)
    assert customer.points_balance == 400
    _assert_ledger_agrees(session, shop, customer)


def test_the_same_idempotency_key_for_another_reward_is_invalid(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 2000, now)
    redeem_reward(session, shop.id, customer.id, _reward(session, shop, 300).id, "key-1", now)
    with pytest.raises(Invalid) as refused:
        redeem_reward(session, shop.id, customer.id, _reward(session, shop, 500).id, "key-1", now)
    assert refused.value.code == "idempotency_key_reused"
    assert session.query(Redemption).filter_by(shop_id=shop.id).count() == 1
    _reload(session, customer)
    assert customer.points_balance == 1700


def test_the_same_key_returns_the_redemption_after_its_reward_was_deleted(session, now):
    # A retried click (the answer was lost) after the merchant deleted the reward: the points
    # were spent, so the shopper must get their redemption back, not a "key reused" refusal.
    from app.loyalty.catalog import delete_item

    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    reward = _reward(session, shop, 300)
    reward_id = reward.id
    first = redeem_reward(session, shop.id, customer.id, reward_id, "key-1", now).redemption
    delete_item(session, shop.id, Reward, reward_id, actor="staff:1:ann")
    session.expire_all()
    again = redeem_reward(session, shop.id, customer.id, reward_id, "key-1", now + timedelta(seconds=5))
    assert (again.created, again.redemption.id, again.intents) == (False, first.id, [])
    assert len(_entries(session, shop, "redeem")) == 1
    _reload(session, customer)
    assert customer.points_balance == 700


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_an_idempotency_key_of_1_to_200_characters_is_required(session, now, key):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    with pytest.raises(Invalid) as refused:
        redeem_reward(session, shop.id, customer.id, _reward(session, shop, 300).id, key, now)
    assert refused.value.code == "idempotency_key_required"
    assert session.query(Redemption).filter_by(shop_id=shop.id).count() == 0


def test_insufficient_points_are_refused_and_nothing_is_written(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 499, now)
    with pytest.raises(InsufficientPoints) as refused:
        redeem_reward(session, shop.id, customer.id, _reward(session, shop, 500).id, "key-1", now)
    assert refused.value.status == 409
    session.flush()
    assert session.query(Redemption).filter_by(shop_id=shop.id).count() == 0
    assert _entries(session, shop, "redeem") == []
    _reload(session, customer)
    assert customer.points_balance == 499


def test_exactly_enough_points_can_be_spent(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 500, now)
    redeem_reward(session, shop.id, customer.id, _reward(session, shop, 500).id, "key-1", now)
    _reload(session, customer)
    assert customer.points_balance == 0


def test_an_inactive_reward_cannot_be_redeemed(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    reward = _reward(session, shop, 500)
    reward.active = False
    session.flush()
    with pytest.raises(Invalid) as refused:
        redeem_reward(session, shop.id, customer.id, reward.id, "key-1", now)
    assert refused.value.code == "reward_unavailable"
    assert session.query(Redemption).filter_by(shop_id=shop.id).count() == 0
    assert _entries(session, shop, "redeem") == []


def test_an_unknown_reward_cannot_be_redeemed(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    with pytest.raises(Invalid) as refused:
        redeem_reward(session, shop.id, customer.id, 2**40, "key-1", now)
    assert refused.value.code == "reward_unavailable"
    assert session.query(Redemption).filter_by(shop_id=shop.id).count() == 0


def test_another_shops_reward_cannot_be_redeemed(session, now):
    shop = make_shop(session)
    other_shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    with pytest.raises(Invalid) as refused:
        redeem_reward(session, shop.id, customer.id, _reward(session, other_shop, 500).id, "key-1", now)
    assert refused.value.code == "reward_unavailable"
    assert session.query(Redemption).filter(Redemption.shop_id.in_([shop.id, other_shop.id])).count() == 0
    _reload(session, customer)
    assert customer.points_balance == 1000


def test_a_cost_other_than_the_one_shown_is_refused_with_the_current_cost_and_nothing_is_written(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 2000, now)
    reward = _reward(session, shop, 500)
    reward.points_cost = 600  # the merchant repriced it after the shopper saw 500
    session.flush()
    for shown in (500, 700):  # raised or lowered: either way not the price the shopper agreed to
        with pytest.raises(RewardCostChanged) as refused:
            redeem_reward(session, shop.id, customer.id, reward.id, f"key-{shown}", now, points_cost=shown)
        assert (refused.value.status, refused.value.code) == (409, "reward_cost_changed")
        assert refused.value.extra == {"points_cost": 600}
    session.flush()
    assert session.query(Redemption).filter_by(shop_id=shop.id).count() == 0
    assert _entries(session, shop, "redeem") == []
    _reload(session, customer)
    assert customer.points_balance == 2000
    # The price shown is the price paid; without one, the current cost (headless callers).
    shown = redeem_reward(session, shop.id, customer.id, reward.id, "key-600", now, points_cost=600)
    assert shown.redemption.points_cost == 600
    unchecked = redeem_reward(session, shop.id, customer.id, reward.id, "key-none", now)
    assert unchecked.redemption.points_cost == 600
    _assert_ledger_agrees(session, shop, customer)
    assert customer.points_balance == 800


def test_a_replayed_key_returns_its_redemption_whatever_cost_it_names(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    reward = _reward(session, shop, 500)
    first = redeem_reward(session, shop.id, customer.id, reward.id, "key-1", now, points_cost=500)
    reward.points_cost = 600
    session.flush()
    again = redeem_reward(session, shop.id, customer.id, reward.id, "key-1", now, points_cost=500)
    assert (again.created, again.redemption.id, again.redemption.points_cost) == (False, first.redemption.id, 500)
    assert len(_entries(session, shop, "redeem")) == 1


# --- giving points back ---------------------------------------------------------------------

def test_a_failed_redemption_gives_the_points_back_exactly_once(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    redemption = redeem_reward(session, shop.id, customer.id, _reward(session, shop, 500).id, "key-1", now).redemption
    assert fail_redemption(session, shop.id, redemption.id, "platform said no", now) is True
    assert fail_redemption(session, shop.id, redemption.id, "platform said no", now) is False
    [reversal] = _entries(session, shop, "redeem_reversal")
    assert (reversal.points, reversal.redemption_id, reversal.actor) == (500, redemption.id, "system")
    assert reversal.reason == "platform said no"
    _reload(session, redemption)
    assert redemption.status == "failed"
    assert redemption.failure_reason == "platform said no"
    _reload(session, customer)
    assert customer.points_balance == 1000
    _assert_ledger_agrees(session, shop, customer)


# --- issuing --------------------------------------------------------------------------------

def test_mark_issued_sets_the_status_and_asks_to_notify_the_customer(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    redemption = redeem_reward(session, shop.id, customer.id, _reward(session, shop, 500).id, "key-1", now).redemption
    issued_at = now + timedelta(seconds=3)
    intents = mark_issued(session, shop.id, redemption.id, "gid://discount/42", issued_at)
    assert intents == [NotifyCustomer(shop.id, customer.id, "reward_issued", key=f"redemption:{redemption.id}")]
    _reload(session, redemption)
    assert (redemption.status, redemption.platform_discount_id, redemption.issued_at) == (
        "issued", "gid://discount/42", issued_at)
    # Marking it again (a retried job) notifies nobody twice.
    assert mark_issued(session, shop.id, redemption.id, "gid://discount/42", issued_at) == []


def test_mark_issued_after_a_failure_does_not_revive_the_redemption(session, now):
    shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    redemption = redeem_reward(session, shop.id, customer.id, _reward(session, shop, 500).id, "key-1", now).redemption
    fail_redemption(session, shop.id, redemption.id, "gave up", now)
    assert mark_issued(session, shop.id, redemption.id, "late", now) == []
    _reload(session, redemption)
    assert redemption.status == "failed"


def test_another_shops_redemption_is_not_found(session, now):
    shop = make_shop(session)
    other_shop = make_shop(session)
    customer = _customer_with(session, shop, 1000, now)
    redemption = redeem_reward(session, shop.id, customer.id, _reward(session, shop, 500).id, "key-1", now).redemption
    with pytest.raises(NotFound):
        mark_issued(session, other_shop.id, redemption.id, "x", now)
    with pytest.raises(NotFound):
        fail_redemption(session, other_shop.id, redemption.id, "x", now)
    with pytest.raises(NotFound):
        request_cancellation(session, other_shop.id, redemption.id, "staff:x", "x", now)
    _reload(session, customer)
    assert customer.points_balance == 500
