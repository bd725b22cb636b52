"""What the storefront widget records: referral link clicks (no raw IP is ever stored)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import ShopScoped


class ReferralClick(ShopScoped, db.Model):
    """A friend's browser followed an advocate's /r/<code> link."""

    __tablename__ = "referral_clicks"
    __table_args__ = (
        Index("ix_referral_clicks_advocate", "shop_id", "advocate_id", "clicked_at"),
        # Analytics: a shop's clicks in a period, per day.
        Index("ix_referral_clicks_shop_clicked", "shop_id", "clicked_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    advocate_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    clicked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # HMAC of the client IP with the app's secret: counts distinct visitors without keeping the address.
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
