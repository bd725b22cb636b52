"""When tiers are reviewed: once per period start (the shop's local 1st of the month, or 1 January
for calendar_year), caught up on a later day if no review ran on it.

Each shop's tier_reviews row holds the last boundary whose review is done or owed nothing. A
review claims its boundary by a conditional UPDATE of that row in its own transaction, so two
runs (a retry, two workers) review once, and a rolled-back review leaves the boundary owed.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.loyalty.calendar import add_months, local
from app.loyalty.program import program_settings
from app.loyalty.tiers import review_tiers
from app.models import Shop, TierReview

_RECORD = TierReview.__table__


def period_start(tier_period: str, now: datetime, tz: str, back: int = 0) -> datetime:
    """The latest tier period start at or before `now` (`back` periods earlier), in UTC:
    local midnight of 1 January for calendar_year, of the 1st of the month otherwise."""
    here = local(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    if tier_period == "calendar_year":
        start = here.replace(year=here.year - back, month=1, day=1)
    else:
        start = add_months(here.replace(day=1), -back)
    return start.astimezone(UTC)


def review_due_tiers(session: Session, shop_id: int, now: datetime) -> str:
    """Review the shop's tiers as of the latest period start if that review is still owed.

    Returns "reviewed:<changed>", "already-reviewed" (on a boundary's own day) or "not-due".
    The caller commits: the claim and the review's changes are one transaction.
    """
    shop = session.get(Shop, shop_id)
    tier_period, tz = program_settings(shop).tier_period, shop.timezone
    boundary = period_start(tier_period, now, tz)
    on_its_day = local(now, tz).date() == local(boundary, tz).date()
    # A shop's first run starts its record: no late review of a boundary from before it
    # existed (shops migrated in, new installs), but the review of a period starting today.
    first = period_start(tier_period, now, tz, back=1) if on_its_day else boundary
    session.execute(insert(_RECORD).values(shop_id=shop_id, reviewed_through=first)
                    .on_conflict_do_nothing(index_elements=["shop_id"]))
    claimed = session.execute(
        _RECORD.update().where(_RECORD.c.shop_id == shop_id, _RECORD.c.reviewed_through < boundary)
        .values(reviewed_through=boundary, updated_at=func.now())
    ).rowcount
    if not claimed:
        return "already-reviewed" if on_its_day else "not-due"
    # One transaction with the claim, though review_tiers holds its customers' locks (the ones it
    # changes, usually few) until the commit, delaying their orders meanwhile: committed batch by
    # batch, a review cut short would leave the boundary claimed and half its customers unjudged.
    # A deadlock with a referral's order rolls back the claim with the rest: the boundary stays owed.
    return f"reviewed:{review_tiers(session, shop_id, boundary, late_at=now)}"


def owe_no_review_before(session: Session, shop_id: int, tier_period: str, tz: str,
                         now: datetime | None = None) -> None:
    """A new tier period, or the shop's first tiers: the boundaries already passed were never
    periods of this scheme, so none is reviewed late; the next boundary is the first review."""
    boundary = period_start(tier_period, now or datetime.now(UTC), tz)
    stmt = insert(_RECORD).values(shop_id=shop_id, reviewed_through=boundary)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["shop_id"],
        set_={"reviewed_through": func.greatest(_RECORD.c.reviewed_through, stmt.excluded.reviewed_through),
              "updated_at": func.now()},
    ))
