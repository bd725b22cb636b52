"""What every platform's backfill and reconciliation share."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from app.loyalty.apply import apply_event
from integrations.base import MalformedPayload, parsed

log = logging.getLogger(__name__)


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


def sync_order(session: Session, shop_id: int, platform: str, platform_order_id: object,
               read_order: Callable[[], tuple[bool, list]]) -> tuple[bool, list] | None:
    """One order read by a backfill or reconciliation. `read_order()` gives (is it history, its
    events); the events are applied in one transaction and (history, intents to dispatch) come
    back. A malformed order (a missing or garbled field, as for webhooks) gives None: it is
    logged and skipped, since retrying its page would fail on it for ever and block every order
    after it."""
    try:
        historical, events = parsed(f"{platform} order", read_order)
    except MalformedPayload as exc:
        log.warning("order sync skipped a malformed order",
                    extra={"shop_id": shop_id, "platform_order_id": str(platform_order_id), "error": str(exc)})
        return None
    return historical, apply_order_events(session, shop_id, events)


def is_history(mode: str, placed_at: datetime | None, installed_at: datetime | None) -> bool:
    """History is what was placed before the install. A backfill also reads orders placed since
    (a long import, a late or lost webhook, a backfill run again later): those are live sales, or
    they would be voided for good and their webhook would then find them already counted."""
    if installed_at is None:
        return mode == "backfill"
    return placed_at is not None and placed_at < installed_at
