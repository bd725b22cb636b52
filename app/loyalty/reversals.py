"""Taking an order's points back: refunds (in proportion), cancellations (in full), what an
expiry already took, and what a clamped cancellation left uncollected when the order returns.
(A referral's reward is taken back by app.loyalty.referrals, with the same rules from here.)

Works on an order and its locked customer; app.loyalty.orders decides when.
"""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger, func, select
from sqlalchemy.orm import Session, aliased

from app.loyalty.ledger import post_entry
from app.loyalty.program import ProgramSettings
from app.models import Customer, LedgerEntry, Order


def collect_earlier_rest(session: Session, order: Order, customer: Customer, granted: int, at: datetime) -> None:
    """A restored order's new grant first settles what its cancelled grants left uncollected.

    With negative_balance = clamp, a cancellation takes back only what the balance holds and
    records the rest as uncollected; the shopper has had those points. When the order comes back
    and earns again, that rest is taken from the new grant (at most all of it), as an entry whose
    negative `uncollected` marks the rest as settled, so the order pays out once in all.
    """
    if order.points_generation == 0 or granted <= 0:
        return  # a first grant has no earlier one
    outstanding = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.uncollected), 0)).where(
            LedgerEntry.shop_id == order.shop_id, LedgerEntry.customer_id == customer.id,
            LedgerEntry.order_id == order.id)
    )
    collected = min(int(outstanding), granted, max(customer.points_balance, 0))
    if collected > 0:
        post_entry(session, customer, kind="reverse", key=f"{points_key(order)}:collect", now=at,
                   points=-collected, uncollected=-collected, source="order", order_id=order.id,
                   details={"settles_uncollected": collected})


def sync_reversal(session: Session, settings: ProgramSettings, order: Order, customer: Customer, at: datetime,
                  *, withdrawn: bool = False) -> None:
    """Bring the points taken back for this order up to what its refunds/cancellation call for.

    Target = points granted x refunded share (rounded half up, at most all), cumulative, so
    several partial refunds adding up to the whole take back exactly everything. The target
    goes down only when a refund was withdrawn (`withdrawn`, app.loyalty.refund_withdrawal):
    _give_back. Otherwise (an edit grew the order, so a refund's share of it shrank) what was
    taken stays taken. The share is of
    the part that earns (_refunded_share). What an expiry already took of the order's points is
    not taken again (_expiry_cover).
    """
    if order.points_earned <= 0:
        return
    if order.status == "cancelled":
        target = order.points_earned
    else:
        refunded, base = _refunded_share(order)
        # Multiply before dividing: an exact half (30 x 11/60 = 5.5) stays exact; a share divided
        # first is rounded to 28 digits and can land just below it (5.4999...).
        if base > 0:
            exact = order.points_earned * refunded / base
            target = min(int(exact.to_integral_value(rounding=ROUND_HALF_UP)), order.points_earned)
        else:
            target = order.points_earned if refunded > 0 else 0
    delta = target - order.points_reversed
    if delta < 0 and withdrawn:
        _give_back(session, order, customer, -delta, at)
        order.points_reversed = target
        return
    if delta <= 0:
        return
    # After a withdrawn refund the target can come back to a value whose key is used.
    epoch = f":w{order.refunds_withdrawn}" if order.refunds_withdrawn else ""
    key = f"{points_key(order)}:reverse:{target}{epoch}"
    details = {"refunded_amount": str(order.refunded_amount), "cancelled": order.status == "cancelled"}
    if order.refunded_non_earning:
        details["refunded_non_earning"] = str(order.refunded_non_earning)
    if order.points_status == "pending":
        post_entry(session, customer, kind="reverse", key=key, now=at, pending_delta=-delta, source="order",
                   order_id=order.id, details=details)
    else:
        cover, pool_id = _expiry_cover(session, order, customer, delta)
        if cover:
            details["expire_entry_id"] = pool_id
        rest = delta - cover
        taken = clamped(settings, customer, rest)
        post_entry(session, customer, kind="reverse", key=key, now=at, points=-taken, uncollected=rest - taken,
                   expiry_cover=cover, source="order", order_id=order.id, details=details)
    order.points_reversed = target


def _give_back(session: Session, order: Order, customer: Customer, amount: int, at: datetime) -> None:
    """Undo `amount` of what this grant's reversals took (a refund was withdrawn), last part first:
    what a clamped balance left uncollected is forgiven (no points move), what an expiry covered
    returns to that expiry's pool for other reversals (the points stay expired), and only the rest
    comes back to the balance. The lifetime gets the whole amount back, as the reversals took it.
    An order voided at its release is released by it (below)."""
    prefix = points_key(order)
    if order.points_status == "void":
        # A pending order voided at its release as refunded in full (app.loyalty.pending): none of
        # its points reached the balance, so what comes back is released now, as its release would
        # have: the entry a later reversal's expiry cover counts from (an expiry before it never took
        # these points), the earlier generation's uncollected rest settled.
        post_entry(session, customer, kind="release", key=f"{prefix}:release", now=at, points=amount,
                   source="order", order_id=order.id,
                   details={"refunded_amount": str(order.refunded_amount), "withdrawn": True})
        order.points_status = "awarded"
        order.grant_expire_id = customer.last_expire_id
        collect_earlier_rest(session, order, customer, amount, at)
        return
    if order.points_status == "pending":
        post_entry(session, customer, kind="reverse", key=f"{prefix}:withdrawn:{order.refunds_withdrawn}", now=at,
                   pending_delta=amount, source="order", order_id=order.id,
                   details={"refunded_amount": str(order.refunded_amount), "withdrawn": True})
        return
    row = session.execute(
        select(func.coalesce(func.sum(LedgerEntry.uncollected), 0), func.coalesce(func.sum(LedgerEntry.expiry_cover), 0),
               func.max(LedgerEntry.details["expire_entry_id"].astext))
        .where(LedgerEntry.shop_id == order.shop_id, LedgerEntry.customer_id == customer.id,
               LedgerEntry.order_id == order.id, LedgerEntry.kind == "reverse",
               LedgerEntry.idempotency_key.like(f"{prefix}:reverse:%")
               | LedgerEntry.idempotency_key.like(f"{prefix}:withdrawn:%"))
    ).one()
    forgiven = min(amount, max(int(row[0]), 0))
    uncovered = min(amount - forgiven, max(int(row[1]), 0))
    details = {"refunded_amount": str(order.refunded_amount), "withdrawn": True}
    if uncovered:
        details["expire_entry_id"] = int(row[2])
    post_entry(session, customer, kind="reverse", key=f"{prefix}:withdrawn:{order.refunds_withdrawn}", now=at,
               points=amount - forgiven - uncovered, uncollected=-forgiven, expiry_cover=-uncovered, source="order",
               order_id=order.id, details=details)


