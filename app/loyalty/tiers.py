"""VIP tiers: promotion at once on the qualifying event, demotion only at period end."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from app.loyalty.calendar import start_of_year
from app.loyalty.intents import NotifyCustomer
from app.loyalty.program import ProgramSettings, program_settings
from app.models import Customer, Shop, Tier, for_shop

_SPEND_SQL = """
    SELECT o.customer_id, COALESCE(SUM(o.total - o.refunded_amount), 0)
    FROM orders o
    WHERE o.shop_id = :shop_id AND o.customer_id IS NOT NULL AND o.status <> 'cancelled'
      AND o.paid_at >= :start AND o.paid_at < :end {customer_filter}
    GROUP BY o.customer_id
"""
# A reversal's expiry_cover is the part an earlier expiry already took from the balance, its
# uncollected the part a clamped balance could not repay: both still leave the points earned (as
# points_earned_lifetime does, app.loyalty.ledger.post_entry).
# A reversal counts in the period of the grant it takes back (the order's earn or release, not
# an edit's; a referral reward's own earn entry, whose key its reversal's extends by ":reverse"),
# as a refund counts against its order's paid date for spend: refunding last year's order must
# not eat this year's points. A reversal is never older than its grant, so the scan starts at
# :start; only reversals are read past :end. (`\\:` is a colon that is no bind parameter.)
_POINTS_SQL = """
    SELECT l.customer_id, COALESCE(SUM(l.points - l.expiry_cover - l.uncollected), 0)
    FROM ledger_entries l
    LEFT JOIN LATERAL (
        SELECT g.created_at FROM ledger_entries g
        WHERE l.kind = 'reverse' AND g.shop_id = l.shop_id AND g.customer_id = l.customer_id AND g.id < l.id
          AND ((g.order_id = l.order_id AND g.kind IN ('earn', 'release') AND g.points > 0
                AND g.idempotency_key NOT LIKE '%:edit:%')
               OR (l.order_id IS NULL AND l.idempotency_key LIKE '%\\:reverse'
                   AND g.idempotency_key = left(l.idempotency_key, -8)))
        ORDER BY g.id DESC LIMIT 1
    ) grant_entry ON true
    WHERE l.shop_id = :shop_id AND l.kind IN ('earn', 'release', 'reverse')
      AND l.created_at >= :start AND (l.created_at < :end OR l.kind = 'reverse')
      AND COALESCE(grant_entry.created_at, l.created_at) >= :start
      AND COALESCE(grant_entry.created_at, l.created_at) < :end {customer_filter}
    GROUP BY l.customer_id
"""

# The customer's newest record, and the last period start the shop's review has passed
# (app.loyalty.tier_review), in one statement.
_REVIEWED_THROUGH = "(SELECT reviewed_through FROM tier_reviews WHERE shop_id = :shop_id)"
_LATEST_SQL = {
    "spend": "SELECT (SELECT max(paid_at) FROM orders WHERE shop_id = :shop_id AND customer_id = :customer_id), "
             + _REVIEWED_THROUGH,
    "points": "SELECT (SELECT max(created_at) FROM ledger_entries WHERE shop_id = :shop_id"
              " AND customer_id = :customer_id), " + _REVIEWED_THROUGH,
}

# Built once, the shop id bound per call: the widget reads the tiers on every page view.
_SHOP_TIERS = for_shop(Tier, bindparam("shop_id")).order_by(Tier.threshold)


def tier_reached_key(tier_id: int, customer_id: int) -> str:
    """The tier_reached email's send key, one per tier and customer. Every promotion builds it
    here: app.loyalty.owed_emails rebuilds it from a committed promotion, and must find the key
    the promotion's own email used (email_sends dedupes on it); jobs.emails reads the tier back."""
    return f"tier:{tier_id}:customer:{customer_id}"


def shop_tiers(session: Session, shop_id: int) -> list[Tier]:
    return list(session.scalars(_SHOP_TIERS, {"shop_id": shop_id}))


def tier_for_value(tiers: list[Tier], value: Decimal) -> Tier | None:
    """The highest tier whose threshold the value reaches (tiers sorted ascending)."""
    best = None
    for tier in tiers:
        if value >= tier.threshold:
            best = tier
    return best


def windows(settings: ProgramSettings, now: datetime, tz: str) -> list[tuple[datetime, datetime]]:
    """Periods whose best total decides the tier.

    calendar_year: the year so far and the year before, so a tier reached last year is
    kept through this one; rolling_12_months: the last 365 days.
    """
    if settings.tier_period == "calendar_year":
        this_year = start_of_year(now, tz)
        return [(start_of_year(now, tz, 1), this_year), (this_year, now + timedelta(seconds=1))]
    return [(now - timedelta(days=365), now + timedelta(seconds=1))]


def _customer_filter(column: str, customer_id: int | None, customer_ids: list[int] | None) -> str:
    if customer_id:
        return f" AND {column} = :customer_id"
    return f" AND {column} = ANY(:customer_ids)" if customer_ids is not None else ""


