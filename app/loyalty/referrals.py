"""Referrals: a friend arrives with an advocate's code; both are rewarded, within the rules.

Rules: no self-referral (same customer, or the same normalised email), the friend must be
new (no paid order before their first one with the code), judged at attribution and again
before the advocate is paid (an order can reach us before its account's email), and an
advocate is rewarded at most `referral_weekly_cap` times per rolling 7 days. The friend's welcome points come when they are attributed; the
advocate's when the friend's first order's points are granted, i.e. after any pending
(return-window) period, so a refunded first order never pays the advocate. If that order is
fully refunded or cancelled after the grant, the advocate's reward is taken back
(take_back_for_order) and the referral is `reversed`: it still counts toward the weekly cap.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.loyalty import tiers
from app.loyalty.customers import find_by_referral_code
from app.loyalty.intents import NotifyCustomer
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.program import ProgramSettings, program_settings
from app.loyalty.reversals import clamped, expiry_cover_after, fully_taken_back
from app.models import Customer, EarnRule, LedgerEntry, Order, Referral, ReferralClick, Shop, for_shop

# A visitor's clicks on one link within this window are one click (see record_click).
CLICK_WINDOW = timedelta(hours=24)
# Rewards the weekly cap counts: a reward taken back still used its slot (no refund-and-reorder loop).
CAPPED_STATUSES = ("completed", "reversed")


def attribute(session: Session, shop: Shop, friend: Customer, code: str, at: datetime,
              order: Order | None = None) -> list:
    """Record that (locked) `friend` came through `code`; idempotent per friend."""
    advocate = find_by_referral_code(session, shop.id, code)
    if advocate is None:
        return []
    if session.scalars(for_shop(Referral, shop.id).where(Referral.friend_id == friend.id)).first() is not None:
        return []
    counted_now = 1 if order is not None and order.customer_id == friend.id and order.paid_at is not None else 0
    emails = _emails(friend, order)
    earlier = friend.orders_count - counted_now
    if earlier or emails:  # a friend with no earlier order and no email known: no statement
        earlier = _earlier_orders(session, shop.id, friend, advocate, emails,
                                  order.paid_at if order is not None else None, own=order is not None)
        earlier += 0 if order is not None else friend.orders_count
    reason = rejection_reason(advocate, friend, order, earlier)
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


def rejection_reason(advocate: Customer, friend: Customer, order: Order | None, earlier_orders: int = 0) -> str | None:
    """Why `friend` is no referral of `advocate`'s: self-referral (the same customer, or the
    advocate's normalised email on the friend or on the order, its billing email), or a friend who
    had `earlier_orders` (paid before their first order with this advocate's code)."""
    if advocate.id == friend.id:
        return "self_referral"
    if advocate.email_normalized and advocate.email_normalized in _emails(friend, order):
        return "self_referral"
    if earlier_orders > 0:
        return "existing_customer"
    return None


def _emails(friend: Customer, order: Order | None) -> list[str]:
    """The friend's emails known: their account's, and the order's own (billing) email, which a
    WooCommerce order naming its customer by id alone carries before we know the account's."""
    emails = [friend.email_normalized, order.email_normalized if order is not None else None]
    return sorted({e for e in emails if e})


def _earlier_orders(session: Session, shop_id: int, friend: Customer, advocate: Customer, emails: list[str],
                    before: datetime | None, *, own: bool = True) -> int:
    """Paid, live orders the friend placed before `before` (any time if None) other than ones with
    this advocate's code: their own (if `own`) and guest orders under one of `emails` not yet
    claimed by an account (a sign-up claims them just after attribution). Orders with the code are
    the friend's first order through the link (a guest's included), or later ones: no earlier sale."""
    whose = [Order.customer_id == friend.id] if own else []
    if emails:
        whose.append(and_(Order.customer_id.is_(None), Order.email_normalized.in_(emails)))
    if not whose:
        return 0
    query = select(func.count()).select_from(Order).where(
        Order.shop_id == shop_id, or_(*whose), Order.paid_at.is_not(None), Order.status != "cancelled",
        func.coalesce(func.upper(func.trim(Order.referral_code)), "") != advocate.referral_code)
    if before is not None:
        query = query.where(Order.paid_at < before)
    return session.scalar(query)


def _rejudge(session: Session, shop_id: int, advocate: Customer, friend: Customer, order: Order) -> str | None:
    """The rules again when the advocate would be paid, with what is known by then: an order can
    reach us before its account's profile (a WooCommerce order names its customer by id), so the
    friend's email, and the guest orders under it, may be known only now. Earlier means before the
    friend's first order with this advocate's code (or, attributed at sign-up, their first order)."""
    coded = func.coalesce(func.upper(func.trim(Order.referral_code)), "") == advocate.referral_code
    first_coded, first = session.execute(
        select(func.min(Order.paid_at).filter(coded), func.min(Order.paid_at)).where(
            Order.shop_id == shop_id, Order.customer_id == friend.id, Order.paid_at.is_not(None),
            Order.status != "cancelled")
    ).one()
    before = first_coded or first or order.paid_at
    return rejection_reason(advocate, friend, order,
                            _earlier_orders(session, shop_id, friend, advocate, _emails(friend, order), before))


def completed_email_key(referral_id: int) -> str:
    """The referral_completed email's send key (app.loyalty.owed_emails rebuilds it from the
    completed referral, so both must be this one)."""
    return f"referral:{referral_id}"


def complete_for_order(session: Session, shop: Shop, settings: ProgramSettings, friend: Customer, order: Order,
                       at: datetime) -> list:
    """The friend's order points were granted: reward the advocate (once, within the cap). An order
    with nothing that earns (eligible_amount 0) completes nothing: a later paid order does."""
    if friend.referred_by_id is None:
        return []  # attribute() sets it with every pending referral: no lookup for the unreferred
    if fully_taken_back(order):
        return []  # refunded in full before its grant (the refund came first): it pays nobody
    if order.eligible_amount <= 0:
        return []  # paid nothing that earns (a 100% discount): the referral waits for a paid order
    referral = session.scalars(
        for_shop(Referral, shop.id).where(Referral.friend_id == friend.id, Referral.status == "pending").with_for_update()
    ).first()
    if referral is None:
        return []
    advocate = lock_customer(session, shop.id, referral.advocate_id)
    recent = session.execute(
        select(func.count()).select_from(Referral).where(
            Referral.shop_id == shop.id, Referral.advocate_id == advocate.id, Referral.status.in_(CAPPED_STATUSES),
            Referral.completed_at > at - timedelta(days=7))
    ).scalar_one()
    referral.order_id = order.id
    reason = _rejudge(session, shop.id, advocate, friend, order)
    if reason:  # the friend keeps their welcome points (README: never taken back)
        referral.status = "rejected"
        referral.rejection_reason = reason
        return []
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
        post_entry(session, advocate, kind="earn", key=advocate_key(referral.id), now=at, points=rule.points,
                   source="referral_advocate", details={"friend_id": friend.id, "order_id": order.id})
    referral.status = "completed"
    referral.completed_at = at
    advocate.referrals_completed += 1
    return [NotifyCustomer(shop.id, advocate.id, "referral_completed", key=completed_email_key(referral.id)),
            *tiers.promote_on_points(session, shop, advocate, at)]


def advocate_key(referral_id: int) -> str:
    return f"referral:{referral_id}:advocate"


def take_back_for_order(session: Session, shop: Shop, settings: ProgramSettings, friend: Customer, order: Order,
                        at: datetime) -> None:
    """The (locked) friend's order was fully refunded or cancelled: if it is the order that
    completed their referral, take the advocate's reward back, once.

    The reversal takes what the reward entry granted, less what an expiry already took of it,
    and on a shop with negative_balance = clamp only what the advocate's balance holds (the rest
    is recorded as uncollected), as reversals.sync_reversal does for an order. The referral
    becomes `reversed` (it keeps its completed_at: it still counts toward the weekly cap) and
    the advocate's referrals_completed (the ladder's count) goes down by one.
    A reversed referral is final: the order being restored later does not reward the advocate
    again, nor does another order of the friend's (complete_for_order only completes pending ones).
    Sends no statement for an unreferred friend or an order not fully taken back.
    """
    if friend.referred_by_id is None or not fully_taken_back(order):
        return
    referral = session.scalars(
        for_shop(Referral, shop.id).where(Referral.friend_id == friend.id, Referral.order_id == order.id,
                                          Referral.status == "completed").with_for_update()
    ).first()
    if referral is None:
        return  # not the qualifying order, not completed (pending, rejected), or reversed already
    advocate = lock_customer(session, shop.id, referral.advocate_id)
    key = advocate_key(referral.id)
    grant = session.execute(
        select(LedgerEntry.id, LedgerEntry.points).where(LedgerEntry.shop_id == shop.id,
                                                         LedgerEntry.idempotency_key == key)
    ).first()
    if grant is not None and grant.points > 0:  # no entry: the rule gave nothing
        cover, pool_id = (0, None) if advocate.last_expire_id is None else expiry_cover_after(
            session, advocate, grant.id, grant.points)
        rest = grant.points - cover
        taken = clamped(settings, advocate, rest)
        details = {"friend_id": friend.id, "order_id": order.id, "cancelled": order.status == "cancelled"}
        if cover:
            details["expire_entry_id"] = pool_id
        post_entry(session, advocate, kind="reverse", key=f"{key}:reverse", now=at, points=-taken,
                   uncollected=rest - taken, expiry_cover=cover, source="referral_advocate", details=details)
    referral.status = "reversed"
    advocate.referrals_completed = max(advocate.referrals_completed - 1, 0)


def _rule(session: Session, shop_id: int, kind: str) -> EarnRule | None:
    return session.scalars(
        for_shop(EarnRule, shop_id).where(EarnRule.kind == kind, EarnRule.active.is_(True))
    ).first()
