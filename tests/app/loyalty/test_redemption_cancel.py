"""Cancelling a redemption, the domain half: asked for once (idempotent), points back only when the
job says the code is gone, and never when it was used or could not be deleted."""
from __future__ import annotations

import pytest

from app.loyalty.adjustments import adjust_points
from app.loyalty.errors import Invalid, LoyaltyError
from app.loyalty.intents import RevokeDiscount
from app.loyalty.ledger import find_balance_drift
from app.loyalty.redemption_cancel import (complete_cancellation, fail_cancellation, refuse_cancellation,
                                           request_cancellation)
from app.loyalty.redemptions import fail_redemption, mark_issued, redeem_reward
from app.models import AuditLog, LedgerEntry, Reward
from tests.factories import make_customer, make_shop

ACTOR = "staff:ann@shop.example"


def _redeemed(session, now, *, issued=True):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 1000, reason="opening balance", actor="test", now=now)
    reward = session.query(Reward).filter_by(shop_id=shop.id, points_cost=500).one()
    redemption = redeem_reward(session, shop.id, customer.id, reward.id, "key-1", now).redemption
    if issued:
        mark_issued(session, shop.id, redemption.id, "disc-1", now)
    session.flush()
    return shop, customer, redemption


def _reversals(session, shop) -> int:
    return session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="redeem_reversal").count()


def _actions(session, shop) -> list[str]:
    return [a.action for a in session.query(AuditLog).filter_by(shop_id=shop.id).order_by(AuditLog.id)
            if a.action.startswith("redemption.")]


def _balance(session, customer) -> int:
    session.flush()
    session.refresh(customer)
    return customer.points_balance


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_reason_is_required(session, now, reason):
    shop, customer, redemption = _redeemed(session, now)
    with pytest.raises(Invalid) as refused:
        request_cancellation(session, shop.id, redemption.id, ACTOR, reason, now)
    assert refused.value.code == "reason_required"
    assert redemption.status == "issued" and _actions(session, shop) == []


def test_asking_marks_it_cancelling_and_asks_for_the_code_to_go_but_gives_nothing_back_yet(session, now):
    shop, customer, redemption = _redeemed(session, now)
    asked = request_cancellation(session, shop.id, redemption.id, ACTOR, "wrong reward", now)
    assert asked.intents == [RevokeDiscount(shop.id, redemption.id)]
    assert (redemption.status, redemption.cancel_state, redemption.cancel_actor) == ("cancelling", "cancelling", ACTOR)
    assert _balance(session, customer) == 500 and _reversals(session, shop) == 0
    # Asking again while it is under way: the same redemption, no second job, no second audit row.
    again = request_cancellation(session, shop.id, redemption.id, ACTOR, "again", now)
    assert again.intents == [] and redemption.cancel_reason == "wrong reward"
    assert _actions(session, shop) == ["redemption.cancel_requested"]


def test_completing_gives_the_points_back_once_with_the_staff_member_on_the_entry(session, now):
    shop, customer, redemption = _redeemed(session, now)
    request_cancellation(session, shop.id, redemption.id, ACTOR, "wrong reward", now)
    assert complete_cancellation(session, shop.id, redemption.id, True, now) is True
    assert complete_cancellation(session, shop.id, redemption.id, True, now) is False  # a replayed job
    [reversal] = session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="redeem_reversal").all()
    assert (reversal.points, reversal.actor, reversal.reason) == (500, ACTOR, "wrong reward")
    assert (redemption.status, redemption.cancel_state) == ("cancelled", "cancelled")
    assert _balance(session, customer) == 1000 and find_balance_drift(session, shop.id) == []
    assert _actions(session, shop) == ["redemption.cancel_requested", "redemption.cancel"]
    with pytest.raises(LoyaltyError) as closed:
        request_cancellation(session, shop.id, redemption.id, ACTOR, "again", now)
    assert closed.value.code == "redemption_closed" and closed.value.status == 409


def test_a_used_code_is_refused_and_stays_issued_with_its_points_spent(session, now):
    shop, customer, redemption = _redeemed(session, now)
    request_cancellation(session, shop.id, redemption.id, ACTOR, "wrong reward", now)
    assert refuse_cancellation(session, shop.id, redemption.id, "the code was already used", now) is True
    assert (redemption.status, redemption.cancel_state) == ("issued", "refused")
    assert redemption.cancel_detail == "the code was already used"
    assert complete_cancellation(session, shop.id, redemption.id, True, now) is False  # a late duplicate
    assert _balance(session, customer) == 500 and _reversals(session, shop) == 0
    assert _actions(session, shop) == ["redemption.cancel_requested", "redemption.cancel_refused"]


@pytest.mark.parametrize("issued, back_to", [(True, "issued"), (False, "pending")])
def test_a_failed_cancellation_gives_nothing_back_and_the_redemption_carries_on(session, now, issued, back_to):
    shop, customer, redemption = _redeemed(session, now, issued=issued)
    request_cancellation(session, shop.id, redemption.id, ACTOR, "wrong reward", now)
    assert fail_cancellation(session, shop.id, redemption.id, "Shopify answered 503", now) is True
    assert (redemption.status, redemption.cancel_state) == (back_to, "failed")
    assert "may still work" in redemption.cancel_detail and "not given back" in redemption.cancel_detail
    assert _balance(session, customer) == 500 and _reversals(session, shop) == 0
    # Staff may ask again; this time it goes through.
    assert request_cancellation(session, shop.id, redemption.id, ACTOR, "retry", now).intents
    assert complete_cancellation(session, shop.id, redemption.id, False, now) is True
    assert _balance(session, customer) == 1000 and _reversals(session, shop) == 1


def test_an_issue_attempt_that_creates_the_code_after_the_request_records_it_and_emails_nobody(session, now):
    shop, customer, redemption = _redeemed(session, now, issued=False)
    request_cancellation(session, shop.id, redemption.id, ACTOR, "wrong reward", now)
    assert mark_issued(session, shop.id, redemption.id, "gid://late", now) == []
    assert (redemption.status, redemption.platform_discount_id) == ("cancelling", "gid://late")
    # If the platform then refuses to delete it, it is an issued code again (not pending).
    fail_cancellation(session, shop.id, redemption.id, "timeout", now)
    assert redemption.status == "issued"


def test_an_issue_attempt_that_fails_for_good_meanwhile_ends_the_cancellation_with_one_refund(session, now):
    shop, customer, redemption = _redeemed(session, now, issued=False)
    request_cancellation(session, shop.id, redemption.id, ACTOR, "wrong reward", now)
    assert fail_redemption(session, shop.id, redemption.id, "platform said no", now) is True
    assert (redemption.status, redemption.cancel_state) == ("failed", "cancelled")
    assert complete_cancellation(session, shop.id, redemption.id, False, now) is False
    assert _balance(session, customer) == 1000 and _reversals(session, shop) == 1
