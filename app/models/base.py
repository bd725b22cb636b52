"""Column helpers shared by the models and the one shop-scoping helper."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import BigInteger, DateTime, ForeignKey, Numeric, Select, func, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

# Money: exact decimals in the shop's currency (4 places covers KWD/BHD and unit prices).
Money = Numeric(18, 4)


def utc_created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def utc_updated() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False)


def money(default: str | None = "0", nullable: bool = False) -> Mapped[Decimal]:
    return mapped_column(Money, nullable=nullable, server_default=default,
                         default=None if default is None else Decimal(default))


class ShopScoped:
    """Every row belongs to one shop; deleting the shop deletes its rows."""

    # A hot table whose composite (shop_id, ...) indexes already serve every shop-scoped lookup
    # (and the cascade from shops) sets this False: one index entry less per row written.
    shop_id_indexed = True

    @declared_attr
    def shop_id(cls) -> Mapped[int]:
        return mapped_column(BigInteger, ForeignKey("shops.id", ondelete="CASCADE"), nullable=False,
                             index=cls.shop_id_indexed)


M = TypeVar("M")


def for_shop(model: type[M], shop_id: int) -> Select[tuple[M]]:
    """The only way to start a query on shop-owned rows: scoped to one shop."""
    return select(model).where(model.shop_id == shop_id)  # type: ignore[attr-defined]


def get_for_shop(session: Session, model: type[M], shop_id: int, row_id: Any, *, lock: bool = False) -> M | None:
    """Fetch one row by primary key, but only if it belongs to `shop_id`."""
    stmt = for_shop(model, shop_id).where(model.id == row_id)  # type: ignore[attr-defined]
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()
