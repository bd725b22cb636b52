"""Redemptions, referrals, the webhook inbox and the audit log."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import ShopScoped, utc_created, utc_updated

# pending: points debited, code not yet created on the platform; issued: code exists;
# failed: creation failed for good and the points were given back; cancelling: staff asked to
# cancel and the code is being deleted on the platform; cancelled: deleted, points given back.
REDEMPTION_STATUSES = ("pending", "issued", "failed", "cancelling", "cancelled")
# How the last cancellation request went: cancelling (under way), cancelled, refused (the code
# was already used in an order), failed (the platform could not delete it; no points back).
CANCEL_STATES = ("cancelling", "cancelled", "refused", "failed")


class Redemption(ShopScoped, db.Model):
    __tablename__ = "redemptions"
    __table_args__ = (
        UniqueConstraint("shop_id", "customer_id", "idempotency_key"),
        UniqueConstraint("shop_id", "code"),
        Index("ix_redemptions_cancelling", "cancel_requested_at", postgresql_where=text("status = 'cancelling'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    reward_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("rewards.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False)
    points_cost: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending", default="pending")
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    # What the discount is, frozen at redemption time (the reward may change later).
    discount: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    platform_discount_id: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_state: Mapped[str | None] = mapped_column(String(16))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cancel_actor: Mapped[str | None] = mapped_column(String(200))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_detail: Mapped[str | None] = mapped_column(Text)  # why it was refused or failed
    created_at: Mapped[datetime] = utc_created()
    updated_at: Mapped[datetime] = utc_updated()

    @property
    def cancellation(self) -> dict[str, Any] | None:
        """The last cancellation request, as the admin API and console show it."""
        if self.cancel_state is None:
            return None
        return {"state": self.cancel_state, "reason": self.cancel_reason, "requested_by": self.cancel_actor,
                "requested_at": self.cancel_requested_at, "detail": self.cancel_detail}


# pending: friend attributed, waiting for a first paid order that survives the return window;
# completed: advocate rewarded; rejected: a fraud rule or the weekly cap said no; reversed: the
# qualifying order was fully refunded or cancelled after the reward, which was taken back (final;
# still counted by the weekly cap, not by conversions).
REFERRAL_STATUSES = ("pending", "completed", "rejected", "reversed")


class Referral(ShopScoped, db.Model):
    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("shop_id", "friend_id"),
        Index("ix_referrals_advocate", "shop_id", "advocate_id", "completed_at"),
        # Analytics: conversions by day.
        Index("ix_referrals_completed", "shop_id", "completed_at", postgresql_where=text("status = 'completed'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    advocate_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    friend_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending", default="pending")
    rejection_reason: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="SET NULL"))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utc_created()
    updated_at: Mapped[datetime] = utc_updated()


# received: stored, not yet applied; processed: applied (or a no-op); waiting: depends on
# something not here yet (a refund before its order) and will be retried; failed: gave up.
INBOX_STATUSES = ("received", "processed", "waiting", "failed", "ignored")


class WebhookEvent(ShopScoped, db.Model):
    """The inbox: one row per platform event, stored before anything else happens."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("shop_id", "platform", "event_key"),
        Index("ix_webhook_events_unprocessed", "received_at", postgresql_where=text("processed_at IS NULL")),
        # The daily prune's (jobs.inbox.prune_inbox): rows arrive in received_at order.
        Index("ix_webhook_events_received_brin", "received_at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20), nullable=False)
    topic: Mapped[str] = mapped_column(String(64), nullable=False)
    event_key: Mapped[str] = mapped_column(String(255), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}", default=dict)
    triggered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="received", default="received")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while a worker reads the platform for this row with no transaction open (an edited
    # order: jobs.inbox): until then, other workers and the sweeper leave the row to it.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditLog(ShopScoped, db.Model):
    """Who changed what. Append-only, like the ledger."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_shop_time", "shop_id", "created_at"),
        Index("ix_audit_log_shop_customer", "shop_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="SET NULL"))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}", default=dict)
    created_at: Mapped[datetime] = utc_created()


class DataRequest(ShopScoped, db.Model):
    """A shopper's request for their data (GDPR): the export we produced, for the merchant."""

    __tablename__ = "data_requests"
    __table_args__ = (UniqueConstraint("shop_id", "platform_request_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    platform_request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    customer_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="SET NULL"))
    export: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}", default=dict)
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utc_created()
