"""Refunds the store no longer lists: withdrawn, and their points given back.

A WooCommerce merchant can delete a refund from an order. WooCommerce sends no webhook for it
(woocommerce/woocommerce#26532: the deletion fires `woocommerce_refund_deleted`, which no
webhook topic listens to) and does not save the order, but every later state of the order lists
its refunds without it. The WooCommerce parser turns that list into OrderRefundsListed; a refund
we recorded from a state no newer than the list's, and missing from it, is withdrawn:
- it stays in order_refunds, marked withdrawn_at, so a late delivery still listing it is a
  replay (its insert finds the row) and never counts it again;
- if it was counted in its order, it leaves refunded_amount (and the customer's total spent
  gets it back), and the reversal's target comes down: sync_reversal(withdrawn=True) gives the
  difference back, forgiving what a clamped balance left uncollected first, then what an expiry
  had covered, then points to the balance;
- one not yet counted (its order never arrived) is simply never counted;
- an order refunded in full inside its return window was voided at its release: what comes back
  is released now (reversals._give_back), and the order completes a pending referral as its
  release would have.
A referral reward taken back when the order was fully refunded stays taken back (a reversed
referral is final, as for a restored order).
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.loyalty import referrals, tiers
from app.loyalty.events import OrderRefundsListed, Outcome
from app.loyalty.ledger import lock_customer
from app.loyalty.orders import lock_order, shop_and_settings
from app.loyalty.reversals import sync_reversal
from app.models import Order, OrderRefund, for_shop


def apply_order_refunds_listed(session: Session, shop_id: int, event: OrderRefundsListed) -> Outcome:
    """Withdraw the order's refunds the list leaves out (see the module's doc). One statement when
    none is left out (every WooCommerce order save)."""
    if not _left_out(session, shop_id, event):
        return Outcome(status="noop")
    shop, settings = shop_and_settings(session, shop_id)
    lock_order(session, shop_id, event.platform_order_id)
    gone = _left_out(session, shop_id, event)  # again under the lock: another delivery may have done it
    if not gone:
        return Outcome(status="noop")
    order = session.scalars(for_shop(Order, shop_id).where(Order.platform_order_id == event.platform_order_id)
                            .execution_options(populate_existing=True)).first()
    counted = [refund for refund in gone if refund.applied_at is not None]
    for refund in gone:
        refund.withdrawn_at = event.occurred_at
    if order is None or not counted:
        return Outcome()
    customer = lock_customer(session, shop_id, order.customer_id) if order.customer_id else None
    for refund in counted:
        order.refunded_amount -= refund.amount
        order.refunded_non_earning -= refund.non_earning
        order.refunds_withdrawn += 1
        if customer is not None and order.paid_at is not None and order.status != "cancelled":
            customer.total_spent += refund.amount  # as _absorb_refunds took it off
    outcome = Outcome()
    if customer is not None and order.status != "cancelled":  # a cancellation keeps taking everything
        voided = order.points_status == "void"  # refunded in full inside its return window
        sync_reversal(session, settings, order, customer, event.occurred_at, withdrawn=True)
        if voided and order.points_status == "awarded":  # released by the withdrawal: the order stands
            outcome.intents += referrals.complete_for_order(session, shop, settings, customer, order,
                                                            event.occurred_at)
        if order.paid_at is not None:
            outcome.intents += tiers.promote_if_qualified(session, shop, settings, customer, event.occurred_at)
    return outcome


def _left_out(session: Session, shop_id: int, event: OrderRefundsListed) -> list[OrderRefund]:
    """The order's refunds not withdrawn yet, recorded from a state no newer than the list's, and
    not in it. A delivered list must be strictly newer (a payload saved in the same second as the
    refund's may predate it); the store read now (`current`) may be as new."""
    recorded = OrderRefund.occurred_at <= event.occurred_at if event.current else OrderRefund.occurred_at < event.occurred_at
    stmt = for_shop(OrderRefund, shop_id).where(
        OrderRefund.platform_order_id == event.platform_order_id, OrderRefund.withdrawn_at.is_(None), recorded)
    if event.refund_ids:
        stmt = stmt.where(OrderRefund.platform_refund_id.not_in(event.refund_ids))
    return session.scalars(stmt.order_by(OrderRefund.id).execution_options(populate_existing=True)).all()
