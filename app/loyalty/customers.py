"""Finding and creating shoppers from what the platforms tell us."""
from __future__ import annotations

from bisect import insort
import struct
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.loyalty.events import CustomerInfo
from app.loyalty.identity import new_referral_code, normalize_email
from app.models import Customer, Order, for_shop

# The win-back rule's input, kept on the customer with the other order statistics: the paid
# times of their last SALE_HISTORY sales (paid, not cancelled; oldest first) and the median gap
# between them. Bounded so the order path rewrites a small row; for longer histories the median
# follows the customer's recent rhythm (the last 15 gaps). Migration 0012 backfills the same.
# Stored packed (big-endian int64 microseconds since the epoch, see Customer.sale_history).
SALE_HISTORY = 16
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DAY_US = 86_400_000_000


def find_by_email(session: Session, shop_id: int, email: str | None) -> Customer | None:
    normalized = normalize_email(email)
    if normalized is None:
        return None
    stmt = for_shop(Customer, shop_id).where(Customer.email_normalized == normalized, Customer.redacted_at.is_(None))
    return session.scalars(stmt.order_by(Customer.id).limit(1)).first()


def find_by_referral_code(session: Session, shop_id: int, code: str | None) -> Customer | None:
    if not code:
        return None
    # An erased customer keeps the row (and its code) but refers nobody, as at /r/<code>.
    return session.scalars(for_shop(Customer, shop_id).where(Customer.referral_code == code.strip().upper(),
                                                             Customer.redacted_at.is_(None))).first()


def upsert_customer(session: Session, shop_id: int, info: CustomerInfo) -> tuple[Customer, bool]:
    """Return (customer, created), the row locked (FOR NO KEY UPDATE, as lock_customer) when found by platform id.
    Finds by platform id, else by email; creates when new.

    The insert uses ON CONFLICT so two events creating the same shopper at once end with one row.
    """
    customer = None
    if info.platform_customer_id:
        # Locked and refreshed in the same query that finds it: callers post to the ledger next.
        customer = session.scalars(
            for_shop(Customer, shop_id).where(Customer.platform_customer_id == info.platform_customer_id)
            .with_for_update(key_share=True).execution_options(populate_existing=True)
        ).first()
    if customer is None and not info.platform_customer_id:
        customer = find_by_email(session, shop_id, info.email)
    created = False
    if customer is None:
        inserted = session.execute(
            insert(Customer)
            .values(shop_id=shop_id, platform_customer_id=info.platform_customer_id, referral_code=new_referral_code(),
                    email=info.email, email_normalized=normalize_email(info.email))
            .on_conflict_do_nothing(index_elements=["shop_id", "platform_customer_id"])
            .returning(Customer.id)
        ).scalar_one_or_none()
        created = inserted is not None
        stmt = for_shop(Customer, shop_id).where(
            Customer.id == inserted if created else Customer.platform_customer_id == info.platform_customer_id
        )
        customer = session.scalars(stmt).one()
    apply_customer_info(customer, info)
    return customer, created


def apply_customer_info(customer: Customer, info: CustomerInfo) -> None:
    """Copy what the payload says, unless it is older than what we already applied."""
    if customer.redacted_at is not None:
        return  # erased on request: never re-fill personal data
    seen = customer.platform_updated_at
    if info.updated_at is not None and seen is not None and info.updated_at < seen:
        return
    if info.updated_at is not None:
        customer.platform_updated_at = info.updated_at
    if info.email:
        customer.email = info.email
        customer.email_normalized = normalize_email(info.email)
    for attr in ("first_name", "last_name", "phone", "birthday"):
        value = getattr(info, attr)
        if value is not None:
            setattr(customer, attr, value)
    if info.accepts_marketing is not None and info.accepts_marketing != customer.accepts_marketing:
        customer.accepts_marketing = info.accepts_marketing
        customer.marketing_consent_updated_at = info.updated_at


def touch_order_stats(customer: Customer, amount_delta, count_delta: int, at: datetime | None) -> None:
    customer.orders_count += count_delta
    customer.total_spent += amount_delta
    if at is not None and count_delta > 0:
        if customer.first_order_at is None or at < customer.first_order_at:
            customer.first_order_at = at
        if customer.last_order_at is None or at > customer.last_order_at:
            customer.last_order_at = at


def _unpack(history: bytes | None) -> list[int]:
    return list(struct.unpack(f">{len(history) // 8}q", history)) if history else []


def _pack(times_us: list[int]) -> bytes:
    return struct.pack(f">{len(times_us)}q", *times_us)


def _microseconds(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


def sale_times(history: bytes | None) -> list[datetime]:
    """The paid times a sale history holds, oldest first (for people and tests)."""
    return [_EPOCH + us * _MICROSECOND for us in _unpack(history)]


def median_gap_days(times_us: list[int]) -> float | None:
    """Median gap between consecutive sales (sorted, in microseconds), in days; None below two.

    On whole microseconds, so that it is bit-for-bit what migration 0012's percentile_cont
    computes in SQL (halves of integers are exact in a double).
    """
    if len(times_us) < 2:
        return None
    gaps = sorted(later - earlier for earlier, later in zip(times_us, times_us[1:]))
    middle = len(gaps) // 2
    median_us = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
    return median_us / _DAY_US


def record_sale(customer, paid_at: datetime | None) -> None:
    """A sale was counted for the customer (new, restored, claimed or imported, in any order)."""
    if paid_at is None:
        return
    times = _unpack(customer.sale_history)
    insort(times, _microseconds(paid_at))
    del times[:-SALE_HISTORY]
    customer.sale_history = _pack(times)
    customer.median_gap_days = median_gap_days(times)


def reload_sale_history(session: Session, customer: Customer, without_order_id: int | None = None) -> None:
    """Recompute the sale history from the customer's orders (after a sale stopped counting:
    the bounded history cannot know which older sale slides back in). One indexed read."""
    stmt = select(Order.paid_at).where(Order.shop_id == customer.shop_id, Order.customer_id == customer.id,
                                       Order.paid_at.is_not(None), Order.status != "cancelled")
    if without_order_id is not None:
        stmt = stmt.where(Order.id != without_order_id)
    times = sorted(_microseconds(at) for at in session.scalars(stmt.order_by(Order.paid_at.desc()).limit(SALE_HISTORY)))
    customer.sale_history = _pack(times)
    customer.median_gap_days = median_gap_days(times)