def qualifying_values(session: Session, shop: Shop, settings: ProgramSettings, now: datetime,
                      customer_id: int | None = None, *, customer_ids: list[int] | None = None,
                      also_at_latest: bool = False) -> dict[int, Decimal]:
    """customer id -> the value compared with tier thresholds (spend or points earned), for
    the shop's customers, one (customer_id) or some (customer_ids).
    also_at_latest (one customer): the best of `now` and the customer's newest record, neither
    before the last period start the shop's review passed."""
    if settings.tier_period == "lifetime":
        column = "total_spent" if settings.tier_basis == "spend" else "points_earned_lifetime"
        sql = f"SELECT id, {column} FROM customers WHERE shop_id = :shop_id" + _customer_filter("id", customer_id, customer_ids)
        params = {"shop_id": shop.id, "customer_id": customer_id, "customer_ids": customer_ids}
        return {cid: Decimal(v) for cid, v in session.execute(text(sql), params)}
    template = _SPEND_SQL if settings.tier_basis == "spend" else _POINTS_SQL
    alias = "o" if settings.tier_basis == "spend" else "l"
    sql = text(template.format(customer_filter=_customer_filter(f"{alias}.customer_id", customer_id, customer_ids)))
    periods = windows(settings, now, shop.timezone)
    if customer_id and also_at_latest:
        # An event delivered late (a retry, the reconciliation) carries its own, older time: its
        # windows end there and miss what was recorded after it. Also judge at the newest record.
        # Neither is judged before the last period start reviewed: that review ended the windows
        # before it (last year's spend, the days beyond 365), and an event from before it is
        # judged as the review would have judged it with the event in, not in the windows it closed.
        latest, reviewed = session.execute(text(_LATEST_SQL[settings.tier_basis]),
                                           {"shop_id": shop.id, "customer_id": customer_id}).one()
        if reviewed is not None and reviewed > now:
            periods = windows(settings, reviewed, shop.timezone)
        if latest is not None and latest > max(now, reviewed or now):
            periods += windows(settings, latest, shop.timezone)
    best: dict[int, Decimal] = {}
    for start, end in periods:
        params = {"shop_id": shop.id, "start": start, "end": end, "customer_id": customer_id, "customer_ids": customer_ids}
        for cid, value in session.execute(sql, params):
            best[cid] = max(best.get(cid, Decimal(0)), Decimal(value))
    return best


def promote_if_qualified(session: Session, shop: Shop, settings: ProgramSettings, customer: Customer,
                         now: datetime) -> list:
    """Move a (locked) customer up at once if they now reach a higher tier; never down."""
    tiers = shop_tiers(session, shop.id)
    if not tiers:
        return []
    if settings.tier_period == "lifetime":  # the cached sums on the locked row are exact
        value = customer.total_spent if settings.tier_basis == "spend" else Decimal(customer.points_earned_lifetime)
    else:
        value = qualifying_values(session, shop, settings, now, customer.id,
                                  also_at_latest=True).get(customer.id, Decimal(0))
    best = tier_for_value(tiers, value)
    current = next((t for t in tiers if t.id == customer.tier_id), None)
    if best is None or (current is not None and best.threshold <= current.threshold):
        return []
    customer.tier_id = best.id
    customer.tier_achieved_at = now
    if best.threshold <= 0:
        return []  # everyone's entry tier: nothing to celebrate by email
    return [NotifyCustomer(shop.id, customer.id, "tier_reached", key=tier_reached_key(best.id, customer.id))]


def promote_on_points(session: Session, shop: Shop, customer: Customer, now: datetime) -> list:
    """After points that are not an order's (signup, birthday, referral, custom action): with a
    points basis they qualify at once like any other; with a spend basis they cannot change a tier."""
    settings = program_settings(shop)
    if settings.tier_basis != "points":
        return []
    return promote_if_qualified(session, shop, settings, customer, now)


