"""Outgoing lifecycle emails: one row per (shop, send key), the idempotency record of a send."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import ShopScoped, utc_created

# pending: recorded, not yet handed to SMTP; sending: handed to SMTP (outcome unknown until
# marked sent); sent: the server accepted it; failed: gave up; skipped: not to be sent
# (no email, unsubscribed, redacted, no marketing consent, no SMTP configured).
EMAIL_SEND_STATUSES = ("pending", "sending", "sent", "failed", "skipped")


class EmailSend(ShopScoped, db.Model):
    __tablename__ = "email_sends"
    __table_args__ = (
        UniqueConstraint("shop_id", "send_key"),
        # Analytics: emails accepted per template and day (app.loyalty.analytics.campaigns).
        Index("ix_email_sends_shop_template_sent", "shop_id", "template", "sent_at",
              postgresql_where=text("status = 'sent'")),
        CheckConstraint("status IN (%s)" % ", ".join(f"'{s}'" for s in EMAIL_SEND_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"),
                                             nullable=False, index=True)
    template: Mapped[str] = mapped_column(String(64), nullable=False)
    send_key: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending", default="pending")
    # Deterministic per row, set before the first hand-off to SMTP (see jobs.emails).
    message_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = utc_created()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
