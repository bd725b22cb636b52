"""Spending points on rewards: an atomic, idempotent debit and a discount-code intent.

The customer row is locked while the balance is checked and debited, so concurrent
redemptions serialise and never overdraw. The code is created on the platform after
commit (IssueDiscount); if that fails for good, a compensating entry gives the points back. Cancelling one is app.loyalty.redemption_cancel.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.loyalty import audit
from app.loyalty.errors import InsufficientPoints, Invalid, NotFound, RewardCostChanged
from app.loyalty.identity import random_code
from app.loyalty.intents import IssueDiscount, NotifyCustomer
from app.loyalty.ledger import lock_customer, post_entry
from app.models import Redemption, Reward, Shop, for_shop, get_for_shop


@dataclass
class RedeemResult:
    redemption: Redemption
    created: bool       # False: the idempotency key was seen before; same redemption returned
    intents: list


def redeem_reward(session: Session, shop_id: int, customer_id: int, reward_id: int, idempotency_key: str,
                  now: datetime, *, points_cost: int | None = None) -> RedeemResult:
    """`points_cost`: the cost the shopper was shown; if the reward costs anything else now, it is
    refused (RewardCostChanged) rather than debited. None: the current cost (headless callers).
    A replayed key returns its redemption whatever cost it names."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise Invalid("an idempotency key of 1 to 200 characters is required", code="idempotency_key_required")
    customer = lock_customer(session, shop_id, customer_id)
    existing = session.scalars(
        for_shop(Redemption, shop_id).where(Redemption.customer_id == customer_id,
                                            Redemption.idempotency_key == idempotency_key)
    ).first()
    if existing is not None:
        # reward_id is NULL once the reward is deleted: a retry then gets its redemption back.
        if existing.reward_id is not None and existing.reward_id != reward_id:
            raise Invalid("this idempotency key was used for another reward", code="idempotency_key_reused")
        return RedeemResult(existing, False, [])
    reward = get_for_shop(session, Reward, shop_id, reward_id)
    if reward is None or not reward.active:
        raise Invalid("no such reward, or it is not available", code="reward_unavailable")
    if points_cost is not None and points_cost != reward.points_cost:
        # Before the balance check: the shopper's next step is to see the new price, whatever their balance.
        raise RewardCostChanged(
            f"the reward's cost changed: it costs {reward.points_cost} points now, not {points_cost}",
            reward.points_cost)
    if customer.points_balance < reward.points_cost:
        raise InsufficientPoints(
            f"insufficient points: the reward costs {reward.points_cost}, the balance is {customer.points_balance}")
    shop = session.get(Shop, shop_id)
    redemption = Redemption(
        shop_id=shop_id, customer_id=customer_id, reward_id=reward.id, idempotency_key=idempotency_key,
        points_cost=reward.points_cost, status="pending", code=f"LOJAL-{random_code(10)}",
        discount=_discount_terms(reward, shop.currency),
        expires_at=now + timedelta(days=reward.code_expiry_days) if reward.code_expiry_days else None,
    )
    session.add(redemption)
    session.flush()
    post_entry(session, customer, kind="redeem", key=f"redemption:{redemption.id}:debit", now=now,
               points=-reward.points_cost, source="reward", redemption_id=redemption.id,
               details={"reward_id": reward.id, "reward_name": reward.name})
    return RedeemResult(redemption, True, [IssueDiscount(shop_id, redemption.id)])


def redemption_for_customer(session: Session, shop_id: int, customer_id: int, redemption_id: int) -> Redemption | None:
    """One of this customer's own redemptions; None for anyone else's (the caller answers 404)."""
    return session.scalars(
        for_shop(Redemption, shop_id).where(Redemption.id == redemption_id, Redemption.customer_id == customer_id)
    ).first()


def code_email_key(redemption_id: int) -> str:
    """The reward_issued email's send key for the issued code (a staff resend has its own:
    redemption_admin). app.loyalty.owed_emails rebuilds it from the issued redemption."""
    return f"redemption:{redemption_id}"


def mark_issued(session: Session, shop_id: int, redemption_id: int, platform_discount_id: str | None,
                now: datetime) -> list:
    redemption = lock_redemption(session, shop_id, redemption_id)
    if redemption.status == "cancelling" and redemption.platform_discount_id is None:
        # Created by an attempt already under way when staff cancelled: keep its id, so that a
        # failed cancellation knows the code exists. The revoke job deletes it (it waits for this
        # attempt to end) and no email goes out for it.
        redemption.platform_discount_id = platform_discount_id
        redemption.issued_at = now
        return []
    if redemption.status != "pending":
        return []
    redemption.status = "issued"
    redemption.platform_discount_id = platform_discount_id
    redemption.issued_at = now
    return [NotifyCustomer(shop_id, redemption.customer_id, "reward_issued", key=code_email_key(redemption.id))]


def fail_redemption(session: Session, shop_id: int, redemption_id: int, reason: str, now: datetime) -> bool:
    """The platform could not create the code, for good: give the points back.

    Staff cancelling meanwhile (`cancelling`) changes nothing here: there is no code, so the
    cancellation is done too (the same reversal key, so the points come back once).
    """
    redemption = lock_redemption(session, shop_id, redemption_id)
    if redemption.status not in ("pending", "cancelling"):
        return False
    cancelled = redemption.cancel_state == "cancelling"
    if cancelled:
        redemption.cancel_state = "cancelled"
    if not _give_back(session, shop_id, redemption_id, "failed", reason, now, actor="system"):
        return False
    if cancelled:
        # The staff cancellation ends here, not in the revoke job: audited as that one would be.
        audit.record(session, shop_id, redemption.cancel_actor or "system", "redemption.cancel",
                     target_type="redemption", target_id=redemption.id, customer_id=redemption.customer_id,
                     details={"reason": redemption.cancel_reason, "points": redemption.points_cost,
                              "issue_failed": reason})
    return True


def _give_back(session: Session, shop_id: int, redemption_id: int, status: str, reason: str, now: datetime,
               actor: str) -> bool:
    redemption = lock_redemption(session, shop_id, redemption_id)
    if redemption.status in ("failed", "cancelled"):
        return False
    customer = lock_customer(session, shop_id, redemption.customer_id)
    post_entry(session, customer, kind="redeem_reversal", key=f"redemption:{redemption.id}:reversal", now=now,
               points=redemption.points_cost, source="reward", redemption_id=redemption.id, reason=reason,
               actor=actor)
    redemption.status = status
    redemption.failure_reason = reason
    return True


def lock_redemption(session: Session, shop_id: int, redemption_id: int) -> Redemption:
    """The shop's redemption, row-locked for this transaction; NotFound if it has none by that id."""
    # populate_existing: a job that read the row before its platform call holds the old status in
    # its identity map; the locked read must replace it (staff may have cancelled meanwhile).
    stmt = for_shop(Redemption, shop_id).where(Redemption.id == redemption_id).with_for_update()
    redemption = session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()
    if redemption is None:
        raise NotFound("no such redemption", code="redemption_not_found")
    return redemption


def _discount_terms(reward: Reward, currency: str) -> dict:
    return {
        "kind": reward.kind,
        "value": None if reward.value is None else str(reward.value),
        "currency": currency,
        "minimum_order": None if reward.minimum_order is None else str(reward.minimum_order),
        "product_ref": reward.product_ref,
        "title": reward.name,
    }
