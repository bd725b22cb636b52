"""How much a support agent may adjust: per adjustment and per shop day (owners are unlimited).

Counted from the audit log (`points.adjust` rows of the agent's actors since the start of the
shop's local day), which has a (shop, time) index: a day's rows are few, the ledger is huge.
The agent's staff row is locked first, so two adjustments at once cannot both fit the last room.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, func, select
from sqlalchemy.orm import Session

from app.loyalty.errors import Forbidden
from app.loyalty.program import program_settings
from app.models import AuditLog, Shop, StaffUser


def shop_day_start(now: datetime, tz: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    return datetime.combine(local.date(), time(0), tzinfo=ZoneInfo(tz))


def adjusted_today(session: Session, shop_id: int, actors: Sequence[str], since: datetime) -> int:
    """Sum of |points| the given actors adjusted in the shop since `since`."""
    points = func.abs(AuditLog.details["points"].astext.cast(Integer))
    return int(session.scalar(
        select(func.coalesce(func.sum(points), 0))
        .where(AuditLog.shop_id == shop_id, AuditLog.action == "points.adjust", AuditLog.created_at >= since,
               AuditLog.created_at < since + timedelta(days=2), AuditLog.actor.in_(list(actors)))
    ))


def enforce_support_limit(session: Session, shop_id: int, staff_id: int, actors: Sequence[str], points: int,
                          now: datetime) -> None:
    """Raise Forbidden(adjustment_limit) when `points` would exceed the shop's support limits."""
    shop = session.get(Shop, shop_id)
    settings = program_settings(shop)
    session.scalars(select(StaffUser.id).where(StaffUser.id == staff_id, StaffUser.shop_id == shop_id)
                    .with_for_update()).one()
    per_adjustment = settings.support_adjust_limit_per_adjustment
    if abs(points) > per_adjustment:
        raise Forbidden(f"support may adjust at most {per_adjustment} points at a time", code="adjustment_limit")
    used = adjusted_today(session, shop_id, actors, shop_day_start(now, shop.timezone))
    per_day = settings.support_adjust_limit_per_day
    if used + abs(points) > per_day:
        raise Forbidden(f"support may adjust at most {per_day} points a day; {used} used today",
                        code="adjustment_limit")
