"""The webhook inbox: store first (deduplicated), process later in a job."""
from __future__ import annotations

import json
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


def parse_json_object(raw: bytes) -> dict | None:
    """The webhook body as a JSON object, or None (not JSON, not an object, or nested too deep)."""
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # a deeply nested body exhausts the parser's recursion
        return None
    return payload if isinstance(payload, dict) else None
