"""Shoppers and their orders, as far as loyalty needs them."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, Boolean, Date, DateTime, Double, ForeignKey, Index, Integer, LargeBinary, Numeric, String, Text, UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import ShopScoped, money, utc_created, utc_updated


class Customer(ShopScoped, db.Model):
    shop_id_indexed = False  # written on every order event; see migration 0013
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("shop_id", "platform_customer_id"),
        Index("ix_customers_shop_email", "shop_id", "email_normalized"),
        # Room in each page for the new row version every order writes (a HOT update: no
        # indexed column changes on the order path); see migration 0015.
        {"postgresql_with": {"fillfactor": 80}},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    platform_customer_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    email_normalized: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(64))
    birthday: Mapped[date | None] = mapped_column(Date)
    accepts_marketing: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"), default=False)
    marketing_consent_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redacted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Cached sums of the ledger, updated in the same transaction as each entry.
    points_balance: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    pending_points: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    points_earned_lifetime: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    tier_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("tiers.id", ondelete="SET NULL"))
    tier_achieved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    referral_code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    referred_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="SET NULL"))
    # Order statistics (paid, not cancelled), kept with each order event.
    orders_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    total_spent: Mapped[Decimal] = money()
    first_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The win-back rule's input (app.loyalty.customers.record_sale): the paid times of the last
    # 16 sales, oldest first, packed as big-endian int64 microseconds since the Unix epoch
    # (customers.sale_times() reads it), and the median gap between them in days (NULL below
    # two sales). Packed bytes because psycopg (de)serialises a timestamptz[] in Python: ~80 us
    # per sale on the quick order path, against ~2 us for bytea.
    sale_history: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, server_default=text("''::bytea"),
                                                default=b"")
    median_gap_days: Mapped[float | None] = mapped_column(Double)
    referrals_completed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    # Last earn or redeem: the clock that points expiry runs on.
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The customer's newest `expire` entry: one newer than an order's grant_expire_id means an
    # expiry has taken what the order had left (app.loyalty.reversals._expiry_cover).
    last_expire_id: Mapped[int | None] = mapped_column(BigInteger)
    # The platform's own modification time of the newest customer payload applied.
    platform_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utc_created()
    updated_at: Mapped[datetime] = utc_updated()


ORDER_STATUSES = ("open", "paid", "fulfilled", "cancelled")
# none: nothing granted yet; pending: held for the return window; awarded: in the balance;
# void: cancelled (or fully refunded) before anything was granted.
POINTS_STATUSES = ("none", "pending", "awarded", "void")


class Order(ShopScoped, db.Model):
    shop_id_indexed = False  # written on every order event; see migration 0013
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "platform_order_id"),
        Index("ix_orders_shop_customer_paid", "shop_id", "customer_id", "paid_at"),
        # Analytics: a shop's sales in a period (app.loyalty.analytics.sales), and each customer's
        # sales in time order read from the index alone (the win-back median gap, churn).
        Index("ix_orders_shop_paid", "shop_id", "paid_at"),
        Index("ix_orders_shop_customer_sales", "shop_id", "customer_id", "paid_at",
              postgresql_where=text("paid_at IS NOT NULL AND status <> 'cancelled'")),
        Index("ix_orders_pending_until", "shop_id", "pending_until", postgresql_where=text("points_status = 'pending'")),
        Index("ix_orders_guest_email", "shop_id", "email_normalized", postgresql_where=text("customer_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    platform_order_id: Mapped[str] = mapped_column(String(64), nullable=False)
    customer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    email_normalized: Mapped[str | None] = mapped_column(String(320))
    order_number: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    subtotal: Mapped[Decimal] = money()
    total: Mapped[Decimal] = money()
    # The amount points were (or will be) computed on, per the shop's earn basis.
    eligible_amount: Mapped[Decimal] = money()
    # The part of the total that earns on no basis (gift cards bought, tips): refund shares are
    # of the rest. Frozen with the amounts above. 0 on rows from before migration 0017.
    non_earning_amount: Mapped[Decimal] = money()
    refunded_amount: Mapped[Decimal] = money()
    # The part of refunded_amount the platform said was for non-earning lines.
    refunded_non_earning: Mapped[Decimal] = money()
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="open", default="open")
    is_test: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"), default=False)
    placed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    points_status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="none", default="none")
    # Points granted for this order (earn rule x tier multiplier + any Nth-order bonus):
    # what refunds and cancellations reverse from, whatever today's rules say.
    points_earned: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    points_reversed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    # How many times the order came back after a cancellation: each grant of its points uses
    # its own ledger keys (order:{id}:earn, then order:{id}:r1:earn, ...).
    points_generation: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    # Refunds counted here and then withdrawn (the store no longer lists them): keys the reversals
    # after each one (reversals.sync_reversal), as the cumulative target can repeat.
    refunds_withdrawn: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    # The Nth-order bonus decided when the order was paid; granted with the order's points.
    bonus_points: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    # The tier multiplier the customer held when the sale was counted: points that come later
    # (award on fulfilment) use it, not the tier this very order lifted them into. NULL on rows
    # from before migration 0016 (they earn at the tier held when awarded).
    sale_multiplier: Mapped[Decimal | None] = mapped_column(Numeric(6, 3))
    # customers.last_expire_id when this grant's points reached the balance (its earn, or its
    # release after a pending period): a reversal looks for an expiry only once the two differ.
    grant_expire_id: Mapped[int | None] = mapped_column(BigInteger)
    pending_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    referral_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    # The platform's own modification time of the newest payload applied.
    platform_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utc_created()
    updated_at: Mapped[datetime] = utc_updated()


class OrderRefund(ShopScoped, db.Model):
    """One refund as the platform reported it; kept even when its order has not arrived yet."""

    __tablename__ = "order_refunds"
    __table_args__ = (
        UniqueConstraint("shop_id", "platform_refund_id"),
        Index("ix_order_refunds_shop_order", "shop_id", "platform_order_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    platform_order_id: Mapped[str] = mapped_column(String(64), nullable=False)
    platform_refund_id: Mapped[str] = mapped_column(String(64), nullable=False)
    amount: Mapped[Decimal] = money(default=None)
    non_earning: Mapped[Decimal] = money()  # of `amount`, for lines that earn nothing (OrderRefunded.non_earning)
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once the refund is counted in its order's refunded_amount.
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the store's list of the order's refunds no longer holds it (WooCommerce: deleted):
    # no longer counted, and never counted again (app.loyalty.refund_withdrawal).
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utc_created()
