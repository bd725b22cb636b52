"""What a shopper sees of their own loyalty account (the widget's read model).

Read only: nothing here adds, changes or locks a row, so the widget's reads can never move
points. Each function takes a session and ids (or rows already read by the caller) and costs
a small, fixed number of statements: the widget answers every storefront page view.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, select
from sqlalchemy.orm import Session

from app.loyalty.expiry import REMINDER_DAYS, expires_at
from app.loyalty.ladder import ladder_stage
from app.loyalty.program import program_settings
from app.loyalty.tiers import qualifying_values, shop_tiers
from app.models import Customer, EarnRule, LedgerEntry, Reward, Shop, Tier, for_shop

# "Expiring soon" is the window of the first expiry reminder email, so the widget and the
# email tell the shopper the same thing.
EXPIRING_SOON = timedelta(days=REMINDER_DAYS[0])
MAX_ACTIVITY_PAGE = 50


@dataclass(frozen=True)
class PublicProgram:
    earn_rules: list[EarnRule]
    rewards: list[Reward]      # active, cheapest first
    tiers: list[Tier]          # lowest threshold first
    tier_basis: str            # spend | points: what tier thresholds count


@dataclass(frozen=True)
class NextTier:
    tier: Tier
    remaining: Decimal         # spend (shop currency) or points still needed
    progress: float            # 0..1 from the current tier's threshold to this one's


@dataclass(frozen=True)
class ExpiringPoints:
    points: int
    expires_at: datetime


@dataclass(frozen=True)
class ShopperSummary:
    customer: Customer
    tier: Tier | None
    next_tier: NextTier | None
    expiring_soon: ExpiringPoints | None
    ladder_stage: str
    rewards: list[Reward]      # active, cheapest first
    tier_basis: str


@dataclass(frozen=True)
class ActivityPage:
    entries: list[LedgerEntry]
    next_cursor: int | None    # pass back as `before_id` for the next (older) page


def public_program(session: Session, shop: Shop) -> PublicProgram:
    """The shop's program as a guest may see it: active earn rules and rewards, the tiers."""
    rules = session.scalars(for_shop(EarnRule, shop.id).where(EarnRule.active.is_(True)).order_by(EarnRule.id)).all()
    return PublicProgram(list(rules), active_rewards(session, shop.id), shop_tiers(session, shop.id),
                         program_settings(shop).tier_basis)


# Built once (with the shop id bound per call): the widget reads these on every page view, and
# building a statement costs more CPU than running it.
_ACTIVE_REWARDS = (for_shop(Reward, bindparam("shop_id")).where(Reward.active.is_(True))
                   .order_by(Reward.points_cost, Reward.position, Reward.id))


def active_rewards(session: Session, shop_id: int) -> list[Reward]:
    return list(session.scalars(_ACTIVE_REWARDS, {"shop_id": shop_id}))


def find_customer(session: Session, shop_id: int, platform_customer_id: str) -> Customer | None:
    """The shop's customer with this platform id, unless their data was erased."""
    return session.scalars(for_shop(Customer, shop_id).where(known_customer(platform_customer_id))).first()


def known_customer(platform_customer_id: str | BindParameter[str]) -> ColumnElement[bool]:
    """find_customer's condition, for callers that fetch the customer with their shop in one query."""
    return and_(Customer.platform_customer_id == platform_customer_id, Customer.redacted_at.is_(None))


def summary(session: Session, shop: Shop, customer: Customer, now: datetime) -> ShopperSummary:
    settings = program_settings(shop)
    tiers = shop_tiers(session, shop.id)
    tier = next((t for t in tiers if t.id == customer.tier_id), None)
    if settings.tier_period == "lifetime":  # cached on the row: no query
        value = customer.total_spent if settings.tier_basis == "spend" else Decimal(customer.points_earned_lifetime)
    else:
        value = qualifying_values(session, shop, settings, now, customer.id).get(customer.id, Decimal(0))
    return ShopperSummary(
        customer=customer, tier=tier, next_tier=next_tier(tiers, tier, value),
        expiring_soon=expiring_soon(shop, customer, now),
        ladder_stage=ladder_stage(customer.orders_count, customer.referrals_completed),
        rewards=active_rewards(session, shop.id), tier_basis=settings.tier_basis,
    )


def next_tier(tiers: list[Tier], current: Tier | None, value: Decimal) -> NextTier | None:
    """The first tier above the current one, how much is missing and how far along the way."""
    floor = current.threshold if current is not None else Decimal(0)
    target = next((t for t in tiers if t.threshold > floor), None)
    if target is None:
        return None
    remaining = max(target.threshold - value, Decimal(0))
    span = target.threshold - floor
    progress = float(min(max((value - floor) / span, Decimal(0)), Decimal(1))) if span > 0 else 1.0
    return NextTier(target, remaining, round(progress, 4))


def expiring_soon(shop: Shop, customer: Customer, now: datetime) -> ExpiringPoints | None:
    when = expires_at(shop, customer)
    if when is None or when - now > EXPIRING_SOON:
        return None
    return ExpiringPoints(customer.points_balance, when)


def activity(session: Session, shop_id: int, customer_id: int, *, before_id: int | None = None,
             limit: int = 20) -> ActivityPage:
    """The customer's ledger, newest first, one keyset page (index (shop_id, customer_id, id))."""
    limit = max(1, min(limit, MAX_ACTIVITY_PAGE))
    stmt = select(LedgerEntry).where(LedgerEntry.shop_id == shop_id, LedgerEntry.customer_id == customer_id)
    if before_id is not None:
        stmt = stmt.where(LedgerEntry.id < before_id)
    rows = list(session.scalars(stmt.order_by(LedgerEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return ActivityPage(rows, rows[-1].id if more else None)

