"""The webhook inbox: store first (deduplicated), process later in a job."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.models import WebhookEvent


def store_inbound_event(session: Session, *, shop_id: int, platform: str, topic: str, event_key: str,
                        payload: Mapping[str, Any], headers: Mapping[str, str] | None = None,
                        triggered_at: datetime | None = None) -> int | None:
    """Insert one inbox row; None if this (shop, platform, event key) is already stored."""
    return session.execute(
        insert(WebhookEvent)
        .values(shop_id=shop_id, platform=platform, topic=topic, event_key=event_key, payload=dict(payload),
                headers=dict(headers or {}), triggered_at=triggered_at)
        .on_conflict_do_nothing(index_elements=["shop_id", "platform", "event_key"])
        .returning(WebhookEvent.id)
    ).scalar_one_or_none()
