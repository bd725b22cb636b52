"""The audit log: every change made by a person (or on their behalf) leaves a row."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import AuditLog

# The audit log's, ledger's and cancellation's actor columns are this long (String(200)).
ACTOR_MAX_LENGTH = AuditLog.__table__.c.actor.type.length
# The longest actor a search may name in full: "staff:<bigint id>:" and a 320-character email.
ACTOR_SEARCH_MAX_LENGTH = 400
_CUT = "..."


def fit_actor(actor: str) -> str:
    """The actor as its column holds it: a longer one cut, ending "...". The writers and the
    search both go through here, so searching by the full actor finds the rows written for it."""
    if len(actor) <= ACTOR_MAX_LENGTH:
        return actor
    return actor[:ACTOR_MAX_LENGTH - len(_CUT)] + _CUT


def record(session: Session, shop_id: int, actor: str, action: str, *, target_type: str | None = None,
           target_id: Any = None, customer_id: int | None = None, details: dict[str, Any] | None = None) -> AuditLog:
    row = AuditLog(shop_id=shop_id, actor=fit_actor(actor), action=action, target_type=target_type,
                   target_id=None if target_id is None else str(target_id), customer_id=customer_id,
                   details=details or {})
    session.add(row)
    return row
