"""Orders earn points; refunds and cancellations take them back; a restored order earns again.

Every order event takes a transaction-scoped advisory lock on (shop, platform order id)
first, then the customer row: events about one order apply one at a time, in any arrival
order, and replays find their ledger keys already used.

Restorations: a cancelled order can come back (WooCommerce's trash, or a status moved from
cancelled back to processing). Its points are then granted again as a new *generation*
under new ledger keys: generation 0 uses `order:{id}:earn`, `order:{id}:reverse:{n}`,
`order:{id}:release`; generation g >= 1 (orders.points_generation) uses `order:{id}:r{g}:earn`,
... It only ever grows: a replayed restoration finds the order no longer cancelled, and a
replayed earn finds its key used.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.loyalty import referrals, tiers, winback
from app.loyalty.customers import find_by_email, record_sale, reload_sale_history, upsert_customer
from app.loyalty.events import (
    OrderCancelled, OrderFulfilled, OrderPaid, OrderRefunded, OrderRestored, OrderSnapshot, Outcome,
)
from app.loyalty.identity import normalize_email
from app.loyalty.ledger import lock_customer, post_entry
from app.loyalty.program import ROUNDING, ProgramSettings, program_settings
from app.loyalty.reversals import collect_earlier_rest, points_key, sync_reversal
from app.models import Customer, EarnRule, LedgerEntry, Order, OrderRefund, Shop, Tier, for_shop, get_for_shop


def eligible_amount(snapshot: OrderSnapshot, basis: str) -> Decimal:
    """The amount an order earns on, per the shop's earn basis (never below zero). Gift cards
    bought in the order earn on no basis: they earn when spent; nor do tips (in the total only)."""
    total = snapshot.total - snapshot.tips
    amounts = {
        "subtotal": snapshot.subtotal,
        "total": total,
        "total_excl_tax": total - snapshot.total_tax,
        "total_excl_shipping": total - snapshot.total_shipping,
    }
    return max(amounts[basis] - snapshot.gift_cards, Decimal("0"))


def non_earning_amount(snapshot: OrderSnapshot) -> Decimal:
    """The part of the order's total that earns on no basis (gift cards bought, tips): a refund's
    share is of the rest (reversals.sync_reversal)."""
    return min(max(snapshot.gift_cards + snapshot.tips, Decimal("0")), max(snapshot.total, Decimal("0")))


def apply_order_paid(session: Session, shop_id: int, event: OrderPaid) -> Outcome:
    return _apply_sale(session, shop_id, event.order, event.occurred_at, fulfilled=False, historical=event.historical)


def apply_order_fulfilled(session: Session, shop_id: int, event: OrderFulfilled) -> Outcome:
    # A fulfilled order is a sale even if its "paid" event never came (cash on delivery).
    return _apply_sale(session, shop_id, event.order, event.occurred_at, fulfilled=True)


def _apply_sale(session: Session, shop_id: int, snapshot: OrderSnapshot, at: datetime, *, fulfilled: bool,
                historical: bool = False) -> Outcome:
    shop, settings = shop_and_settings(session, shop_id)
    lock_order(session, shop_id, snapshot.platform_order_id)
    customer = order_customer(session, shop_id, snapshot)
    order = record_order(session, shop_id, settings, snapshot, customer)
    if customer is not None and order.customer_id != customer.id:
        # The order is someone else's, or a guest sale counted without an account (claiming it is
        # claim_guest_orders', within the claim window): its points go to its own customer only.
        customer = lock_customer(session, shop_id, order.customer_id) if order.customer_id else None
    outcome = Outcome()
    if order.status == "cancelled":
        outcome.status = "noop"  # a cancellation arrived first; a late "paid" never earns
        return outcome
    if fulfilled and order.fulfilled_at is None:
        order.fulfilled_at = at
        order.status = "fulfilled"
    if order.paid_at is None and order.is_test and not settings.include_test_orders:
        # A test order is no sale unless the shop counts them (analytics leaves them out too): no
        # stats, tier or Nth-order count, referral. paid_at stays unset, so nothing uncounts it later.
        return outcome
    if order.paid_at is None:
        order.paid_at = at
        order.status = "fulfilled" if order.fulfilled_at else "paid"
        if customer is not None:
            winback.record_order_for_winback(session, shop_id, customer, order, settings)  # before the stats move
            _count_sale(session, shop_id, customer, order)
        if historical and not settings.backfill_points and order.points_status == "none":
            order.points_status = "void"  # imported history: counted in the stats, earns nothing
    # Award first: an order earns at the tier the customer held when placing it.
    if _award_due(settings, order):
        outcome.intents += _award(session, shop, settings, order, customer, at)
    if customer is not None:
        outcome.intents += tiers.promote_if_qualified(session, shop, settings, customer, at)
    # Imported history refers nobody unless the shop earns on history (no welcome points, no
    # pending referral for the friend's next order to complete).
    if customer is not None and snapshot.referral_code and (settings.backfill_points or not historical):
        outcome.intents += referrals.attribute(session, shop, customer, snapshot.referral_code, at, order=order)
    return outcome


def apply_order_cancelled(session: Session, shop_id: int, event: OrderCancelled) -> Outcome:
    shop, settings = shop_and_settings(session, shop_id)
    lock_order(session, shop_id, event.platform_order_id)
    order = find_order(session, shop_id, event.platform_order_id)
    if order is not None and event.time_known and _older_than_applied(event.order, order, event.occurred_at):
        # A late delivery from before a newer state we already applied (e.g. the order was
        # cancelled, then restored, and the cancellation arrives last).
        return Outcome(status="noop")
    if order is None:
        # Cancelled before we saw it: keep a row so a late "paid" does not earn.
        snapshot = event.order or OrderSnapshot(event.platform_order_id, shop.currency, Decimal("0"), Decimal("0"))
        order = record_order(session, shop_id, settings, snapshot, order_customer(session, shop_id, snapshot))
    # Only the order's own customer is touched (a guest order may share an email with an
    # account that never claimed it).
    customer = lock_customer(session, shop_id, order.customer_id) if order.customer_id else None
    if order.status == "cancelled":
        # Keep the newest cancellation time: a restoration older than it must not undo it. A
        # cancellation without a time adds nothing to compare with.
        if event.time_known and (order.cancelled_at is None or event.occurred_at > order.cancelled_at):
            order.cancelled_at = event.occurred_at
        return Outcome(status="noop")
    if order.paid_at is not None and customer is not None:
        _count_sale(session, shop_id, customer, order, sign=-1)
    order.status = "cancelled"
    # NULL: cancelled at an unknown time (see apply_order_restored).
    order.cancelled_at = event.occurred_at if event.time_known else None
    if order.points_status == "none":
        order.points_status = "void"
    elif customer is not None:
        sync_reversal(session, settings, order, customer, event.occurred_at)
        referrals.take_back_for_order(session, shop, settings, customer, order, event.occurred_at)
    return Outcome()


def apply_order_restored(session: Session, shop_id: int, event: OrderRestored) -> Outcome:
    """Un-cancel an order and grant its points again (a new generation, new ledger keys)."""
    shop, settings = shop_and_settings(session, shop_id)
    lock_order(session, shop_id, event.platform_order_id)
    order = find_order(session, shop_id, event.platform_order_id)
    if order is None or order.status != "cancelled":
        return Outcome(status="noop")  # nothing to restore; a sale event records and earns it
    if _cancellation_is_newer(order, event):
        return Outcome(status="noop")
    customer = lock_customer(session, shop_id, order.customer_id) if order.customer_id else None
    order.status = "fulfilled" if order.fulfilled_at else "paid" if order.paid_at else "open"
    order.cancelled_at = None
    # The previous generation was taken back in full by the cancellation; start a new one.
    # (An order imported as history and voided stays countable here too: its restoration is
    # a live event.)
    if order.points_earned > 0:  # the last grant used its keys; a never-granted order reuses its own
        order.points_generation += 1
    order.points_status = "none"
    order.points_earned = 0
    order.points_reversed = 0
    order.pending_until = None
    order.grant_expire_id = None  # set again when the new grant reaches the balance
    if event.order is not None:
        record_order(session, shop_id, settings, event.order, customer)  # amounts as restored
    if order.platform_updated_at is None or event.occurred_at > order.platform_updated_at:
        order.platform_updated_at = event.occurred_at
    if order.paid_at is not None and customer is not None:
        _count_sale(session, shop_id, customer, order)
    outcome = Outcome()
    if _award_due(settings, order):
        outcome.intents += _award(session, shop, settings, order, customer, event.occurred_at)
    if customer is not None:
        outcome.intents += tiers.promote_if_qualified(session, shop, settings, customer, event.occurred_at)
    return outcome


def apply_order_refunded(session: Session, shop_id: int, event: OrderRefunded) -> Outcome:
    shop, settings = shop_and_settings(session, shop_id)
    lock_order(session, shop_id, event.platform_order_id)
    stored = session.execute(
        insert(OrderRefund)
        .values(shop_id=shop_id, platform_order_id=event.platform_order_id, platform_refund_id=event.platform_refund_id,
                amount=event.amount, occurred_at=event.occurred_at,
                # What the platform says earned nothing is at most the refund itself.
                non_earning=max(min(event.non_earning, event.amount), Decimal("0")))
        .on_conflict_do_nothing(index_elements=["shop_id", "platform_refund_id"])
        .returning(OrderRefund.id)
    ).scalar_one_or_none()
    if stored is None:
        return Outcome(status="noop")
    order = find_order(session, shop_id, event.platform_order_id)
    if order is None:
        # The refund came before its order: it waits in order_refunds and is applied
        # when the order is recorded.
        return Outcome(status="parked")
    customer = lock_customer(session, shop_id, order.customer_id) if order.customer_id else None
    _absorb_refunds(session, shop_id, order, customer, event.occurred_at)
    if customer is not None:
        sync_reversal(session, settings, order, customer, event.occurred_at)
        referrals.take_back_for_order(session, shop, settings, customer, order, event.occurred_at)
    return Outcome()


def claim_guest_orders(session: Session, shop_id: int, customer: Customer, now: datetime) -> list:
    """A shopper who checked out as a guest and then made an account keeps those points."""
    shop, settings = shop_and_settings(session, shop_id)
    if not customer.email_normalized:
        return []
    since = now - timedelta(days=max(settings.guest_claim_days, settings.pending_days))
    guest_orders = session.execute(
        select(Order.id, Order.platform_order_id).where(
            Order.shop_id == shop_id, Order.customer_id.is_(None), Order.email_normalized == customer.email_normalized,
            Order.paid_at >= since, Order.status != "cancelled",
        )
    ).all()
    intents: list = []
    claimed: list[Order] = []
    for order_id, platform_order_id in guest_orders:
        lock_order(session, shop_id, platform_order_id)
        order = find_order(session, shop_id, platform_order_id)
        if order is None or order.customer_id is not None or order.status == "cancelled":
            continue
        claimed.append(order)
        order.customer_id = customer.id
        _count_sale(session, shop_id, customer, order)
        if _award_due(settings, order):
            # The points date from the sale; a referral reward (and its weekly cap) from now.
            intents += _award(session, shop, settings, order, customer, order.paid_at or now, granted_at=now)
    # A code that came with the guest checkout only refers the shopper as it would have on an
    # account's order (a no-op if the account already was attributed, e.g. by a code at sign-up).
    # (Imported history that earned nothing, `void`, refers nobody either.)
    coded = sorted((o for o in claimed if o.referral_code and o.points_status != "void"), key=lambda o: o.paid_at)
    if coded:
        intents += referrals.attribute(session, shop, customer, coded[0].referral_code, now, order=coded[0])
    if guest_orders:
        intents += tiers.promote_if_qualified(session, shop, settings, customer, now)
    return intents


# --- internals ---------------------------------------------------------------------------

def shop_and_settings(session: Session, shop_id: int) -> tuple[Shop, ProgramSettings]:
    shop = session.get(Shop, shop_id)
    if shop is None:
        raise LookupError(f"shop {shop_id} does not exist")
    return shop, program_settings(shop)


def lock_order(session: Session, shop_id: int, platform_order_id: str) -> None:
    """Events about one order apply one at a time (see the module docstring)."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"order:{shop_id}:{platform_order_id}"})


