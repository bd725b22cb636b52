"""Points expire after N months without activity (an earn or a redemption resets the clock)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, func, literal, select
from sqlalchemy.orm import Session

from app.loyalty.calendar import add_months, local
from app.loyalty.events import Outcome
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import last_entry_id, lock_customer, post_entry
from app.loyalty.program import program_settings
from app.models import Customer, Shop


def expires_at(shop: Shop, customer: Customer) -> datetime | None:
    """When the customer's current balance expires if nothing happens; None if never."""
    months = program_settings(shop).expiry_months
    since = customer.last_activity_at or customer.created_at
    if months is None or customer.points_balance <= 0 or since is None:
        return None
    return add_months(local(since, shop.timezone), months)


def expire_inactive_points(session: Session, shop_id: int, now: datetime, limit: int = 1000) -> Outcome:
    shop = session.get(Shop, shop_id)
    months = program_settings(shop).expiry_months
    if months is None:
        return Outcome(status="noop")
    tz = shop.timezone
    last_active = func.coalesce(Customer.last_activity_at, Customer.created_at)
    # expires_at() in SQL: `months` later on the shop's wall clock, clamped to the month's last
    # day as add_months() does, so the job keeps the date the shopper is shown (Jan 31 -> Feb 28).
    due_at = func.timezone(tz, func.timezone(tz, last_active) + func.make_interval(0, literal(months, Integer)))
    ids = session.scalars(
        select(Customer.id).where(Customer.shop_id == shop_id, Customer.points_balance > 0, due_at < now)
        .order_by(Customer.id).limit(limit)
    ).all()
    outcome = Outcome(status="applied" if ids else "noop")
    for customer_id in ids:
        customer = lock_customer(session, shop_id, customer_id)
        since = customer.last_activity_at or customer.created_at
        if customer.points_balance <= 0 or add_months(local(since, tz), months) >= now:
            continue  # earned or spent since we looked
        # Keyed on the newest entry: a rerun finds the same key; any later entry makes a new one.
        key = f"expire:{customer.id}:after:{last_entry_id(session, shop_id, customer.id)}"
        amount = customer.points_balance
        if post_entry(session, customer, kind="expire", key=key, now=now, points=-amount, source="inactivity",
                      details={"inactive_since": since.isoformat(), "months": months}):
            outcome.intents.append(NotifyCustomer(shop_id, customer.id, "points_expired", key=key))
    return outcome
