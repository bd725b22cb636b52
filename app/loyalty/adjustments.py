"""Staff adjustments: a reason is required, the actor is recorded, the audit log has a row."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.loyalty import audit
from app.loyalty.errors import InsufficientPoints, Invalid
from app.loyalty.ledger import entry_exists, lock_customer, post_entry
from app.models import LedgerEntry

MAX_ADJUSTMENT = 1_000_000
MAX_BALANCE = 2**31 - 1  # customers.points_balance is a 32-bit integer


def is_replay(session: Session, shop_id: int, idempotency_key: str | None) -> bool:
    """Whether an adjustment with this key was already made (its retry changes nothing)."""
    return idempotency_key is not None and entry_exists(session, shop_id, f"adjust:{idempotency_key}")


def adjust_points(session: Session, shop_id: int, customer_id: int, points: int, *, reason: str, actor: str,
                  note: str | None = None, now: datetime, idempotency_key: str | None = None) -> int | None:
    """Add (or take) points by hand. Returns the ledger entry id (None for a replayed key).

    An adjustment may not take the balance below zero: staff cannot create debts.
    """
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("a reason is required for every adjustment", code="reason_required")
    if not actor:
        raise Invalid("the actor must be known", code="actor_required")
    if points == 0 or abs(points) > MAX_ADJUSTMENT:
        raise Invalid(f"points must be non-zero and at most {MAX_ADJUSTMENT:,} either way", code="points_out_of_range")
    customer = lock_customer(session, shop_id, customer_id)
    key = f"adjust:{idempotency_key or uuid.uuid4().hex}"
    made = session.execute(select(LedgerEntry.customer_id, LedgerEntry.points).where(
        LedgerEntry.shop_id == shop_id, LedgerEntry.idempotency_key == key)).first()
    if made is not None:
        if tuple(made) != (customer_id, points):
            # Not a retry of that adjustment: answering it as one would drop this one unseen.
            raise Invalid("this idempotency key was used for another adjustment", code="idempotency_key_reused")
        return None  # a replay: checked before the balance, which may have moved since
    if points < 0 and customer.points_balance + points < 0:
        raise InsufficientPoints(f"the balance is {customer.points_balance}; an adjustment cannot take it below zero")
    if customer.points_balance + points > MAX_BALANCE:  # else the UPDATE overflows: a 500, not a refusal
        raise Invalid(f"the balance is {customer.points_balance:,}; it cannot go above {MAX_BALANCE:,}",
                      code="points_out_of_range")
    entry_id = post_entry(session, customer, kind="adjust", key=key, now=now, points=points, source="staff",
                          reason=reason, actor=actor, details={"note": note} if note else {})
    if entry_id is not None:
        audit.record(session, shop_id, actor, "points.adjust", target_type="ledger_entry", target_id=entry_id,
                     customer_id=customer_id, details={"points": points, "reason": reason, "note": note,
                                                       "balance_after": customer.points_balance})
    return entry_id