def find_order(session: Session, shop_id: int, platform_order_id: str) -> Order | None:
    stmt = for_shop(Order, shop_id).where(Order.platform_order_id == platform_order_id)
    return session.scalars(stmt.execution_options(populate_existing=True)).first()


def order_customer(session: Session, shop_id: int, snapshot: OrderSnapshot) -> Customer | None:
    """The order's customer, locked; None for a guest with no account yet."""
    info = snapshot.customer
    if info is not None and info.platform_customer_id:
        customer, created = upsert_customer(session, shop_id, info)
        # Found by platform id: already locked. Just created: lock it (one more statement, once).
        return lock_customer(session, shop_id, customer.id) if created else customer
    if info is not None and info.email:
        customer, _ = upsert_customer(session, shop_id, info)
    else:
        customer = find_by_email(session, shop_id, snapshot.email)
    return lock_customer(session, shop_id, customer.id) if customer is not None else None


def record_order(session: Session, shop_id: int, settings: ProgramSettings, snapshot: OrderSnapshot,
                  customer: Customer | None) -> Order:
    order = find_order(session, shop_id, snapshot.platform_order_id)
    created = order is None
    if created:
        order = Order(shop_id=shop_id, platform_order_id=snapshot.platform_order_id, currency=snapshot.currency)
        session.add(order)
        session.flush()  # applies the column defaults (points_status "none", zero amounts)
    stale = (not created and snapshot.updated_at is not None and order.platform_updated_at is not None
             and snapshot.updated_at < order.platform_updated_at)
    # Amounts are frozen once points are granted: reversals work from what was granted.
    if not stale and order.points_status == "none":
        order.currency = snapshot.currency
        order.subtotal = snapshot.subtotal
        order.total = snapshot.total
        order.eligible_amount = eligible_amount(snapshot, settings.earn_basis)
        order.non_earning_amount = non_earning_amount(snapshot)
        order.order_number = snapshot.order_number
        order.placed_at = snapshot.placed_at
        order.is_test = snapshot.is_test
        # An erased shopper's orders keep no email (privacy.apply_customer_redact cleared the older ones).
        order.email_normalized = None if customer is not None and customer.redacted_at is not None else normalize_email(
            snapshot.email or (snapshot.customer.email if snapshot.customer else None))
        order.referral_code = snapshot.referral_code
    if not stale and snapshot.updated_at is not None:
        # The newest platform state seen, frozen amounts or not: a cancellation older than it
        # (delivered late, after the order was restored) must not undo it.
        order.platform_updated_at = snapshot.updated_at
    if order.customer_id is None and customer is not None and order.paid_at is None:
        order.customer_id = customer.id  # (a paid guest order is claimed by claim_guest_orders)
    if created:
        _absorb_refunds(session, shop_id, order, None, snapshot.updated_at)
    return order


