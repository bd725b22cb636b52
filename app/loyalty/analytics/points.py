"""Ledger-based figures: who is a member, points issued/redeemed/expired, what is outstanding and its value.

A *member* is a customer with at least one ledger entry (points earned, pending, spent or
adjusted) created before the period's end; they joined at their first entry. A customer row
alone is not membership: platforms report every buyer, including history imported from before
the program and guest checkouts, and those customers were never in the program.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, case, func, literal_column, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session, aliased

from app.loyalty.analytics.period import Period
from app.loyalty.ladder import LADDER_STAGES, ladder_stage_sql
from app.models import Customer, LedgerEntry, Reward

L = LedgerEntry

# Flow metrics, all in points and positive in the everyday sense (redeemed 500 = 500 spent).
# A refund that comes after an expiry took its order's points draws them from that expiry
# (the reversal's expiry_cover): those points count as reversed on the refund's day and are
# no longer expired on the expiry's day (as a refund lowers the revenue of its order's day).
# A withdrawn refund's give-back lowers the reversed points on its own day.
POINT_FLOWS = ("points_issued", "points_reversed", "points_redeemed", "points_expired", "points_adjusted")


def first_entries(shop_id: int):
    """Subquery: (customer_id, joined_at) = each member's first ledger entry.

    DISTINCT ON in index order: a streaming pass over the (shop_id, customer_id, created_at)
    index alone; the planner's alternative, hashing every entry, is ~4x slower at 1M members.
    """
    return (select(L.customer_id, L.created_at.label("joined_at")).where(L.shop_id == shop_id)
            .ext(distinct_on(L.customer_id)).order_by(L.customer_id, L.created_at).subquery("members"))


def joins_by_day(session: Session, shop_id: int, period: Period) -> tuple[int, dict[date, int]]:
    """(members who joined before the period, {local day in the period: members who joined that day})."""
    first = first_entries(shop_id)
    # One group for everyone who joined before the period (day NULL), one per day in it.
    day = case((first.c.joined_at < period.start_at, None), else_=period.local_day(first.c.joined_at)).label("day")
    rows = session.execute(select(day, func.count()).where(first.c.joined_at < period.end_at).group_by(day)).all()
    before = sum(n for d, n in rows if d is None)
    return before, {d: n for d, n in rows if d is not None}


def _flow_columns():
    earned = L.points + L.pending_delta  # a pending grant is issued when granted, not when released
    return (
        func.coalesce(func.sum(earned).filter(L.kind == "earn"), 0).label("points_issued"),
        # A release moves held points to the balance (points + pending_delta = 0) except the one
        # a withdrawn refund posts for an order voided at its release (app.loyalty.reversals
        # ._give_back): it gives back what the refund's reversal took, so it lowers the reversed.
        func.coalesce(-func.sum(earned - L.expiry_cover).filter(L.kind.in_(("reverse", "release"))), 0)
        .label("points_reversed"),
        func.coalesce(-func.sum(L.points).filter(L.kind.in_(("redeem", "redeem_reversal"))), 0).label("points_redeemed"),
        func.coalesce(-func.sum(L.points).filter(L.kind == "expire"), 0).label("points_expired"),
        func.coalesce(func.sum(L.points).filter(L.kind == "adjust"), 0).label("points_adjusted"),
        func.coalesce(func.sum(L.points), 0).label("balance_delta"),
        func.coalesce(func.sum(L.pending_delta), 0).label("pending_delta"),
    )


@dataclass
class PointFlows:
    totals: dict[str, int]                  # POINT_FLOWS over the period
    by_day: dict[date, dict[str, int]]      # the same per local day, plus balance_delta
    balance_after: int                      # points posted after the period (to roll the balance back)
    pending_after: int


def point_flows(session: Session, shop_id: int, period: Period) -> PointFlows:
    """One scan of the ledger from the period's start (shop_id, created_at index): flows per day and after it."""
    day = period.local_day(L.created_at).label("day")
    rows = session.execute(
        select(day, *_flow_columns()).where(L.shop_id == shop_id, L.created_at >= period.start_at).group_by(day)
    ).all()
    totals = dict.fromkeys(POINT_FLOWS, 0)
    by_day: dict[date, dict[str, int]] = {}
    balance_after = pending_after = 0
    for row in rows:
        values = row._mapping
        if row.day > period.end:
            balance_after += int(values["balance_delta"])
            pending_after += int(values["pending_delta"])
            continue
        by_day[row.day] = {k: int(values[k]) for k in (*POINT_FLOWS, "balance_delta")}
        for k in POINT_FLOWS:
            totals[k] += int(values[k])
    if totals["points_expired"]:
        for expired_day, covered in _expiry_covered_by_day(session, shop_id, period):
            by_day[expired_day]["points_expired"] -= int(covered)
            totals["points_expired"] -= int(covered)
    return PointFlows(totals, by_day, balance_after, pending_after)


def _expiry_covered_by_day(session: Session, shop_id: int, period: Period) -> list[tuple[date, int]]:
    """[(local day of an expire entry in the period, points of it later reversals drew on)].

    From the period's expire entries to the same customer's later reversals that name them
    (details.expire_entry_id), whenever those were dated: a late refund can carry an older time.
    """
    expired, drawn = aliased(L), aliased(L)
    day = period.local_day(expired.created_at).label("day")
    return [tuple(r) for r in session.execute(
        select(day, func.sum(drawn.expiry_cover))
        .join(drawn, (drawn.shop_id == expired.shop_id) & (drawn.customer_id == expired.customer_id)
              & (drawn.id > expired.id) & (drawn.expiry_cover != 0)  # a withdrawn refund's give-back: < 0
              & (drawn.details["expire_entry_id"].astext.cast(BigInteger) == expired.id))
        .where(expired.shop_id == shop_id, expired.kind == "expire",
               expired.created_at >= period.start_at, expired.created_at < period.end_at)
        .group_by(day)
    )]


def customer_snapshot(session: Session, shop_id: int) -> tuple[dict[str, int], int, int]:
    """Now, in one scan of the shop's customers: ({ladder stage: customers}, spendable points, pending points).

    The point sums are the cached balances that the ledger check (find_balance_drift) proves equal to the ledger.
    """
    stage = literal_column(ladder_stage_sql()).label("stage")
    rows = session.execute(
        select(stage, func.count(), func.sum(Customer.points_balance), func.sum(Customer.pending_points))
        .where(Customer.shop_id == shop_id).group_by(stage)
    ).all()
    ladder = dict.fromkeys(LADDER_STAGES, 0) | {r.stage: int(r[1]) for r in rows}
    return ladder, sum(int(r[2]) for r in rows), sum(int(r[3]) for r in rows)


def point_value(session: Session, shop_id: int) -> Decimal | None:
    """What one point is worth in the shop's currency: the best rate among active fixed-amount rewards.

    The best rate (not the average) because the liability is what the points could cost the
    merchant if every shopper spent them on the reward that gives most per point. Percentage,
    free-shipping and free-product rewards have no fixed money value per point. None when the
    shop has no active fixed-amount reward.
    """
    return session.execute(
        select(func.max(Reward.value / Reward.points_cost))
        .where(Reward.shop_id == shop_id, Reward.active.is_(True), Reward.kind == "fixed_amount",
               Reward.value.is_not(None))
    ).scalar_one_or_none()
