"""What a shop's program is made of: earn rules, rewards and VIP tiers."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Integer, Numeric, String,
                        UniqueConstraint, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import Money, ShopScoped, utc_created, utc_updated

EARN_RULE_KINDS = ("order", "signup", "birthday", "nth_order", "referral_advocate", "referral_friend", "custom")
REWARD_KINDS = ("fixed_amount", "percentage", "free_shipping", "free_product")


class EarnRule(ShopScoped, db.Model):
    __tablename__ = "earn_rules"
    __table_args__ = (
        UniqueConstraint("shop_id", "kind", "action_key"),
        CheckConstraint("kind IN (%s)" % ", ".join(f"'{k}'" for k in EARN_RULE_KINDS), name="kind"),
        CheckConstraint("points IS NULL OR points >= 0", name="points_nonneg"),
        CheckConstraint("points_per_unit IS NULL OR points_per_unit >= 0", name="rate_nonneg"),
        CheckConstraint("every_n IS NULL OR every_n >= 2", name="every_n"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    # For kind=custom: the merchant's action name (e.g. "review", "instagram_follow").
    action_key: Mapped[str] = mapped_column(String(64), nullable=False, server_default="", default="")
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    points: Mapped[int | None] = mapped_column(Integer)  # fixed points (actions, bonuses)
    points_per_unit: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))  # kind=order
    every_n: Mapped[int | None] = mapped_column(Integer)  # kind=nth_order
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"), default=True)
    created_at: Mapped[datetime] = utc_created()
    updated_at: Mapped[datetime] = utc_updated()


class Reward(ShopScoped, db.Model):
    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("kind IN (%s)" % ", ".join(f"'{k}'" for k in REWARD_KINDS), name="kind"),
        CheckConstraint("points_cost > 0", name="cost_positive"),
        CheckConstraint("value IS NULL OR value > 0", name="value_positive"),
        CheckConstraint("kind <> 'percentage' OR value <= 100", name="percentage_max"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    points_cost: Mapped[int] = mapped_column(Integer, nullable=False)
    value: Mapped[Decimal | None] = mapped_column(Money)  # amount off, or percent
    product_ref: Mapped[str | None] = mapped_column(String(128))  # kind=free_product
    minimum_order: Mapped[Decimal | None] = mapped_column(Money)
    code_expiry_days: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"), default=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    created_at: Mapped[datetime] = utc_created()
    updated_at: Mapped[datetime] = utc_updated()


class Tier(ShopScoped, db.Model):
    __tablename__ = "tiers"
    __table_args__ = (
        UniqueConstraint("shop_id", "name"),
        UniqueConstraint("shop_id", "threshold"),
        CheckConstraint("threshold >= 0", name="threshold_nonneg"),
        CheckConstraint("multiplier >= 1", name="multiplier_min"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    # Spend (shop currency) or points earned, per the shop's tier basis.
    threshold: Mapped[Decimal] = mapped_column(Money, nullable=False)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 3), nullable=False, server_default="1", default=Decimal("1"))
    perks: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default="[]", default=list)
    created_at: Mapped[datetime] = utc_created()
    updated_at: Mapped[datetime] = utc_updated()


class TierReview(db.Model):
    """Per shop: the last tier period start whose review is done or owed nothing
    (app.loyalty.tier_review). In the database, not Redis: a lost record would allow a second,
    mid-period demotion."""
    __tablename__ = "tier_reviews"

    shop_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    reviewed_through: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = utc_updated()
