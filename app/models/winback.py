"""Win-back campaigns: one enrollment per customer per sequence (at most one active at a time)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import ShopScoped, money, utc_created
from app.models.customer import Customer

# active: in the sequence; converted: ordered within the recovery window after a win-back
# email; stopped: ordered (outside the window) or became unreachable; completed: both steps
# sent and the recovery window passed without an order.
WINBACK_STATUSES = ("active", "converted", "stopped", "completed")


class WinbackEnrollment(ShopScoped, db.Model):
    __tablename__ = "winback_enrollments"
    __table_args__ = (
        CheckConstraint("status IN (%s)" % ", ".join(f"'{s}'" for s in WINBACK_STATUSES), name="status"),
        CheckConstraint("campaign_step IN (1, 2)", name="campaign_step"),
        # One active sequence per customer: the selection and a concurrent run cannot double-enroll.
        Index("uq_winback_enrollments_active", "shop_id", "customer_id", unique=True,
              postgresql_where=text("status = 'active'")),
        # The cap / cooldown look-ups and record_order_for_winback's one indexed read.
        Index("ix_winback_enrollments_customer", "shop_id", "customer_id", "enrolled_at"),
        Index("ix_winback_enrollments_shop_enrolled", "shop_id", "enrolled_at"),
        # Analytics: conversions by the day of the converting order.
        Index("ix_winback_enrollments_converted", "shop_id", "ended_at", postgresql_where=text("status = 'converted'")),
        # Deleting an order (a shop purge deletes them all) sets these to NULL: without an index,
        # one scan of the table per order deleted. Partial: only sequences ended by a sale.
        Index("ix_winback_enrollments_converted_order", "converted_order_id",
              postgresql_where=text("converted_order_id IS NOT NULL")),
        Index("ix_winback_enrollments_returned_order", "returned_order_id",
              postgresql_where=text("returned_order_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    campaign_step: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="1", default=1)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active", default="active")
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    step1_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    step2_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    converted_order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="SET NULL"))
    recovered_revenue: Mapped[Decimal] = money()
    incentive_points: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    # The control group (winback_holdout_percent): no email, no points, the same timeline.
    holdout: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"), default=False)
    # winback_holdout_percent when the sequence was enrolled (0: no holdout ran; NULL: enrolled
    # before migration 0028). The lift compares only sequences enrolled while a holdout ran.
    holdout_percent: Mapped[int | None] = mapped_column(SmallInteger)
    # The customer ordered within the sequence's window (enrolled_at .. last step time +
    # winback_recovery_days), delivered email or not: the lift's outcome, the same rule for
    # both groups (`converted` also needs a delivered email for a treated sequence).
    returned: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"), default=False)
    # The order that ended the sequence (every sequence a sale ended, converted or stopped, in or
    # out of the window): the lift counts a return only while that order is not cancelled or
    # fully refunded. NULL: no sale ended it, the order was deleted, or ended before 0030.
    returned_order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="SET NULL"))
    # A sequence stopped before step 2 (unsubscribed, campaign off): until when a sale still
    # counts as its return (intent to treat; campaign_results looks the sale up). NULL otherwise.
    observe_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utc_created()


# The win-back selection walks a shop's customers in id order (keyset pages): (shop_id, id)
# keeps every page an index range scan whatever other shops share the table.
Index("ix_customers_shop_id_id", Customer.shop_id, Customer.id)
