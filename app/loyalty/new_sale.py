"""The common sale, in two round trips: a first "paid" event for a customer with a platform id.

Nearly every order event a shop sends is this one: a new order, paid, by a shopper with an
account (known already, or new). The general path (app.loyalty.orders) handles it through the
ORM in ~16 statements; this path reads everything it needs in one pipelined round trip (the
order's lock, then the program and the locked customer row, if any, in one statement), decides
with the same rule functions the general path uses, and writes the order, its ledger entry and
the customer's new sums (an UPDATE, or the INSERT of a new shopper) in one statement.

Anything less common (an order or refund we have seen, a referral code that names an advocate,
a referred customer, a win-back sequence that may end, period-based tiers, award on fulfilment,
a test order, imported history, ambiguous rules, a guest, a sale an Nth-order bonus may fall on)
returns None before writing, and the caller falls back to the general path in the same
transaction (the locks taken here are re-entrant there). tests/app/loyalty/test_new_sale.py
applies the same events both ways and compares rows.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal

from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from app.loyalty import orders, tiers, winback
from app.loyalty.customers import apply_customer_info, record_sale, touch_order_stats
from app.loyalty.events import OrderPaid, Outcome
from app.loyalty.identity import new_referral_code, normalize_email
from app.loyalty.intents import NotifyCustomer
from app.loyalty.program import ProgramSettings, settings_from_json
from app.models import Customer

_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"

# Runs after the lock statement (same pipeline), so its snapshot sees every committed change to
# this order; FOR UPDATE re-reads the customer row if it changed meanwhile. One statement for
# the program and the customer (a LATERAL subquery): each statement costs the driver and the
# server more than the join does.
# The advocate is looked up by its code alone (unique across shops), then its shop compared:
# with `a.shop_id = s.id AND a.referral_code = ...` a planner without statistics (a fresh table,
# a plan cached while it was small) may pick the (shop_id, id) index and walk every customer of
# the shop on each order; here the code's unique index is the only one that applies.
_READ_SQL = """
SELECT s.settings,
       EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = s.id AND o.platform_order_id = %(order)s) AS order_seen,
       EXISTS (SELECT 1 FROM order_refunds r WHERE r.shop_id = s.id AND r.platform_order_id = %(order)s) AS refund_seen,
       (SELECT json_agg(json_build_object('kind', e.kind, 'points_per_unit', e.points_per_unit::text,
                                          'points', e.points, 'every_n', e.every_n))
          FROM earn_rules e
         WHERE e.shop_id = s.id AND e.active AND e.action_key = '' AND e.kind IN ('order', 'nth_order')) AS rules,
       (SELECT json_agg(json_build_object('id', t.id, 'threshold', t.threshold::text, 'multiplier', t.multiplier::text)
                        ORDER BY t.threshold)
          FROM tiers t WHERE t.shop_id = s.id) AS tiers,
       s.id IN (SELECT a.shop_id FROM customers a WHERE a.referral_code = %(referral)s) AS advocate_known,
       b.*
  FROM shops s
  LEFT JOIN LATERAL (
      SELECT EXISTS (SELECT 1 FROM referrals f WHERE f.shop_id = c.shop_id AND f.friend_id = c.id) AS referral_recorded,
             {customer_columns}
        FROM customers c
       WHERE c.shop_id = s.id AND c.platform_customer_id = %(customer)s
         FOR NO KEY UPDATE
  ) b ON true
 WHERE s.id = %(shop)s
