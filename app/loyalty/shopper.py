"""What a shopper sees of their own loyalty account (the widget's read model).

Read only: nothing here adds, changes or locks a row, so the widget's reads can never move
points. Each function takes a session and ids (or rows already read by the caller) and costs
a small, fixed number of statements: the widget answers every storefront page view.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, select
from sqlalchemy.orm import Session

from app.loyalty.expiry import REMINDER_DAYS, expires_at
from app.loyalty.ladder import ladder_stage
from app.loyalty.program import ProgramSettings, program_settings, settings_from_json
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
    return _summary(session, shop, customer, now, program_settings(shop), shop_tiers(session, shop.id),
                    active_rewards(session, shop.id))


def _summary(session: Session, shop, customer, now: datetime, settings, tiers, rewards) -> ShopperSummary:
    """What the shopper sees, from the ORM rows (summary) or the one-statement read (account_summary)."""
    tier = next((t for t in tiers if t.id == customer.tier_id), None)
    if settings.tier_period == "lifetime":  # cached on the row: no query
        value = customer.total_spent if settings.tier_basis == "spend" else Decimal(customer.points_earned_lifetime)
    else:
        value = qualifying_values(session, shop, settings, now, customer.id).get(customer.id, Decimal(0))
    return ShopperSummary(
        customer=customer, tier=tier, next_tier=next_tier(tiers, tier, value),
        expiring_soon=expiring_soon(shop, customer, now),
        ladder_stage=ladder_stage(customer.orders_count, customer.referrals_completed),
        rewards=rewards, tier_basis=settings.tier_basis,
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



# --- the widget's hot read: one statement, no ORM objects -------------------------------------
#
# GET /widget/v1/me answers every storefront page view of a signed-in shopper. Loading Shop,
# Customer, Tier and Reward objects through the ORM in three statements cost several times
# the CPU of the answer itself, so the account is read with ONE statement sent through the
# driver (psycopg prepares it after a few uses): the shop's columns, the shopper's row and the
# program the shopper sees (tiers, active rewards, settings) as JSON text. The program part is
# parsed once per process and kept while the text the database returns is the same (see
# ProgramSnapshot), so a merchant's change is seen by the very next request and a shop's
# snapshot is only ever found under its own id with its own text. The statement is one
# snapshot of the database: balance, tier and rewards always agree with each other.

_ACCOUNT_COLUMNS = """
    s.id, s.uid, s.platform, s.domain, s.name, s.currency, s.timezone, s.locale, s.widget_secret_enc,
    s.settings::text,
    (SELECT COALESCE(json_agg(json_build_array(t.id, t.name, t.threshold) ORDER BY t.threshold), '[]')::text
       FROM tiers t WHERE t.shop_id = s.id),
    (SELECT COALESCE(json_agg(json_build_array(r.id, r.name, r.kind, r.points_cost, r.value, r.minimum_order)
                              ORDER BY r.points_cost, r.position, r.id), '[]')::text
       FROM rewards r WHERE r.shop_id = s.id AND r.active),
    c.id, c.platform_customer_id, c.first_name, c.points_balance, c.pending_points, c.points_earned_lifetime,
    c.tier_id, c.referral_code, c.orders_count, c.total_spent, c.referrals_completed, c.last_activity_at,
    c.created_at
"""
# find_customer's condition (known_customer): the platform id, not erased. No customer matches
# a NULL customer_ref (a guest): then the shop alone.
_ACCOUNT_FROM = """
    FROM shops s
    LEFT JOIN customers c ON c.shop_id = s.id AND c.platform_customer_id = %(customer_ref)s AND c.redacted_at IS NULL
"""
# psycopg's named placeholders; the values are always bound, never formatted into the text.
ACCOUNT_BY_SHOP_UID = (f"SELECT {_ACCOUNT_COLUMNS} {_ACCOUNT_FROM} "
                       "WHERE s.uid = %(shop_uid)s AND s.status = 'active' LIMIT 1")
ACCOUNT_BY_SHOPIFY_DOMAIN = (f"SELECT {_ACCOUNT_COLUMNS} {_ACCOUNT_FROM} "
                             "WHERE s.platform = 'shopify' AND s.domain = %(domain)s AND s.status = 'active' LIMIT 1")


class TierView(NamedTuple):
    id: int
    name: str
    threshold: Decimal


class RewardView(NamedTuple):
    id: int
    name: str
    kind: str
    points_cost: int
    value: Decimal | None
    minimum_order: Decimal | None


@dataclass(frozen=True, slots=True)
class ShopView:
    """The shop columns the widget reads (duck-compatible with Shop for program_settings,
    expires_at, storefront_origins and widget_secret)."""
    id: int
    uid: str
    platform: str
    domain: str
    name: str
    currency: str
    timezone: str
    locale: str
    widget_secret_enc: str | None
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CustomerView:
    id: int
    platform_customer_id: str
    first_name: str | None
    points_balance: int
    pending_points: int
    points_earned_lifetime: int
    tier_id: int | None
    referral_code: str
    orders_count: int
    total_spent: Decimal
    referrals_completed: int
    last_activity_at: datetime | None
    created_at: datetime


@dataclass
class ProgramSnapshot:
    """A shop's program as the statement returned it, parsed. `texts` is exactly what the
    database sent: a snapshot is reused only while the next answer carries the same texts."""
    texts: tuple[str, str, str]          # settings, tiers, rewards (JSON text)
    settings: dict[str, Any]
    program: ProgramSettings
    tiers: list[TierView]                # lowest threshold first
    rewards: list[RewardView]            # active, cheapest first
    # Derived per (locale, currency) by the caller (e.g. formatted reward texts); dropped with
    # the snapshot when the program changes.
    derived: dict[Any, Any] = field(default_factory=dict)


class ShopperAccount(NamedTuple):
    shop: ShopView
    customer: CustomerView | None        # None: not known to us (or erased)
    program: ProgramSnapshot


_PROGRAMS: dict[int, ProgramSnapshot] = {}
_MAX_PROGRAMS = 4096  # shops per process; bounded so a long-lived worker cannot grow without end


def _program(shop_id: int, texts: tuple[str, str, str]) -> ProgramSnapshot:
    cached = _PROGRAMS.get(shop_id)
    if cached is not None and cached.texts == texts:
        return cached
    settings = json.loads(texts[0])
    snapshot = ProgramSnapshot(
        texts, settings, settings_from_json(settings),
        [TierView(*row) for row in json.loads(texts[1], parse_float=Decimal)],
        [RewardView(*row) for row in json.loads(texts[2], parse_float=Decimal)])
    if len(_PROGRAMS) >= _MAX_PROGRAMS and shop_id not in _PROGRAMS:
        _PROGRAMS.clear()
    _PROGRAMS[shop_id] = snapshot
    return snapshot


def shopper_account(row: tuple | None) -> ShopperAccount | None:
    """The account from one row of ACCOUNT_BY_*; None if the statement found no active shop."""
    if row is None:
        return None
    program = _program(row[0], (row[9], row[10], row[11]))
    shop = ShopView(*row[:9], program.settings)
    customer = CustomerView(*row[12:]) if row[12] is not None else None
    return ShopperAccount(shop, customer, program)


def account_summary(session: Session, account: ShopperAccount, now: datetime) -> ShopperSummary:
    """summary() for an account read by ACCOUNT_BY_*: no statement for lifetime tiers (the
    default); a rolling or calendar tier period sums orders or points with one more query."""
    shop, customer, program = account
    return _summary(session, shop, customer, now, program.program, program.tiers, program.rewards)
