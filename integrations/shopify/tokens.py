"""Shopify access tokens, Fernet-encrypted at rest and never logged."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.crypto import token_cipher
from app.models import Shop
from integrations.base import PermanentPlatformError


def store_access_token(shop: Shop, access_token: str, *, refresh_token: str | None = None,
                       expires_in: int | None = None, now: datetime) -> None:
    shop.access_token_enc = token_cipher.encrypt(access_token)
    shop.refresh_token_enc = token_cipher.encrypt(refresh_token) if refresh_token else None
    shop.token_expires_at = now + timedelta(seconds=expires_in) if expires_in else None


def current_access_token(session: Session, shop: Shop) -> str:
    """The shop's usable access token (decrypted). Raises PermanentPlatformError if there is none."""
    if not shop.access_token_enc:
        raise PermanentPlatformError(f"shop {shop.id} has no access token (uninstalled or never connected)")
    return token_cipher.decrypt(shop.access_token_enc)