def _absorb_refunds(session: Session, shop_id: int, order: Order, customer: Customer | None, at) -> None:
    """Count every not-yet-counted refund of this order (including ones that came early)."""
    waiting = session.scalars(
        for_shop(OrderRefund, shop_id).where(OrderRefund.platform_order_id == order.platform_order_id,
                                             OrderRefund.applied_at.is_(None), OrderRefund.withdrawn_at.is_(None))
    ).all()
    for refund in waiting:
        refund.applied_at = at or refund.occurred_at or refund.created_at
        order.refunded_amount += refund.amount
        order.refunded_non_earning += refund.non_earning
        if customer is not None and order.paid_at is not None and order.status != "cancelled":
            customer.total_spent -= refund.amount


def _count_sale(session: Session, shop_id: int, customer: Customer, order: Order, sign: int = 1) -> None:
    """Keep the customer's order statistics; decide the Nth-order bonus when counted."""
    customer.orders_count += sign
    customer.total_spent += sign * (order.total - order.refunded_amount)
    if sign > 0:
        record_sale(customer, order.paid_at)
        # Before this sale can promote anyone (tiers.promote_if_qualified runs after it). Kept
        # once set: a restored order is counted again, maybe in the tier its first count reached.
        if order.sale_multiplier is None:
            order.sale_multiplier = _tier_multiplier(session, shop_id, customer)
    else:
        reload_sale_history(session, customer, without_order_id=order.id)
    at = order.placed_at or order.paid_at
    if sign > 0 and at is not None:
        if customer.first_order_at is None or at < customer.first_order_at:
            customer.first_order_at = at
        if customer.last_order_at is None or at > customer.last_order_at:
            customer.last_order_at = at
        # Decided afresh each time the order is counted (a restored order is counted again), and
        # only while the customer's live orders hold fewer bonuses than their count calls for:
        # cancelling an earlier order lowers the count, and the order that brings it back to a
        # multiple of N must not earn a bonus a live order already holds.
        order.bonus_points = 0
        rule = _active_rule(session, shop_id, "nth_order")
        if (rule is not None and rule.every_n and rule.points and customer.orders_count % rule.every_n == 0
                and _live_bonus_orders(session, shop_id, customer.id, order.id) < customer.orders_count // rule.every_n):
            order.bonus_points = rule.points


def _live_bonus_orders(session: Session, shop_id: int, customer_id: int, except_order_id: int) -> int:
    """How many of the customer's orders (other than this one, and not cancelled) hold an Nth-order bonus."""
    return session.scalar(
        select(func.count()).select_from(Order).where(
            Order.shop_id == shop_id, Order.customer_id == customer_id, Order.id != except_order_id,
            Order.status != "cancelled", Order.bonus_points > 0)
    )


def _award_due(settings: ProgramSettings, order: Order) -> bool:
    if order.points_status != "none" or order.status == "cancelled":
        return False
    if order.is_test and not settings.include_test_orders:
        return False
    return order.fulfilled_at is not None if settings.award_on == "fulfilled" else order.paid_at is not None


def _award(session: Session, shop: Shop, settings: ProgramSettings, order: Order, customer: Customer | None,
           at: datetime, granted_at: datetime | None = None) -> list:
    if customer is None:
        return []  # a guest: may be claimed later by an account with the same email
    rule = _active_rule(session, shop.id, "order")
    rate = rule.points_per_unit if rule is not None and rule.points_per_unit is not None else Decimal("0")
    # The tier held when the sale was counted (award on fulfilment comes later, maybe after this
    # very order promoted the customer); rows from before migration 0016 have none kept.
    multiplier = order.sale_multiplier if order.sale_multiplier is not None else _tier_multiplier(session, shop.id, customer)
    points = settings.round_points(order.eligible_amount * rate * multiplier) + order.bonus_points
    order.points_earned = points
    # The basis and rounding too: an edit earns on the order's own terms (order_edits.apply_order_edited).
    details = {"eligible_amount": str(order.eligible_amount), "rate": str(rate), "multiplier": str(multiplier),
               "bonus": order.bonus_points, "basis": settings.earn_basis, "rounding": settings.rounding}
    key = f"{points_key(order)}:earn"
    if settings.pending_days > 0:
        order.points_status = "pending"
        order.pending_until = at + timedelta(days=settings.pending_days)
        post_entry(session, customer, kind="earn", key=key, now=at, pending_delta=points, source="order",
                   order_id=order.id, details=details)
        sync_reversal(session, settings, order, customer, at)
        return []
    order.points_status = "awarded"
    post_entry(session, customer, kind="earn", key=key, now=at, points=points, source="order",
               order_id=order.id, details=details)
    order.grant_expire_id = customer.last_expire_id
    collect_earlier_rest(session, order, customer, points, at)
    sync_reversal(session, settings, order, customer, at)
    return _after_points_awarded(session, shop, settings, customer, order, granted_at or at)


def _after_points_awarded(session: Session, shop: Shop, settings: ProgramSettings, customer: Customer,
                          order: Order, at: datetime) -> list:
    return referrals.complete_for_order(session, shop, settings, customer, order, at)


class GrantTerms(NamedTuple):
    rate: Decimal
    multiplier: Decimal
    basis: str  # the earn basis the order's eligible amount was worked out on
    rounding: str

    def round_points(self, value: Decimal) -> int:
        return int(value.to_integral_value(rounding=ROUNDING[self.rounding]))


def grant_terms(session: Session, settings: ProgramSettings, order: Order, customer: Customer) -> GrantTerms:
    """The terms the order's grant was made at (its earn entry says), not today's. Grants from
    before the entry recorded its basis and rounding take today's."""
    details = session.scalar(select(LedgerEntry.details).where(
        LedgerEntry.shop_id == order.shop_id, LedgerEntry.idempotency_key == f"{points_key(order)}:earn")) or {}
    basis, rounding = details.get("basis", settings.earn_basis), details.get("rounding", settings.rounding)
    if "rate" in details and "multiplier" in details:
        return GrantTerms(Decimal(details["rate"]), Decimal(details["multiplier"]), basis, rounding)
    rule = _active_rule(session, order.shop_id, "order")  # a grant of 0 points left no entry to read
    rate = rule.points_per_unit if rule is not None and rule.points_per_unit is not None else Decimal("0")
    multiplier = (order.sale_multiplier if order.sale_multiplier is not None
                  else _tier_multiplier(session, order.shop_id, customer))
    return GrantTerms(rate, multiplier, basis, rounding)


def _tier_multiplier(session: Session, shop_id: int, customer: Customer) -> Decimal:
    tier = get_for_shop(session, Tier, shop_id, customer.tier_id) if customer.tier_id else None
    return tier.multiplier if tier is not None else Decimal("1")


def _cancellation_is_newer(order: Order, event: OrderRestored) -> bool:
    """Whether the order's cancellation is newer than the restoration `event`. One with a time
    (cancelled_at) is, unless the restoration is strictly later. One without (cancelled_at NULL:
    WooCommerce's order.deleted, queued and only the id) is taken as newer than every state applied
    (platform_updated_at) and no newer: a strictly later restoration undoes it, and so does the
    platform's state read now (`current`: a reconciliation finds the order live) at that same time;
    a state already applied, delivered again (order.created beside order.updated), never does. An
    order deleted before we saw any state of it cannot be ordered against a delivery at all: only
    the platform's state read now restores it (a late, older "paid" must not earn)."""
    if order.cancelled_at is not None:
        return event.occurred_at <= order.cancelled_at
    newest = order.platform_updated_at
    if newest is None:  # deleted before any state of it reached us: only the store, read now, says it lives
        return not event.current
    return event.occurred_at < newest or (event.occurred_at == newest and not event.current)


def _older_than_applied(snapshot: OrderSnapshot | None, order: Order, at: datetime | None = None) -> bool:
    """Whether the event's state is older than the newest one applied. A cancellation without a
    body but with a time is as old as that time (a cancellation without a time is never stale:
    apply_order_cancelled does not ask)."""
    stamp = snapshot.updated_at if snapshot is not None else at
    return stamp is not None and order.platform_updated_at is not None and stamp < order.platform_updated_at


def _active_rule(session: Session, shop_id: int, kind: str) -> EarnRule | None:
    stmt = for_shop(EarnRule, shop_id).where(EarnRule.kind == kind, EarnRule.active.is_(True), EarnRule.action_key == "")
    return session.scalars(stmt).first()