"""

# The order and its ledger entry, for the customer row `buyer` (updated or inserted before it).
_ORDER_AND_ENTRY = """
new_order AS (
    INSERT INTO orders (shop_id, platform_order_id, customer_id, email_normalized, order_number, currency, subtotal,
                        total, eligible_amount, non_earning_amount, status, is_test, placed_at, paid_at,
                        points_status, points_earned, bonus_points, sale_multiplier, grant_expire_id, pending_until,
                        referral_code, platform_updated_at)
    SELECT %(shop)s, %(order)s, buyer.id, %(order_email)s, %(order_number)s, %(currency)s, %(subtotal)s,
           %(total)s, %(eligible)s, %(non_earning)s, 'paid', %(is_test)s, %(placed_at)s, %(at)s,
           %(points_status)s, %(points)s, %(bonus)s, %(multiplier)s, %(grant_expire_id)s, %(pending_until)s,
           %(referral_code)s, %(updated_at)s
      FROM buyer
    RETURNING id, customer_id
), entry AS (
    INSERT INTO ledger_entries (shop_id, customer_id, kind, source, points, pending_delta, idempotency_key,
                                order_id, details, created_at)
    SELECT %(shop)s, new_order.customer_id, 'earn', 'order', %(entry_points)s, %(entry_pending)s,
           'order:' || new_order.id || ':earn', new_order.id, %(details)s, %(at)s
      FROM new_order WHERE %(entry_points)s <> 0 OR %(entry_pending)s <> 0
)
SELECT customer_id, id FROM new_order
"""
_WRITE_SQL = """
WITH buyer AS (
    UPDATE customers SET {customer_assignments}, updated_at = now()
     WHERE shop_id = %(shop)s AND id = %(id)s
    RETURNING id
), """ + _ORDER_AND_ENTRY
# A shopper we have not seen: created with the order (as customers.upsert_customer would, then
# the same rule functions); a concurrent creation wins the conflict and this writes nothing.
_WRITE_NEW_SQL = """
WITH buyer AS (
    INSERT INTO customers (shop_id, platform_customer_id, referral_code, {customer_names})
    VALUES (%(shop)s, %(customer)s, %(new_referral_code)s, {customer_values})
    ON CONFLICT (shop_id, platform_customer_id) DO NOTHING
    RETURNING id
), """ + _ORDER_AND_ENTRY


@dataclass
class _CustomerRow:
    """The locked customer's columns this path reads and writes; the rule functions of the
    general path (apply_customer_info, touch_order_stats, tier_for_value) work on it unchanged."""

    id: int
    redacted_at: datetime | None
    platform_updated_at: datetime | None
    email: str | None
    email_normalized: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    birthday: date | None
    accepts_marketing: bool
    marketing_consent_updated_at: datetime | None
    points_balance: int
    pending_points: int
    points_earned_lifetime: int
    tier_id: int | None
    tier_achieved_at: datetime | None
    orders_count: int
    total_spent: Decimal
    first_order_at: datetime | None
    last_order_at: datetime | None
    sale_history: bytes
    median_gap_days: float | None
    last_activity_at: datetime | None
    referred_by_id: int | None
    last_expire_id: int | None


_COLUMNS = [f.name for f in fields(_CustomerRow)]
# Every column the rule functions may change: a column added to _CustomerRow is written by both
# statements (the UPDATE of a known customer, the INSERT of a new one). last_expire_id is only
# read (the order's grant_expire_id).
_WRITTEN = [name for name in _COLUMNS if name not in ("id", "redacted_at", "referred_by_id", "last_expire_id")]
_READ_SQL = _READ_SQL.format(customer_columns=", ".join(f"c.{name}" for name in _COLUMNS))
_PROGRAM_COLUMNS = 6  # settings … advocate_known; then referral_recorded and the customer's columns
_WRITE_SQL = _WRITE_SQL.format(customer_assignments=", ".join(f"{name} = %(c_{name})s" for name in _WRITTEN))
_WRITE_NEW_SQL = _WRITE_NEW_SQL.format(customer_names=", ".join(_WRITTEN),
                                       customer_values=", ".join(f"%(c_{name})s" for name in _WRITTEN))


def _new_customer(info) -> _CustomerRow:
    """The row customers.upsert_customer inserts for `info` (the table's defaults elsewhere)."""
    return _CustomerRow(
        id=None, redacted_at=None, platform_updated_at=None, email=info.email,
        email_normalized=normalize_email(info.email), first_name=None, last_name=None, phone=None, birthday=None,
        accepts_marketing=False, marketing_consent_updated_at=None, points_balance=0, pending_points=0,
        points_earned_lifetime=0, tier_id=None, tier_achieved_at=None, orders_count=0, total_spent=Decimal("0.00"),
        first_order_at=None, last_order_at=None, sale_history=b"", median_gap_days=None, last_activity_at=None,
        referred_by_id=None, last_expire_id=None)


@dataclass(frozen=True)
class _Tier:
    id: int
    threshold: Decimal
    multiplier: Decimal


def apply_order_paid(session: Session, shop_id: int, event: OrderPaid) -> Outcome:
    """OrderPaid: the quick path when it applies, else the general one."""
    outcome = apply_new_sale(session, shop_id, event)
    return outcome if outcome is not None else orders.apply_order_paid(session, shop_id, event)


def apply_new_sale(session: Session, shop_id: int, event: OrderPaid) -> Outcome | None:
    """Apply a first "paid" event for a customer (known or new), or return None having written nothing."""
    snapshot, info = event.order, event.order.customer
    if event.historical or info is None or not info.platform_customer_id:
        return None
    session.flush()  # the raw statements below must see anything the session still holds
    raw = session.connection().connection.driver_connection
    referral = snapshot.referral_code.strip().upper() if snapshot.referral_code else None
    params = {"shop": shop_id, "order": snapshot.platform_order_id, "customer": info.platform_customer_id,
              "referral": referral}
    with raw.pipeline():
        raw.execute(_LOCK_SQL, (f"order:{shop_id}:{snapshot.platform_order_id}",))
        read = raw.execute(_READ_SQL, params)
    row = read.fetchone()
    if row is None:
        return None  # no such shop: the general path says so
    stored_settings, order_seen, refund_seen, rules, tier_rows, advocate_known = row[:_PROGRAM_COLUMNS]
    referral_recorded, customer_columns = row[_PROGRAM_COLUMNS], row[_PROGRAM_COLUMNS + 1:]
    new = customer_columns[0] is None  # no customer row: the LATERAL side is all NULL
    customer = _new_customer(info) if new else _CustomerRow(*customer_columns)
    referral_recorded = bool(referral_recorded)
    settings = settings_from_json(stored_settings)
    order_rules = [r for r in rules or [] if r["kind"] == "order"]
    nth_rules = [r for r in rules or [] if r["kind"] == "nth_order"]
    at, placed = event.occurred_at, snapshot.placed_at or event.occurred_at
    # A referral code attributes only when it names an advocate and the friend has no referral
    # yet (referrals.attribute); an unknown code is only recorded on the order.
    if (order_seen or refund_seen or customer.referred_by_id is not None or settings.award_on != "paid"
            or (advocate_known and not referral_recorded)
            or settings.tier_period != "lifetime" or (snapshot.is_test and not settings.include_test_orders)
            or len(order_rules) > 1 or len(nth_rules) > 1
            or winback.may_end_sequence(settings, customer.last_order_at, placed)):
        return None
    shop_tiers = [_Tier(t["id"], Decimal(t["threshold"]), Decimal(t["multiplier"])) for t in tier_rows or []]

    # The same steps, in the same order, as orders._apply_sale on a new order.
    apply_customer_info(customer, info)
    touch_order_stats(customer, snapshot.total, 1, placed)
    record_sale(customer, at)
    bonus = _nth_order_bonus(nth_rules, customer.orders_count)
    if bonus:
        # Whether the bonus is due depends on the bonuses the customer's live orders already hold
        # (orders._count_sale): one sale in N, left to the general path.
        return None
    eligible = orders.eligible_amount(snapshot, settings.earn_basis)
    rate = Decimal(order_rules[0]["points_per_unit"]) if order_rules and order_rules[0]["points_per_unit"] else Decimal(0)
    current_tier = next((t for t in shop_tiers if t.id == customer.tier_id), None)
    multiplier = current_tier.multiplier if current_tier is not None else Decimal(1)
    points = settings.round_points(eligible * rate * multiplier) + bonus
    pending = settings.pending_days > 0
    entry_points, entry_pending = (0, points) if pending else (points, 0)
    customer.points_balance += entry_points
    customer.pending_points += entry_pending
    customer.points_earned_lifetime += entry_points
    if (entry_points or entry_pending > 0) and (customer.last_activity_at is None or at > customer.last_activity_at):
        customer.last_activity_at = at
    reached = _promote(settings, shop_tiers, current_tier, customer, at)

    written = raw.execute(_WRITE_NEW_SQL if new else _WRITE_SQL, {
        **params, "id": customer.id, "new_referral_code": new_referral_code() if new else None,
        "currency": snapshot.currency, "subtotal": snapshot.subtotal,
        "total": snapshot.total, "eligible": eligible, "non_earning": orders.non_earning_amount(snapshot),
        "is_test": snapshot.is_test, "placed_at": snapshot.placed_at,
        "at": at, "order_number": snapshot.order_number, "updated_at": snapshot.updated_at,
        # An erased shopper's orders keep no email (privacy.apply_customer_redact cleared the older ones).
        "order_email": None if customer.redacted_at is not None else normalize_email(snapshot.email or info.email),
        "referral_code": snapshot.referral_code,
        "points_status": "pending" if pending else "awarded", "points": points, "bonus": bonus, "multiplier": multiplier,
        # As orders._award: the expiry a later reversal compares with (pending points: at release).
        "grant_expire_id": None if pending else customer.last_expire_id,
        "pending_until": at + timedelta(days=settings.pending_days) if pending else None,
        "entry_points": entry_points, "entry_pending": entry_pending,
        "details": Jsonb({"eligible_amount": str(eligible), "rate": str(rate), "multiplier": str(multiplier),
                          "bonus": bonus, "basis": settings.earn_basis, "rounding": settings.rounding}),
        **{f"c_{name}": getattr(customer, name) for name in _WRITTEN},
    }).fetchone()
    if written is None:
        return None  # the shopper was created meanwhile (ON CONFLICT): nothing written, the general path applies
    customer_id = written[0]
    if not new:
        # The row changed behind the ORM's back: a Customer this session already holds must reload.
        cached = session.identity_map.get(identity_key(Customer, customer_id))
        if cached is not None:
            session.expire(cached)
    intents = [] if reached is None else [
        NotifyCustomer(shop_id, customer_id, "tier_reached", key=tiers.tier_reached_key(reached, customer_id))]
    return Outcome(intents=intents)


def _nth_order_bonus(nth_rules: list[dict], orders_count: int) -> int:
    rule = nth_rules[0] if nth_rules else None
    if rule is not None and rule["every_n"] and rule["points"] and orders_count % rule["every_n"] == 0:
        return rule["points"]
    return 0


def _promote(settings: ProgramSettings, shop_tiers: list[_Tier], current: _Tier | None, customer: _CustomerRow,
             at: datetime) -> int | None:
    """tiers.promote_if_qualified for lifetime tiers, on the values just computed: the id of a
    tier reached that calls for a congratulation (threshold above zero), else None."""
    value = customer.total_spent if settings.tier_basis == "spend" else Decimal(customer.points_earned_lifetime)
    best = tiers.tier_for_value(shop_tiers, value)
    if best is None or (current is not None and best.threshold <= current.threshold):
        return None
    customer.tier_id, customer.tier_achieved_at = best.id, at
    return best.id if best.threshold > 0 else None
