"""The audit log: every change made by a person (or on their behalf) leaves a row."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import AuditLog


def record(session: Session, shop_id: int, actor: str, action: str, *, target_type: str | None = None,
           target_id: Any = None, customer_id: int | None = None, details: dict[str, Any] | None = None) -> AuditLog:
    row = AuditLog(shop_id=shop_id, actor=actor, action=action, target_type=target_type,
                   target_id=None if target_id is None else str(target_id), customer_id=customer_id,
                   details=details or {})
    session.add(row)
    return row
