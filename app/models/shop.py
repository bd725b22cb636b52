"""A merchant's store, on one platform."""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utc_created, utc_updated

# "pending": a WooCommerce store whose posted keys no call has proven yet (nothing acts for it).
SHOP_STATUSES = ("active", "pending", "uninstalled", "disconnected")


def new_shop_uid() -> str:
    return secrets.token_hex(8)


class Shop(db.Model):
    __tablename__ = "shops"
    __table_args__ = (UniqueConstraint("platform", "domain"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Public, unguessable id used in URLs (e.g. the WooCommerce webhook path).
    uid: Mapped[str] = mapped_column(String(32), unique=True, nullable=False, default=new_shop_uid)
    platform: Mapped[str] = mapped_column(String(20), nullable=False)
    domain: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, server_default="USD", default="USD")
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC", default="UTC")
    locale: Mapped[str] = mapped_column(String(16), nullable=False, server_default="en", default="en")
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="active", default="active")
    # Platform credentials and our per-shop secrets, Fernet-encrypted (app.crypto).
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    widget_secret_enc: Mapped[str | None] = mapped_column(Text)
    webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    # WooCommerce: the consumer secret (the consumer key is in access_token_enc).
    api_secret_enc: Mapped[str | None] = mapped_column(Text)
    # Program settings; validated and defaulted by app.loyalty.program.ProgramSettings.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}", default=dict)
    installed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    uninstalled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Reconciliation cursor: orders updated after this were (or will be) fetched from the platform.
    orders_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Carried in the console cookie of a merchant signed in through App Bridge (no staff row, so no
    # staff session_version): signing out and an uninstall bump it, ending every copy of that cookie.
    console_session_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1", default=1)
    created_at: Mapped[datetime] = utc_created()
    updated_at: Mapped[datetime] = utc_updated()

    def __repr__(self) -> str:
        return f"<Shop {self.id} {self.platform}:{self.domain}>"
