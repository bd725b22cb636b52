"""Emails that committed facts owe: derived again, so one whose job was lost still goes out.

A job commits its change, then dispatches the emails it asks for (jobs.dispatch). If Redis fails,
or the worker dies, in between, the change stands and its email is gone: no later run asks for
it again (the promotion, the referral, the expiry and the code are done). Rather than an outbox
row written with each fact (a write on every path that makes one, the common sale among them),
the emails are derived from the facts themselves, within LOOK_BACK:

- tier_reached: customers whose tier was reached in the window (tier_achieved_at), above the
  entry tier (threshold 0 gets no email), and not set by the period review (it sends none);
- referral_completed: referrals completed in the window;
- points_expired: `expire` ledger entries posted in the window (the email's key is the entry's);
- reward_issued: redemptions issued in the window, still issued.

Each email has the key its own path gives it (the key functions are shared), so one that was
sent, skipped or is being sent has its email_sends row and is left out here; jobs.emails records
each (shop, key) once, so queueing one again can never send it twice. The caller also leaves out
those whose job Redis still holds (jobs.emails.without_email_jobs).

Facts are dated by their event (an order's paid time, the job's clock), so one that reached us
already older than LOOK_BACK (a webhook delivered days late) is not covered; its email was lost
only if Redis failed at that very moment too.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.loyalty.intents import NotifyCustomer
from app.loyalty.redemptions import code_email_key
from app.loyalty.referrals import completed_email_key
from app.loyalty.tiers import tier_reached_key
from app.models import Customer, EmailSend, LedgerEntry, Redemption, Referral, Tier, TierReview

# How far back a lost email is still sent: longer than a Redis outage is expected to last, short
# enough that a congratulation does not arrive days after the news (and the reads stay small).
LOOK_BACK = timedelta(hours=48)
# Facts younger than this are left to their own dispatch, which may still be under way.
SETTLE = timedelta(minutes=5)
_KEY_BATCH = 1000


def owed_emails(session: Session, shop_id: int, now: datetime) -> list[NotifyCustomer]:
    """The shop's emails that facts from LOOK_BACK before `now` owe and email_sends has no row for.
    One indexed range read per template, then one probe of email_sends' unique index per key."""
    since, until = now - LOOK_BACK, now - SETTLE
    owed = [*_tier_emails(session, shop_id, since, until), *_referral_emails(session, shop_id, since, until),
            *_expired_emails(session, shop_id, since, until), *_code_emails(session, shop_id, since, until)]
    recorded: set[str] = set()
    for start in range(0, len(owed), _KEY_BATCH):
        keys = [email.key for email in owed[start:start + _KEY_BATCH]]
        recorded.update(session.scalars(
            select(EmailSend.send_key).where(EmailSend.shop_id == shop_id, EmailSend.send_key.in_(keys))))
    return [email for email in owed if email.key not in recorded]


def _tier_emails(session: Session, shop_id: int, since: datetime, until: datetime) -> list[NotifyCustomer]:
    rows = session.execute(
        select(Customer.id, Customer.tier_id).join(Tier, (Tier.id == Customer.tier_id) & (Tier.shop_id == shop_id))
        .where(Customer.shop_id == shop_id, Customer.tier_achieved_at >= since, Customer.tier_achieved_at < until,
               Tier.threshold > 0,
               # The period review dates what it sets (down as well as up, with no email) at the
               # period start it recorded: a demotion must not be congratulated.
               ~exists().where(TierReview.shop_id == shop_id, TierReview.reviewed_through == Customer.tier_achieved_at))
        .order_by(Customer.id)
    ).all()
    return [NotifyCustomer(shop_id, customer_id, "tier_reached", tier_reached_key(tier_id, customer_id))
            for customer_id, tier_id in rows]


def _referral_emails(session: Session, shop_id: int, since: datetime, until: datetime) -> list[NotifyCustomer]:
    rows = session.execute(
        select(Referral.id, Referral.advocate_id)
        .where(Referral.shop_id == shop_id, Referral.status == "completed", Referral.completed_at >= since,
               Referral.completed_at < until)
        .order_by(Referral.id)
    ).all()
    return [NotifyCustomer(shop_id, advocate_id, "referral_completed", completed_email_key(referral_id))
            for referral_id, advocate_id in rows]


def _expired_emails(session: Session, shop_id: int, since: datetime, until: datetime) -> list[NotifyCustomer]:
    rows = session.execute(
        select(LedgerEntry.customer_id, LedgerEntry.idempotency_key)
        .where(LedgerEntry.shop_id == shop_id, LedgerEntry.created_at >= since, LedgerEntry.created_at < until,
               LedgerEntry.kind == "expire")
        .order_by(LedgerEntry.id)
    ).all()
    return [NotifyCustomer(shop_id, customer_id, "points_expired", key) for customer_id, key in rows]


def _code_emails(session: Session, shop_id: int, since: datetime, until: datetime) -> list[NotifyCustomer]:
    rows = session.execute(
        select(Redemption.id, Redemption.customer_id)
        .where(Redemption.shop_id == shop_id, Redemption.status == "issued", Redemption.issued_at >= since,
               Redemption.issued_at < until)
        .order_by(Redemption.id)
    ).all()
    return [NotifyCustomer(shop_id, customer_id, "reward_issued", code_email_key(redemption_id))
            for redemption_id, customer_id in rows]