def review_tiers(session: Session, shop_id: int, now: datetime, *, late_at: datetime | None = None) -> int:
    """At a period end: set every customer's tier from their value as of `now`, down as well as up.

    late_at: when the review runs after `now` (the job judges as of the period start, an hour or
    days later: app.loyalty.tier_review). It then leaves what the review done at `now` would
    have: a tier reached after `now` stands (promotions never wait), and nobody goes below the
    tier their value at late_at reaches (their orders since would have promoted them there), nor
    below what a record after late_at reaches (an order paid after the job's clock, committed
    before the review locked its customer, was judged at its own time).

    Set-based (one aggregate per window, one UPDATE per changed tier) so it stays cheap for shops
    with many customers: a first pass, unlocked, finds who would change; those are then locked
    (as the order path locks them, ledger.lock_customer) in batches and judged again from what is
    committed by then, and only that judgement is written. An order committed meanwhile is either
    seen (it committed before the lock) or waits for this review to commit and then promotes from
    the reviewed tier. A customer the first pass leaves alone is left as if the review had run
    before the order. Returns how many customers changed tier.
    """
    shop = session.get(Shop, shop_id)
    settings = program_settings(shop)
    tiers = shop_tiers(session, shop_id)
    late = late_at is not None and late_at > now
    current = {cid: (tier_id, achieved) for cid, tier_id, achieved in session.execute(
        text("SELECT id, tier_id, tier_achieved_at FROM customers WHERE shop_id = :s"), {"s": shop_id})}
    due = _judge(session, shop, settings, tiers, current, now, late_at if late else None)
    # Locks in id order, like every other batch locker (expiry): two reviews, or a review and
    # expiry, cannot deadlock. An order locks one customer; a referral's then locks its advocate
    # too (friend first, whatever their ids), so it can deadlock with a review holding the
    # advocate and waiting for the friend: PostgreSQL aborts one, and both retry (the event's
    # job, or the review, whose claim rolls back with it and stays owed).
    ordered = sorted(due)
    changed = 0
    for i in range(0, len(ordered), _REVIEW_BATCH):
        batch = ordered[i:i + _REVIEW_BATCH]
        locked = {cid: (tier_id, achieved) for cid, tier_id, achieved in session.execute(_LOCK_SQL, {"s": shop_id, "ids": batch})}
        changed += _write(session, shop_id, now,
                          _judge(session, shop, settings, tiers, locked, now, late_at if late else None, fresh=True))
    return changed


_REVIEW_BATCH = 500
_LOCK_SQL = text("SELECT id, tier_id, tier_achieved_at FROM customers WHERE shop_id = :s AND id = ANY(:ids)"
                 " ORDER BY id FOR NO KEY UPDATE")
# The customers of a batch with a record dated after the review's clock (:after).
_LATEST_AFTER_SQL = {
    "spend": "SELECT customer_id FROM orders WHERE shop_id = :s AND customer_id = ANY(:ids)"
             " GROUP BY customer_id HAVING max(paid_at) > :after",
    "points": "SELECT customer_id FROM ledger_entries WHERE shop_id = :s AND customer_id = ANY(:ids)"
              " GROUP BY customer_id HAVING max(created_at) > :after",
}


def _judge(session: Session, shop: Shop, settings: ProgramSettings, tiers: list[Tier],
           current: dict[int, tuple[int | None, datetime | None]], now: datetime, late_at: datetime | None,
           *, fresh: bool = False) -> dict[int, tuple[int | None, int | None]]:
    """customer id -> (new tier id, tier id held) for the `current` customers whose tier the
    review changes; fresh (their rows locked): also floored by records after the review's clock."""
    by_id = {tier.id: tier for tier in tiers}
    ids = list(current) if fresh else None
    values = qualifying_values(session, shop, settings, now, customer_ids=ids)
    floor: dict[int, Decimal] = {}
    if settings.tier_period != "lifetime":  # lifetime values are the (locked) rows' totals
        if late_at is not None:
            floor = qualifying_values(session, shop, settings, late_at, customer_ids=ids)
        if fresh:
            after = late_at or now
            for cid in session.scalars(text(_LATEST_AFTER_SQL[settings.tier_basis]),
                                       {"s": shop.id, "ids": ids, "after": after}):
                # As the order itself was judged (promote_if_qualified): at its time as well.
                value = qualifying_values(session, shop, settings, after, cid, also_at_latest=True).get(cid, Decimal(0))
                floor[cid] = max(floor.get(cid, Decimal(0)), value)
    due = {}
    for customer_id, (tier_id, achieved) in current.items():
        candidates = [tier_for_value(tiers, values.get(customer_id, Decimal(0))),
                      tier_for_value(tiers, floor.get(customer_id, Decimal(0)))]
        if late_at is not None and achieved is not None and achieved > now:
            candidates.append(by_id.get(tier_id))
        tier = max((t for t in candidates if t is not None), key=lambda t: t.threshold, default=None)
        new_id = tier.id if tier else None
        if new_id != tier_id:
            due[customer_id] = (new_id, tier_id)
    return due


def _write(session: Session, shop_id: int, now: datetime, due: dict[int, tuple[int | None, int | None]]) -> int:
    """One UPDATE per (new tier, old tier) of locked customers; the old tier is checked anyway."""
    targets: dict[tuple[int | None, int | None], list[int]] = {}
    for customer_id, change in due.items():
        targets.setdefault(change, []).append(customer_id)
    changed = 0
    for (new_id, old_id), ids in targets.items():
        result = session.execute(
            text("UPDATE customers SET tier_id = :tier, tier_achieved_at = :now WHERE shop_id = :s AND id = ANY(:ids)"
                 " AND tier_id IS NOT DISTINCT FROM CAST(:old AS bigint)"),
            {"tier": new_id, "now": now, "s": shop_id, "ids": ids, "old": old_id},
        )
        changed += result.rowcount
    return changed
