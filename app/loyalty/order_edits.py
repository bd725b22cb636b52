"""Order edits: items added after checkout earn what they add (Shopify's `orders/edited`).

The order's amounts only ever grow here; app.loyalty.orders keeps the sale, its points and
their reversal, whose steps this reuses.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from app.loyalty import tiers
from app.loyalty.events import OrderEdited, OrderSnapshot, Outcome
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.orders import (GrantTerms, eligible_amount, find_order, grant_terms, lock_order, non_earning_amount,
                                order_customer, record_order, shop_and_settings)
from app.loyalty.program import ProgramSettings
from app.loyalty.reversals import points_key, sync_reversal
from app.models import Customer, Order


def apply_order_edited(session: Session, shop_id: int, event: OrderEdited) -> Outcome:
    """Items added after checkout earn what they add; the order's amounts only ever grow here (what a
    removal gives back comes as a refund, reversed against the order as paid: lowering them too would
    take those points twice). The points are worked out afresh on the grown amount, at the rate and
    multiplier the order earned at (on its earn basis, rounded its way), and the difference is keyed
    by the new total: a replay, or an older edit applied after a newer one, finds nothing left to grant."""
    shop, settings = shop_and_settings(session, shop_id)
    lock_order(session, shop_id, event.platform_order_id)
    order = find_order(session, shop_id, event.platform_order_id)
    snapshot = event.order
    if order is None:
        # Edited before its sale reached us: kept as edited, so the sale (whose payload may be from
        # before the edit, and then is stale) earns on it.
        record_order(session, shop_id, settings, snapshot, order_customer(session, shop_id, snapshot))
        return Outcome()
    if order.status == "cancelled" or order.points_status == "void":
        return Outcome(status="noop")
    customer = lock_customer(session, shop_id, order.customer_id) if order.customer_id else None
    if snapshot.updated_at is not None and (order.platform_updated_at is None
                                            or snapshot.updated_at > order.platform_updated_at):
        order.platform_updated_at = snapshot.updated_at
    # A granted order grows on the basis its points were worked out on, not today's: on a changed
    # basis the edited order's eligible amount would count its untouched part again, or fall short.
    terms = (grant_terms(session, settings, order, customer)
             if customer is not None and order.points_status in ("pending", "awarded") else None)
    basis = terms.basis if terms is not None else settings.earn_basis
    if not edit_grows(order, snapshot, basis):
        return Outcome(status="noop")
    eligible, total = eligible_amount(snapshot, basis), snapshot.total
    if customer is not None and order.paid_at is not None:
        customer.total_spent += max(total - order.total, Decimal("0"))  # the sale as counted grew
    order.subtotal, order.total = max(order.subtotal, snapshot.subtotal), max(order.total, total)
    order.eligible_amount = max(order.eligible_amount, eligible)
    # A gift card added by the edit earns nothing: the refund share's base grows by what earns only.
    order.non_earning_amount = max(order.non_earning_amount, non_earning_amount(snapshot))
    outcome = Outcome()
    if customer is None:
        return outcome  # a guest order: its claim counts and awards the grown amounts
    # Not granted yet (award on fulfilment, a test order the shop does not count): the award uses them.
    if terms is not None:
        _grant_growth(session, settings, terms, order, customer, event)
    if order.paid_at is not None:
        outcome.intents += tiers.promote_if_qualified(session, shop, settings, customer, event.occurred_at)
    return outcome


def edit_grows(order: Order, snapshot: OrderSnapshot, basis: str) -> bool:
    """Whether an edit leaving the order as `snapshot` grows what it earns on or its total: nothing
    else is applied (apply_order_edited). With the snapshot's gift cards unknown and taken as none,
    a False still holds (gift cards only lower the eligible amount)."""
    return eligible_amount(snapshot, basis) > order.eligible_amount or snapshot.total > order.total


def _grant_growth(session: Session, settings: ProgramSettings, terms: GrantTerms, order: Order, customer: Customer,
                  event: OrderEdited) -> None:
    rate, multiplier = terms.rate, terms.multiplier
    target = terms.round_points(order.eligible_amount * rate * multiplier) + order.bonus_points
    grant = target - order.points_earned
    if grant <= 0:
        return
    order.points_earned = target
    held = order.points_status == "pending"  # its return window runs on: the release takes it all
    post_entry(session, customer, kind="earn", key=f"{points_key(order)}:edit:{target}", now=event.occurred_at,
               points=0 if held else grant, pending_delta=grant if held else 0, source="order", order_id=order.id,
               details={"edit_id": event.edit_id, "eligible_amount": str(order.eligible_amount), "rate": str(rate),
                        "multiplier": str(multiplier)})
    # Refunds already counted take their share of the grown order (never less than was taken).
    sync_reversal(session, settings, order, customer, event.occurred_at)
