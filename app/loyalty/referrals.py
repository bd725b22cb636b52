"""Referrals: a friend arrives with an advocate's code; both are rewarded, within the rules.

Rules: no self-referral (same customer, or the same normalised email), the friend must be
new (no earlier paid order), and an advocate is rewarded at most `referral_weekly_cap`
times per rolling 7 days. The friend's welcome points come when they are attributed; the
advocate's when the friend's first order's points are granted, i.e. after any pending
(return-window) period, so a refunded first order never pays the advocate.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.loyalty import tiers
from app.loyalty.customers import find_by_referral_code
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.program import ProgramSettings, program_settings
from app.models import Customer, EarnRule, Order, Referral, ReferralClick, Shop, for_shop

# A visitor's clicks on one link within this window are one click (see record_click).
CLICK_WINDOW = timedelta(hours=24)


def attribute(session: Session, shop: Shop, friend: Customer, code: str, at: datetime,
              order: Order | None = None) -> list:
    """Record that (locked) `friend` came through `code`; idempotent per friend."""
    advocate = find_by_referral_code(session, shop.id, code)
    if advocate is None:
        return []
    if session.scalars(for_shop(Referral, shop.id).where(Referral.friend_id == friend.id)).first() is not None:
        return []
    reason = rejection_reason(advocate, friend, order, _earlier_guest_orders(session, shop.id, friend, advocate))
    referral_id = session.execute(
        insert(Referral)
        .values(shop_id=shop.id, advocate_id=advocate.id, friend_id=friend.id,
                status="rejected" if reason else "pending", rejection_reason=reason)
        .on_conflict_do_nothing(index_elements=["shop_id", "friend_id"])
        .returning(Referral.id)
    ).scalar_one_or_none()
    if referral_id is None or reason:
        return []
    friend.referred_by_id = advocate.id
    intents: list = []
    rule = _rule(session, shop.id, "referral_friend")
    if rule is not None and rule.points:
        post_entry(session, friend, kind="earn", key=f"referral:{referral_id}:friend", now=at, points=rule.points,
                   source="referral_friend", details={"advocate_id": advocate.id})
        intents += tiers.promote_on_points(session, shop, friend, at)
    if order is not None and order.points_status == "awarded":
        intents += complete_for_order(session, shop, program_settings(shop), friend, order, at)
    return intents


def advocate_for_link(session: Session, code: str) -> Customer | None:
    """The advocate behind a /r/<code> link. Codes are unique across shops, so the code alone
    names the shop; erased customers' links lead nowhere."""
    return session.scalars(
        select(Customer).where(Customer.referral_code == code.strip().upper(), Customer.redacted_at.is_(None))
    ).first()


def record_click(session: Session, shop_id: int, advocate_id: int, at: datetime, *, ip_hash: str | None,
                 user_agent: str | None) -> bool:
    """A friend's browser followed the advocate's link (kept for the merchant's referral funnel).
    Counted once per visitor (IP hash) and link per CLICK_WINDOW: reloads or a script looping on
    the link are one visit, not thousands. Returns whether it was counted."""
    if ip_hash is not None and session.scalar(
            select(ReferralClick.id).where(ReferralClick.shop_id == shop_id, ReferralClick.advocate_id == advocate_id,
                                           ReferralClick.clicked_at > at - CLICK_WINDOW,
                                           ReferralClick.ip_hash == ip_hash).limit(1)) is not None:
        return False
    session.add(ReferralClick(shop_id=shop_id, advocate_id=advocate_id, clicked_at=at, ip_hash=ip_hash,
                              user_agent=(user_agent or None) and user_agent[:512]))
    return True


def rejection_reason(advocate: Customer, friend: Customer, order: Order | None, guest_orders: int = 0) -> str | None:
    if advocate.id == friend.id:
        return "self_referral"
    if advocate.email_normalized and advocate.email_normalized == friend.email_normalized:
        return "self_referral"
    counted_now = 1 if order is not None and order.customer_id == friend.id and order.paid_at is not None else 0
    if friend.orders_count - counted_now + guest_orders > 0:
        return "existing_customer"
    return None


def _earlier_guest_orders(session: Session, shop_id: int, friend: Customer, advocate: Customer) -> int:
    """Paid guest orders under the friend's email (not yet claimed by an account: a sign-up claims
    them just after attribution), other than ones placed with this advocate's code, i.e. the
    friend's first order as a guest through the link. A guest who already bought is no new friend."""
    if not friend.email_normalized:
        return 0
    return session.scalar(
        select(func.count()).select_from(Order).where(
            Order.shop_id == shop_id, Order.customer_id.is_(None), Order.email_normalized == friend.email_normalized,
            Order.paid_at.is_not(None), Order.status != "cancelled",
            func.coalesce(func.upper(func.trim(Order.referral_code)), "") != advocate.referral_code)
    )


def completed_email_key(referral_id: int) -> str:
    """The referral_completed email's send key (app.loyalty.owed_emails rebuilds it from the
    completed referral, so both must be this one)."""
    return f"referral:{referral_id}"


def complete_for_order(session: Session, shop: Shop, settings: ProgramSettings, friend: Customer, order: Order,
                       at: datetime) -> list:
    """The friend's order points were granted: reward the advocate (once, within the cap)."""
    if friend.referred_by_id is None:
        return []  # attribute() sets it with every pending referral: no lookup for the unreferred
    referral = session.scalars(
        for_shop(Referral, shop.id).where(Referral.friend_id == friend.id, Referral.status == "pending").with_for_update()
    ).first()
    if referral is None:
        return []
    advocate = lock_customer(session, shop.id, referral.advocate_id)
    recent = session.execute(
        select(func.count()).select_from(Referral).where(
            Referral.shop_id == shop.id, Referral.advocate_id == advocate.id, Referral.status == "completed",
            Referral.completed_at > at - timedelta(days=7))
    ).scalar_one()
    referral.order_id = order.id
    if advocate.redacted_at is not None:  # erased since the attribution: no points, no email
        referral.status = "rejected"
        referral.rejection_reason = "advocate_erased"
        return []
    if recent >= settings.referral_weekly_cap:
        referral.status = "rejected"
        referral.rejection_reason = "weekly_cap"
        return []
    rule = _rule(session, shop.id, "referral_advocate")
    if rule is not None and rule.points:
        post_entry(session, advocate, kind="earn", key=f"referral:{referral.id}:advocate", now=at, points=rule.points,
                   source="referral_advocate", details={"friend_id": friend.id, "order_id": order.id})
    referral.status = "completed"
    referral.completed_at = at
    advocate.referrals_completed += 1
    return [NotifyCustomer(shop.id, advocate.id, "referral_completed", key=completed_email_key(referral.id)),
            *tiers.promote_on_points(session, shop, advocate, at)]


def _rule(session: Session, shop_id: int, kind: str) -> EarnRule | None:
    return session.scalars(
        for_shop(EarnRule, shop_id).where(EarnRule.kind == kind, EarnRule.active.is_(True))
    ).first()
