"""Points for things other than orders: signing up, birthdays, custom merchant actions."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import and_, exists, extract, or_, select
from sqlalchemy.orm import Session

from app.loyalty import orders, referrals, tiers
from app.loyalty.calendar import is_birthday
from app.loyalty.customers import upsert_customer
from app.loyalty.errors import NotFound
from app.loyalty.events import CustomActionCompleted, CustomerUpserted, Outcome
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.program import program_settings
from app.models import Customer, EarnRule, EmailSend, LedgerEntry, Shop, for_shop


def apply_customer_upserted(session: Session, shop_id: int, event: CustomerUpserted) -> Outcome:
    customer, created = upsert_customer(session, shop_id, event.customer)
    customer = lock_customer(session, shop_id, customer.id)
    outcome = Outcome()
    # Keyed per customer, so it is granted once even if an order created the row first.
    if event.account_created:
        rule = _rule(session, shop_id, "signup")
        if rule is not None and rule.points:
            post_entry(session, customer, kind="earn", key=f"customer:{customer.id}:signup", now=event.occurred_at,
                       points=rule.points, source="signup")
    shop = session.get(Shop, shop_id)
    if event.referral_code:
        outcome.intents += referrals.attribute(session, shop, customer, event.referral_code, event.occurred_at)
    outcome.intents += orders.claim_guest_orders(session, shop_id, customer, event.occurred_at)
    if created:  # a new member starts in the entry tier (threshold 0), if the shop has one
        outcome.intents += tiers.promote_if_qualified(session, shop, program_settings(shop), customer, event.occurred_at)
    elif event.account_created:  # a known shopper's signup points may lift a points-based tier
        outcome.intents += tiers.promote_on_points(session, shop, customer, event.occurred_at)
    return outcome


def apply_custom_action(session: Session, shop_id: int, event: CustomActionCompleted) -> Outcome:
    rule = _rule(session, shop_id, "custom", event.action_key)
    if rule is None or not rule.points:
        raise NotFound(f"no active custom action {event.action_key!r}", code="unknown_action")
    customer = session.scalars(
        for_shop(Customer, shop_id).where(Customer.platform_customer_id == event.platform_customer_id)
    ).first()
    if customer is None:
        raise NotFound("no such customer", code="customer_not_found")
    customer = lock_customer(session, shop_id, customer.id)
    posted = post_entry(session, customer, kind="earn", key=f"custom:{event.action_key}:{customer.id}:{event.event_key}",
                        now=event.occurred_at, points=rule.points, source=f"custom:{event.action_key}")
    if not posted:
        return Outcome(status="noop")
    return Outcome(intents=tiers.promote_on_points(session, session.get(Shop, shop_id), customer, event.occurred_at))


def award_birthdays(session: Session, shop_id: int, today: date, now: datetime) -> Outcome:
    """Birthday points for everyone whose birthday is `today` (the shop's local date); once a year."""
    rule = _rule(session, shop_id, "birthday")
    if rule is None or not rule.points:
        return Outcome(status="noop")
    ids = _birthday_ids(session, shop_id, today)
    outcome = Outcome(status="applied" if ids else "noop")
    shop = session.get(Shop, shop_id)
    for customer_id in ids:
        customer = lock_customer(session, shop_id, customer_id)
        if customer.birthday is None or not is_birthday(customer.birthday, today):
            continue  # Feb 29 birthdays on Feb 28 of a leap year wait for the 29th
        key = f"birthday:{customer.id}:{today.year}"
        if post_entry(session, customer, kind="earn", key=key, now=now, points=rule.points, source="birthday"):
            outcome.intents.append(NotifyCustomer(shop_id, customer.id, "birthday", key=key))
            outcome.intents += tiers.promote_on_points(session, shop, customer, now)
    return outcome


def unqueued_birthday_emails(session: Session, shop_id: int, today: date) -> list[NotifyCustomer]:
    """Today's birthday emails whose points were granted but that have no email_sends row: the
    run that granted them died (or lost Redis) between its commit and queueing them, and later
    runs find the ledger key used. One probe of each unique index for today's birthdays."""
    keys = {f"birthday:{customer_id}:{today.year}": customer_id for customer_id in _birthday_ids(session, shop_id, today)}
    if not keys:
        return []
    granted = session.scalars(
        select(LedgerEntry.idempotency_key).where(
            LedgerEntry.shop_id == shop_id, LedgerEntry.idempotency_key.in_(list(keys)),
            ~exists().where(EmailSend.shop_id == shop_id, EmailSend.send_key == LedgerEntry.idempotency_key))
    ).all()
    return [NotifyCustomer(shop_id, keys[key], "birthday", key=key) for key in sorted(granted)]


def _birthday_ids(session: Session, shop_id: int, today: date) -> list[int]:
    """Customers whose birthday month and day are `today`'s (and 29 February ones on a 28 February)."""
    month_day = and_(extract("month", Customer.birthday) == today.month, extract("day", Customer.birthday) == today.day)
    if (today.month, today.day) == (2, 28):
        month_day = or_(month_day, and_(extract("month", Customer.birthday) == 2, extract("day", Customer.birthday) == 29))
    return list(session.scalars(
        select(Customer.id).where(Customer.shop_id == shop_id, Customer.redacted_at.is_(None), month_day)
    ).all())


def _rule(session: Session, shop_id: int, kind: str, action_key: str = "") -> EarnRule | None:
    return session.scalars(
        for_shop(EarnRule, shop_id).where(EarnRule.kind == kind, EarnRule.action_key == action_key,
                                          EarnRule.active.is_(True))
    ).first()
