"""Precomputed analytics: a shop's summary and daily series for a standard period, refreshed
hourly by a job so the dashboard reads one row instead of aggregating millions."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import ShopScoped


class AnalyticsSnapshot(ShopScoped, db.Model):
    __tablename__ = "analytics_snapshots"
    __table_args__ = (UniqueConstraint("shop_id", "period_start", "period_end",
                                       name="uq_analytics_snapshots_shop_period"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    summary: Mapped[dict] = mapped_column(JSONB, nullable=False)  # app.loyalty.analytics.summary
    series: Mapped[list] = mapped_column(JSONB, nullable=False)  # app.loyalty.analytics.daily_series
