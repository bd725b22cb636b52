"""Posting to the append-only ledger, keeping the customer's cached sums in step.

Every posting happens with the customer row locked (SELECT ... FOR NO KEY UPDATE), so the cached
balance is changed by exactly the entries that were inserted, in the same transaction.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.models import Customer, LedgerEntry, for_shop

# Kinds that count as shopper activity for the expiry clock.
_ACTIVITY_KINDS = frozenset({"earn", "release", "redeem"})


def lock_customer(session: Session, shop_id: int, customer_id: int) -> Customer:
    # NO KEY UPDATE: as exclusive between lockers, but it does not wait for the KEY SHARE lock a
    # referred friend's row update takes on its advocate (two friends' orders would deadlock).
    stmt = for_shop(Customer, shop_id).where(Customer.id == customer_id).with_for_update(key_share=True)
    customer = session.execute(stmt.execution_options(populate_existing=True)).scalar_one()
    return customer


def post_entry(
    session: Session,
    customer: Customer,
    *,
    kind: str,
    key: str,
    now: datetime,
    points: int = 0,
    pending_delta: int = 0,
    uncollected: int = 0,
    expiry_cover: int = 0,
    source: str | None = None,
    order_id: int | None = None,
    redemption_id: int | None = None,
    reason: str | None = None,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> int | None:
    """Insert one entry unless its idempotency key is already used; return its id or None.

    `customer` must have been locked with lock_customer() in this transaction.
    """
    if points == 0 and pending_delta == 0 and uncollected == 0 and expiry_cover == 0:
        return None
    stmt = (
        insert(LedgerEntry)
        .values(
            shop_id=customer.shop_id, customer_id=customer.id, kind=kind, source=source, points=points,
            pending_delta=pending_delta, uncollected=uncollected, expiry_cover=expiry_cover, idempotency_key=key,
            order_id=order_id, redemption_id=redemption_id, reason=reason, actor=actor, details=details or {},
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["shop_id", "idempotency_key"])
        .returning(LedgerEntry.id)
    )
    entry_id = session.execute(stmt).scalar_one_or_none()
    if entry_id is None:
        return None  # replayed: already applied once
    customer.points_balance += points
    customer.pending_points += pending_delta
    if kind in ("earn", "release", "reverse"):
        # A reversal's expired part leaves the lifetime too, as it would have before the expiry;
        # so does its uncollected part (a clamped balance could not repay it, the order still
        # earned nothing). A collect entry settles that rest (points = uncollected < 0): no change.
        customer.points_earned_lifetime += points - expiry_cover - uncollected
    # An earn held for a return window (pending only) is activity too: the shopper just ordered.
    if (kind in _ACTIVITY_KINDS and (points or pending_delta > 0)
            and (customer.last_activity_at is None or now > customer.last_activity_at)):
        customer.last_activity_at = now  # a late-applied older event never winds the expiry clock back
    return entry_id


def entry_exists(session: Session, shop_id: int, key: str) -> bool:
    stmt = select(LedgerEntry.id).where(LedgerEntry.shop_id == shop_id, LedgerEntry.idempotency_key == key)
    return session.execute(stmt).first() is not None


def last_entry_id(session: Session, shop_id: int, customer_id: int) -> int | None:
    return session.execute(
        select(func.max(LedgerEntry.id)).where(LedgerEntry.shop_id == shop_id, LedgerEntry.customer_id == customer_id)
    ).scalar_one()


def ledger_sums(session: Session, shop_id: int, customer_id: int) -> tuple[int, int]:
    """(balance, pending) recomputed from the entries themselves."""
    row = session.execute(
        select(func.coalesce(func.sum(LedgerEntry.points), 0), func.coalesce(func.sum(LedgerEntry.pending_delta), 0))
        .where(LedgerEntry.shop_id == shop_id, LedgerEntry.customer_id == customer_id)
    ).one()
    return int(row[0]), int(row[1])


def find_balance_drift(session: Session, shop_id: int | None = None) -> list[tuple[int, int, int, int, int]]:
    """Customers whose cached sums disagree with their ledger: (id, cached, summed, cached_pending, summed_pending).

    An empty list is the invariant; `lojal ledger check` and the test suite call this.
    """
    sql = text(
        """
        SELECT c.id, c.points_balance, COALESCE(l.points, 0), c.pending_points, COALESCE(l.pending, 0)
        FROM customers c
        LEFT JOIN (
            SELECT customer_id, SUM(points) AS points, SUM(pending_delta) AS pending
            FROM ledger_entries WHERE (CAST(:shop_id AS bigint) IS NULL OR shop_id = :shop_id)
            GROUP BY customer_id
        ) l ON l.customer_id = c.id
        WHERE (CAST(:shop_id AS bigint) IS NULL OR c.shop_id = :shop_id)
          AND (c.points_balance <> COALESCE(l.points, 0) OR c.pending_points <> COALESCE(l.pending, 0))
        ORDER BY c.id
        """
    )
    return [tuple(r) for r in session.execute(sql, {"shop_id": shop_id})]
