"""Reading the audit log: by actor, customer and time, newest first."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.loyalty.audit import fit_actor
from app.loyalty.paging import Page, keyset_page
from app.models import AuditLog, for_shop


def search_audit_log(session: Session, shop_id: int, *, actor: str | None = None, customer_id: int | None = None,
                     since: datetime | None = None, until: datetime | None = None, cursor: int | None = None,
                     limit: int = 50) -> Page[AuditLog]:
    stmt = for_shop(AuditLog, shop_id)
    if actor:
        stmt = stmt.where(AuditLog.actor == fit_actor(actor))  # a longer actor was stored cut
    if customer_id is not None:
        stmt = stmt.where(AuditLog.customer_id == customer_id)
    if since is not None:
        stmt = stmt.where(AuditLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditLog.created_at < until)
    return keyset_page(session, stmt, AuditLog.id, cursor, limit)
