"""What every platform's backfill and reconciliation share."""
from __future__ import annotations

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
