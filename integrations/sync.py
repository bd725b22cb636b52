"""What every platform's backfill and reconciliation share."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.loyalty.apply import apply_event


def apply_order_events(session: Session, shop_id: int, events: list) -> list:
    """One order's events, one transaction; returns the intents to dispatch after commit."""
    intents: list = []
    try:
        for event in events:
            intents += apply_event(session, shop_id, event).intents
        session.commit()
    except BaseException:
        session.rollback()  # nothing half-applied stays in the session; the error goes on up
        raise
    return intents


def is_history(mode: str, placed_at: datetime | None, installed_at: datetime | None) -> bool:
    """History is what was placed before the install. A backfill also reads orders placed since
    (a long import, a late or lost webhook, a backfill run again later): those are live sales, or
    they would be voided for good and their webhook would then find them already counted."""
    if installed_at is None:
        return mode == "backfill"
    return placed_at is not None and placed_at < installed_at
