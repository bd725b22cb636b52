"""The return window: an order's points held for `pending_days`, then released.

A refund or cancellation inside the window takes the held points back first (app.loyalty.orders);
what is left when the window ends becomes spendable here, and only then does the order complete a
referral or count towards a points-based tier.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.loyalty import referrals, tiers
from app.loyalty.events import Outcome
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.orders import lock_order, shop_and_settings
from app.loyalty.reversals import collect_earlier_rest, fully_taken_back, points_key
from app.models import Order, for_shop


def release_pending_points(session: Session, shop_id: int, now: datetime, limit: int = 500,
                           after_id: int = 0) -> Outcome:
    """Orders whose return window has passed: their held points become spendable.

    One batch (orders by id after `after_id`); a full batch sets outcome.resume_after."""
    shop, settings = shop_and_settings(session, shop_id)
    due = session.execute(
        select(Order.id, Order.platform_order_id)
        .where(Order.shop_id == shop_id, Order.points_status == "pending", Order.pending_until <= now,
               Order.id > after_id)
        .order_by(Order.id).limit(limit)
    ).all()
    outcome = Outcome(status="applied" if due else "noop", resume_after=due[-1][0] if len(due) == limit else None)
    for order_id, platform_order_id in due:
        lock_order(session, shop_id, platform_order_id)
        order = session.scalars(for_shop(Order, shop_id).where(Order.id == order_id)
                                .execution_options(populate_existing=True)).one()
        if order.points_status != "pending" or order.customer_id is None:
            continue
        if order.status == "cancelled" or (order.points_earned > 0 and fully_taken_back(order)):
            # Cancelled or fully refunded within the return window: nothing was granted, so it
            # does not complete a referral or count as awarded. Judged on the money, as the grant
            # without a window is (referrals.complete_for_order): a partial refund whose reversal
            # rounded up to all the points (39.50 of 40.00) leaves the order standing, released
            # with nothing left to release.
            order.points_status = "void"
            continue
        customer = lock_customer(session, shop_id, order.customer_id)
        amount = order.points_earned - order.points_reversed
        key = f"{points_key(order)}:release"
        post_entry(session, customer, kind="release", key=key, now=now,
                   points=amount, pending_delta=-amount, source="order", order_id=order.id)
        order.grant_expire_id = customer.last_expire_id
        collect_earlier_rest(session, order, customer, amount, now)
        order.points_status = "awarded"
        outcome.intents += referrals.complete_for_order(session, shop, settings, customer, order, now)
        outcome.intents += tiers.promote_if_qualified(session, shop, settings, customer, now)
    return outcome