def _refunded_share(order: Order) -> tuple[Decimal, Decimal]:
    """(refunded, of): what was refunded of the order's earning part, and that part.

    Gift cards bought and tips (order.non_earning_amount) earn nothing, so refunds of them
    (order.refunded_non_earning, as the platform reported) take nothing back, up to that part:
    beyond it they were counted as earning when the points were granted (a row from before
    migration 0017, an order the webhook never described). The rest of a refund is of what
    earned. An order with nothing earning (a gift card alone, earning only an Nth-order bonus)
    shares by its whole total, as every order did before migration 0017.
    """
    base = order.total - order.non_earning_amount
    if base <= 0:
        return order.refunded_amount, order.total
    non_earning = min(order.refunded_non_earning, order.non_earning_amount)
    return max(order.refunded_amount - non_earning, Decimal("0")), base


def fully_taken_back(order: Order) -> bool:
    """Cancelled, or refunded in full (all of what earns: _refunded_share): the order paid
    nothing in the end. Judged on the money, not the points: a partial refund whose reversal
    rounds up to all the points (39.50 of 40.00) leaves the order standing. In memory only."""
    if order.status == "cancelled":
        return True
    refunded, base = _refunded_share(order)
    return base > 0 and refunded >= base


def _expiry_cover(session: Session, order: Order, customer: Customer, delta: int) -> tuple[int, int | None]:
    """How much of a reversal of `delta` an expiry already took: (points covered, that expire entry's id).

    An expiry takes the whole balance, so what the order had left was gone at the first expire
    entry after its grant. That entry's amount covers the reversals of the orders granted before
    it, first come first served: what earlier reversals drew on it (their expiry_cover) is used up.
    """
    if order.grant_expire_id == customer.last_expire_id:
        return 0, None  # no expiry since the grant (the usual case): no query
    prefix = points_key(order)
    grant = select(func.max(LedgerEntry.id)).where(
        LedgerEntry.shop_id == order.shop_id, LedgerEntry.customer_id == customer.id,
        LedgerEntry.idempotency_key.in_([f"{prefix}:earn", f"{prefix}:release"])).scalar_subquery()
    return expiry_cover_after(session, customer, grant, delta)


def expiry_cover_after(session: Session, customer: Customer, grant_id, delta: int) -> tuple[int, int | None]:
    """What the first expiry after the grant entry `grant_id` (an id, or a subquery giving one)
    left to cover of a reversal of `delta`: (points covered, that expire entry's id), as for
    _expiry_cover. Shared by order and referral reversals: they draw on the same expire entries."""
    scope = (LedgerEntry.shop_id == customer.shop_id, LedgerEntry.customer_id == customer.id)
    pool = (select(LedgerEntry.id, (-LedgerEntry.points).label("amount"))
            .where(*scope, LedgerEntry.kind == "expire", LedgerEntry.id > grant_id)
            .order_by(LedgerEntry.id).limit(1).subquery())
    drawn = aliased(LedgerEntry)
    used = select(func.coalesce(func.sum(drawn.expiry_cover), 0)).where(
        drawn.shop_id == customer.shop_id, drawn.customer_id == customer.id, drawn.id > pool.c.id,
        # A withdrawn refund's give-back (negative) returns its part to the pool.
        drawn.expiry_cover != 0, drawn.details["expire_entry_id"].astext.cast(BigInteger) == pool.c.id,
    ).scalar_subquery()
    row = session.execute(select(pool.c.id, pool.c.amount - used)).first()
    if row is None:
        return 0, None  # no expiry after the grant (an order granted before migration 0016, after one)
    pool_id, left = row
    return min(delta, max(int(left), 0)), pool_id


def clamped(settings: ProgramSettings, customer: Customer, rest: int) -> int:
    """What of `rest` a reversal takes from the balance: all of it, or with negative_balance =
    clamp only what the balance holds (the remainder is recorded as uncollected)."""
    if settings.negative_balance == "clamp":
        return min(rest, max(customer.points_balance, 0))
    return rest


def points_key(order: Order) -> str:
    """Ledger key prefix for the order's current grant: `order:{id}`, or `order:{id}:r{g}` after restorations."""
    return f"order:{order.id}" if order.points_generation == 0 else f"order:{order.id}:r{order.points_generation}"
