"""Staff accounts of a shop's console and their personal API tokens."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import ShopScoped, utc_created, utc_updated

# owner: everything, manages staff; support: customers (read, adjust within limits, resend
# codes); viewer: read only. What each may do is app.admin.auth.ROLE_PERMISSIONS.
STAFF_ROLES = ("owner", "support", "viewer")


class StaffUser(ShopScoped, db.Model):
    __tablename__ = "staff_users"
    __table_args__ = (
        UniqueConstraint("shop_id", "email"),
        CheckConstraint("role IN (%s)" % ", ".join(f"'{r}'" for r in STAFF_ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), nullable=False)  # stored lower-cased
    name: Mapped[str] = mapped_column(String(255), nullable=False, server_default="", default="")
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    # argon2id (argon2-cffi); None until a password is set.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Part of every session cookie: bumping it (disable, role or password change) ends them all.
    session_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1", default=1)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An invitation: SHA-256 of a one-time token (shown once to the inviting owner) that lets
    # the invitee choose a password before it expires.
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utc_created()
    updated_at: Mapped[datetime] = utc_updated()


class ApiToken(ShopScoped, db.Model):
    """A personal API token: acts as its staff member, with that member's role."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    staff_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False,
                                          index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # SHA-256 hex of the whole token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(String(24), nullable=False)  # "lojal_pat_ab12": recognisable in lists
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = utc_created()
