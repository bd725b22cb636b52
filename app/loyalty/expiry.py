"""Points expire after N months without activity (an earn or a redemption resets the clock)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Date, DateTime, Integer, String, cast, exists, func, literal, select
from sqlalchemy.orm import Session

from app.loyalty.calendar import add_months, local
from app.loyalty.events import Outcome
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import last_entry_id, lock_customer, post_entry
from app.loyalty.program import ProgramSettings, program_settings
from app.models import Customer, EmailSend, Shop

# Reminder thresholds, in days before the (local) expiry date, largest first. A customer whose
# expiry is d days away is reminded for the smallest threshold t >= d (so the 30-day reminder
# covers 8..30 days, the 7-day one 1..7): a run missed for a day or two still reminds.
REMINDER_DAYS = (30, 7)
# Switching expiry on, or shortening it (program setting expiry_since, set by the save), holds
# every balance at least this long: the first reminder's lead plus 5 days, so the 30-day
# reminder goes out (and a missed reminder run or two catch up) before anything expires.
EXPIRY_GRACE = timedelta(days=REMINDER_DAYS[0] + 5)


def grace_ends_at(settings: ProgramSettings) -> datetime | None:
    """Nothing expires before this; None (no expiry_since: expiry on before it existed) = no floor."""
    return settings.expiry_since + EXPIRY_GRACE if settings.expiry_since is not None else None


def expires_at(shop: Shop, customer: Customer) -> datetime | None:
    """When the customer's current balance expires if nothing happens; None if never.
    The one rule: `expiry_months` after the last activity (local calendar), not before the grace
    ends. _expires_at_sql is the same in SQL for the job and the reminders."""
    settings = program_settings(shop)
    months = settings.expiry_months
    since = customer.last_activity_at or customer.created_at
    if months is None or customer.points_balance <= 0 or since is None:
        return None
    when = add_months(local(since, shop.timezone), months)
    floor = grace_ends_at(settings)
    return max(when, local(floor, shop.timezone)) if floor is not None else when


def _expires_at_sql(shop: Shop):
    """expires_at() as a timestamptz expression over Customer (expiry_months must be set):
    `months` later on the shop's wall clock, clamped to the month's last day as add_months()
    does (Jan 31 -> Feb 28), and no earlier than the grace's end."""
    settings = program_settings(shop)
    tz = shop.timezone
    last_active = func.coalesce(Customer.last_activity_at, Customer.created_at)
    due_at = func.timezone(tz, func.timezone(tz, last_active)
                           + func.make_interval(0, literal(settings.expiry_months, Integer)))
    floor = grace_ends_at(settings)
    return func.greatest(due_at, literal(floor, DateTime(timezone=True))) if floor is not None else due_at


def expire_inactive_points(session: Session, shop_id: int, now: datetime, limit: int = 1000,
                           after_id: int = 0) -> Outcome:
    """One batch (customers by id after `after_id`); a full batch sets outcome.resume_after."""
    shop = session.get(Shop, shop_id)
    months = program_settings(shop).expiry_months
    if months is None:
        return Outcome(status="noop")
    # expires_at() in SQL, so the job keeps the date the shopper is shown.
    due_at = _expires_at_sql(shop)
    ids = session.scalars(
        select(Customer.id).where(Customer.shop_id == shop_id, Customer.id > after_id, Customer.points_balance > 0,
                                  due_at < now)
        .order_by(Customer.id).limit(limit)
    ).all()
    outcome = Outcome(status="applied" if ids else "noop", resume_after=ids[-1] if len(ids) == limit else None)
    for customer_id in ids:
        customer = lock_customer(session, shop_id, customer_id)
        since = customer.last_activity_at or customer.created_at
        when = expires_at(shop, customer)
        if when is None or when >= now:
            continue  # earned or spent since we looked
        # Keyed on the newest entry: a rerun finds the same key; any later entry makes a new one.
        # The email's key is the entry's own (app.loyalty.owed_emails reads it back from the entry).
        key = f"expire:{customer.id}:after:{last_entry_id(session, shop_id, customer.id)}"
        amount = customer.points_balance
        details = {"inactive_since": since.isoformat(), "months": months}
        floor = grace_ends_at(program_settings(shop))
        if floor is not None:
            details["grace_ended_at"] = floor.isoformat()  # why it came no sooner
        entry_id = post_entry(session, customer, kind="expire", key=key, now=now, points=-amount,
                              source="inactivity", details=details)
        if entry_id is not None:
            # Orders granted before it have nothing left: their reversals draw on it first.
            customer.last_expire_id = entry_id
            outcome.intents.append(NotifyCustomer(shop_id, customer.id, "points_expired", key=key))
    return outcome


def reminder_key(customer_id: int, expires_on, days: int) -> str:
    return f"expiry-reminder:{customer_id}:{expires_on.isoformat()}:{days}"


def reminder_still_due(shop: Shop, customer: Customer, key: str) -> bool:
    """Does the balance still expire on the date the reminder's key names? An earn or a
    redemption since the reminder was queued (a send waiting for an SMTP retry) moves it."""
    when = expires_at(shop, customer)
    parts = key.split(":")
    return when is not None and len(parts) == 4 and parts[2] == when.date().isoformat()


def expiry_reminders(session: Session, shop_id: int, now: datetime) -> Outcome:
    """`points_expiring` emails 30 and 7 days before a balance expires (dates in the shop's zone).

    Set-based: one query per threshold selects (customer id, local expiry date) for customers
    with a balance, marketing consent and an email, whose local expiry date falls in the
    threshold's window and whose reminder key has no email_sends row yet. The key names the
    expiry date, so an earn that moves the date earns a new reminder, and replays are no-ops
    (jobs.emails records each key once).
    """
    shop = session.get(Shop, shop_id)
    months = program_settings(shop).expiry_months
    if months is None:
        return Outcome(status="noop")
    tz = shop.timezone
    today = local(now, tz).date()
    # expires_at()'s local date in SQL.
    expires_on = cast(func.timezone(tz, _expires_at_sql(shop)), Date)
    outcome = Outcome(status="noop")
    lower_bounds = REMINDER_DAYS[1:] + (0,)
    for days, after in zip(REMINDER_DAYS, lower_bounds, strict=True):
        key = (literal("expiry-reminder:") + cast(Customer.id, String) + ":" + func.to_char(expires_on, "YYYY-MM-DD")
               + f":{days}")
        already = exists().where(EmailSend.shop_id == shop_id, EmailSend.send_key == key)
        rows = session.execute(
            select(Customer.id, expires_on).where(
                Customer.shop_id == shop_id, Customer.points_balance > 0, Customer.accepts_marketing.is_(True),
                Customer.email.is_not(None), Customer.unsubscribed_at.is_(None), Customer.redacted_at.is_(None),
                expires_on > today + timedelta(days=after), expires_on <= today + timedelta(days=days), ~already,
            ).order_by(Customer.id)
        ).all()
        for customer_id, when in rows:
            outcome.intents.append(NotifyCustomer(shop_id, customer_id, "points_expiring",
                                                  key=reminder_key(customer_id, when, days)))
    if outcome.intents:
        outcome.status = "applied"
    return outcome
