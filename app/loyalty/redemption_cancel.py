"""Cancelling a redemption: the code leaves the platform first, then the points come back.

`request_cancellation` (staff, in the request's transaction) marks the redemption `cancelling`
and returns a RevokeDiscount intent. The job deletes the code on the platform, then calls one of:
- `complete_cancellation`: the compensating `redeem_reversal` entry, under the same key a failed
  issue uses (`redemption:{id}:reversal`), so the points can only ever come back once;
- `refuse_cancellation`: the code was already used in an order; the points stay spent;
- `fail_cancellation`: the platform would not delete it (after retries); no points come back,
  since the code may still work, and staff can ask again.
Every step leaves an audit row. A redemption still pending is cancelled the same way: the issue
job no longer creates a code for it, and the revoke job deletes one an in-flight attempt made.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.loyalty import audit
from app.loyalty.errors import Invalid, LoyaltyError
from app.loyalty.intents import RevokeDiscount
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.redemptions import lock_redemption
from app.models import Redemption


@dataclass
class CancelRequest:
    redemption: Redemption
    intents: list  # empty when a cancellation was already under way (the same request twice)


def request_cancellation(session: Session, shop_id: int, redemption_id: int, actor: str, reason: str,
                         now: datetime) -> CancelRequest:
    # PostgreSQL stores no NUL in text or JSON: a form-typed reason must not become a 500.
    reason = (reason or "").replace("\x00", "").strip()
    if not reason:
        raise Invalid("a reason is required", code="reason_required")
    redemption = lock_redemption(session, shop_id, redemption_id)
    if redemption.status == "cancelling":
        return CancelRequest(redemption, [])
    if redemption.status in ("cancelled", "failed"):
        raise LoyaltyError(f"this redemption is already {redemption.status}", code="redemption_closed")
    previous = redemption.status
    redemption.status = "cancelling"
    redemption.cancel_state = "cancelling"
    redemption.cancel_reason = reason[:500]
    redemption.cancel_actor = actor
    redemption.cancel_requested_at = now
    redemption.cancel_detail = None
    audit.record(session, shop_id, actor, "redemption.cancel_requested", target_type="redemption",
                 target_id=redemption.id, customer_id=redemption.customer_id,
                 details={"reason": redemption.cancel_reason, "points": redemption.points_cost, "was": previous})
    return CancelRequest(redemption, [RevokeDiscount(shop_id, redemption.id)])


def complete_cancellation(session: Session, shop_id: int, redemption_id: int, code_deleted: bool,
                          now: datetime) -> bool:
    """The code is gone from the platform: give the points back. False if not cancelling (a replay)."""
    redemption = lock_redemption(session, shop_id, redemption_id)
    if redemption.status != "cancelling":
        return False
    customer = lock_customer(session, shop_id, redemption.customer_id)
    post_entry(session, customer, kind="redeem_reversal", key=f"redemption:{redemption.id}:reversal", now=now,
               points=redemption.points_cost, source="reward", redemption_id=redemption.id,
               reason=redemption.cancel_reason, actor=redemption.cancel_actor)
    redemption.status = "cancelled"
    redemption.cancel_state = "cancelled"
    redemption.failure_reason = redemption.cancel_reason
    audit.record(session, shop_id, redemption.cancel_actor or "system", "redemption.cancel", target_type="redemption",
                 target_id=redemption.id, customer_id=redemption.customer_id,
                 details={"reason": redemption.cancel_reason, "points": redemption.points_cost,
                          "code_deleted": code_deleted})
    return True


def refuse_cancellation(session: Session, shop_id: int, redemption_id: int, detail: str, now: datetime) -> bool:
    """The code was used in an order: it stays issued and its points stay spent."""
    return _end_unrefunded(session, shop_id, redemption_id, "refused", detail,
                           "redemption.cancel_refused")


def fail_cancellation(session: Session, shop_id: int, redemption_id: int, detail: str, now: datetime) -> bool:
    """The platform did not delete the code: it may still work, so no points come back."""
    return _end_unrefunded(session, shop_id, redemption_id, "failed",
                           f"{detail}; the code may still work and the points were not given back",
                           "redemption.cancel_failed")


def _end_unrefunded(session: Session, shop_id: int, redemption_id: int, state: str, detail: str,
                    action: str) -> bool:
    redemption = lock_redemption(session, shop_id, redemption_id)
    if redemption.status != "cancelling":
        return False
    # Back to where it was: issued if the code exists (or may), else pending for the issue job
    # (the redemption sweeper re-dispatches it) — the shopper keeps what they paid for.
    code_exists = redemption.issued_at is not None or redemption.platform_discount_id is not None
    redemption.status = "issued" if code_exists or state == "refused" else "pending"
    redemption.cancel_state = state
    redemption.cancel_detail = detail[:1000]
    audit.record(session, shop_id, "system", action, target_type="redemption", target_id=redemption.id,
                 customer_id=redemption.customer_id,
                 details={"detail": redemption.cancel_detail, "requested_by": redemption.cancel_actor})
    return True

