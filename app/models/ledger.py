"""The points ledger: append-only; a database trigger refuses UPDATE and DELETE."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import ShopScoped, utc_created

LEDGER_KINDS = (
    "earn",             # points granted (order, action, referral, custom); may land as pending
    "release",          # pending points become spendable after the return window
    "reverse",          # refund / cancellation takes back an order's points
    "redeem",           # points spent on a reward
    "redeem_reversal",  # a failed or cancelled redemption gives the points back
    "adjust",           # staff adjustment, with a reason
    "expire",           # inactivity expiry
)


class LedgerEntry(ShopScoped, db.Model):
    shop_id_indexed = False  # written on every order event; see migration 0013
    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("shop_id", "idempotency_key"),
        Index("ix_ledger_entries_customer", "shop_id", "customer_id", "id"),
        # Analytics (app.loyalty.analytics.points): a shop's points flows in a period; each
        # customer's first entry (membership) read from the index alone.
        Index("ix_ledger_entries_shop_created", "shop_id", "created_at"),
        Index("ix_ledger_entries_shop_customer_created", "shop_id", "customer_id", "created_at"),
        CheckConstraint("kind IN (%s)" % ", ".join(f"'{k}'" for k in LEDGER_KINDS), name="kind"),
        CheckConstraint("points <> 0 OR pending_delta <> 0 OR uncollected <> 0 OR expiry_cover <> 0", name="nonzero"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    # Which rule or source: order, signup, birthday, nth_order, referral_advocate, ...
    source: Mapped[str | None] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)  # spendable balance delta
    pending_delta: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)  # held-points delta
    # Points a reversal could not collect because the shop clamps balances at zero.
    uncollected: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    # Points of a reversal an earlier expiry had already taken (so not taken again from the
    # balance); details["expire_entry_id"] names that expire entry, whose amount it draws on.
    expiry_cover: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False)
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="CASCADE"))
    redemption_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("redemptions.id", ondelete="CASCADE"))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}", default=dict)
    created_at: Mapped[datetime] = utc_created()
