"""Shopify access tokens, Fernet-encrypted at rest and never logged.

Expiring offline tokens (60 min, with a refresh token) are refreshed here, shortly before
they expire, by whichever process needs one first. The refresh token is single-use: once
Shopify has answered a refresh, the old refresh token is spent. So the refresh runs
under a row lock on the shop (two workers never refresh at once; the second one waits,
re-reads and finds the fresh token) and is committed in its own short transaction, on its
own connection, before the new token is used. Were it written in the caller's
transaction, a later rollback there would throw away the only valid refresh token.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import shopify_app
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crypto import token_cipher
from app.extensions import db
from app.loyalty import audit
from app.models import Shop
from integrations.base import PermanentPlatformError, PlatformMisconfigured, TransientPlatformError
from integrations.shopify.domains import shop_handle

log = logging.getLogger(__name__)

# Refresh when less than this is left: long enough for a job started now to finish its calls.
REFRESH_MARGIN = timedelta(minutes=5)
# shopifyapp's log codes for failures worth retrying; every other failure (invalid_grant: the
# refresh token expired or was revoked) needs the merchant, except invalid_client (below).
_TRANSIENT_CODES = frozenset({"network_error", "server_error", "rate_limit_exceeded"})
# The refresh token itself is dead: forgotten like a refused access token (forget_refused_token).
_REFUSED_CODES = frozenset({"invalid_grant", "refresh_token_expired"})
# Shopify rejected our client id/secret, not the shop's token: a wrong setting (a secret rotated
# in Shopify but not here) fails every shop alike. Forgetting the tokens would need every
# merchant to come back; the refresh token stays usable, so keep it and retry.
_APP_CREDENTIALS_REFUSED = "invalid_client"
_CREDENTIAL_SETTINGS = "SHOPIFY_API_KEY / SHOPIFY_API_SECRET (and SHOPIFY_OLD_API_SECRET during a rotation)"
_TOKEN_COLUMNS = ("access_token_enc", "refresh_token_enc", "token_expires_at")


def app_config() -> shopify_app.AppConfig:
    """The app credentials in the form shopifyapp's functions take."""
    config = current_app.config
    if not config.get("SHOPIFY_API_KEY"):
        raise PermanentPlatformError("Shopify is not configured (SHOPIFY_API_KEY / SHOPIFY_API_SECRET)")
    return {
        "client_id": config["SHOPIFY_API_KEY"],
        "client_secret": config["SHOPIFY_API_SECRET"],
        "old_client_secret": config.get("SHOPIFY_OLD_API_SECRET"),
    }


def store_access_token(shop: Shop, access_token: str, *, refresh_token: str | None = None,
                       expires_in: int | None = None, expires_at: datetime | None = None,
                       now: datetime) -> None:
    """Encrypt and set the shop's token (and refresh token). Expiry: `expires_at`, else now + `expires_in`."""
    shop.access_token_enc = token_cipher.encrypt(access_token)
    shop.refresh_token_enc = token_cipher.encrypt(refresh_token) if refresh_token else None
    if expires_at is None and expires_in:
        expires_at = now + timedelta(seconds=expires_in)
    shop.token_expires_at = expires_at


def parse_expiry(value: str | None) -> datetime | None:
    """shopifyapp gives expiry as '2026-03-10T13:00:00Z'; None for a non-expiring token."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def needs_refresh(shop: Shop, now: datetime) -> bool:
    return shop.token_expires_at is not None and shop.token_expires_at - now <= REFRESH_MARGIN


def current_access_token(session: Session, shop: Shop, *, now: datetime | None = None) -> str:
    """The shop's usable access token (decrypted), refreshed first if it expires within 5 minutes.

    Raises PermanentPlatformError if there is none (or it can no longer be refreshed: the
    merchant must open the app again, which exchanges a new one). The caller must not hold
    a lock on the shop row: the refresh locks it from another connection.
    """
    if not shop.access_token_enc:
        raise PermanentPlatformError(f"shop {shop.id} has no access token (uninstalled, never connected, or refused "
                                     "by Shopify: the merchant must open the app to re-authorise)")
    now = now or datetime.now(UTC)
    if not needs_refresh(shop, now):
        return token_cipher.decrypt(shop.access_token_enc)
    try:
        return _refresh_in_own_transaction(session, shop.id, now)
    finally:
        if shop in session:
            # The caller's copy is stale (refreshed, or forgotten when refused); let it reload
            # the committed values when next read.
            session.expire(shop, list(_TOKEN_COLUMNS))


def _refresh_in_own_transaction(session: Session, shop_id: int, now: datetime) -> str:
    with Session(bind=session.get_bind(mapper=Shop), expire_on_commit=False) as own, own.begin():
        # FOR NO KEY UPDATE: it serialises refreshers, but not the foreign-key checks of rows
        # naming the shop (webhook inbox, ledger, redemptions) while Shopify answers.
        shop = own.execute(select(Shop).where(Shop.id == shop_id).with_for_update(key_share=True)).scalar_one()
        if not shop.access_token_enc:
            raise PermanentPlatformError(f"shop {shop_id} has no access token (uninstalled meanwhile)")
        if not needs_refresh(shop, now):
            # Another worker refreshed while we waited for the lock.
            return token_cipher.decrypt(shop.access_token_enc)
        if not shop.refresh_token_enc:
            raise PermanentPlatformError(f"shop {shop_id}: token expires and there is no refresh token; "
                                         "the merchant must open the app to re-authorise")
        result = shopify_app.refresh_access_token(
            # expires=None: we decide when to refresh (REFRESH_MARGIN); shopifyapp would skip the
            # call while more than 60 s are left. The refresh token's own expiry is not stored:
            # Shopify answers invalid_grant once it has passed.
            {"shop": shop_handle(shop.domain), "refresh_token": token_cipher.decrypt(shop.refresh_token_enc),
             "expires": None, "refresh_token_expires": None, "access_mode": "offline"},
            app_config(),
        )
        new = result.access_token
        if result.ok and new is not None:
            store_access_token(shop, new.token, refresh_token=new.refresh_token,
                               expires_at=parse_expiry(new.expires), now=now)
            return new.token
        code, domain, refused = result.log.code, shop.domain, token_cipher.decrypt(shop.access_token_enc)
    # Outside the lock (forget_refused_token skips a locked row): later jobs then stop at
    # current_access_token instead of asking Shopify again, until App Home exchanges a new token.
    if code in _REFUSED_CODES:
        forget_refused_token(domain, refused, reason=f"Shopify refused the refresh token ({code})")
    if code == _APP_CREDENTIALS_REFUSED:
        # Names the settings, never their values (nor the shop's tokens).
        message = (f"Shopify rejected the app's client credentials ({code}) refreshing shop {shop_id}'s token; "
                   f"its tokens are kept. Check {_CREDENTIAL_SETTINGS} against the app's client ID and secret "
                   "in Shopify")
        log.error("%s", message, extra={"shop_id": shop_id})
        raise PlatformMisconfigured(message)
    # Only shopifyapp's log code goes into the message: it never holds a token.
    error = TransientPlatformError if code in _TRANSIENT_CODES else PermanentPlatformError
    raise error(f"shop {shop_id}: token refresh failed ({code})")


def forget_refused_token(domain: str, refused: str,
                         reason: str = "Shopify refused the access token (401)") -> bool:
    """Shopify answered 401 to `refused` (or refused the refresh token that goes with it): drop
    the shop's credentials, so no job calls Shopify with them again. The shop stays installed
    (webhooks and the widget go on); App Home exchanges new credentials when the merchant next
    opens the app (has_usable_token).

    Only if `refused` is still the stored token: one stored meanwhile (the merchant came back)
    is kept. Committed on its own connection, so the caller's rollback cannot undo it; a row
    locked by someone else (an install or refresh storing a token, or the caller) is left
    alone, and the next 401 drops it. True if dropped.
    """
    with Session(bind=db.session.get_bind(mapper=Shop)) as own, own.begin():
        shop = own.execute(select(Shop).where(Shop.platform == "shopify", Shop.domain == domain)
                           .with_for_update(skip_locked=True)).scalar_one_or_none()
        if shop is None or not shop.access_token_enc or token_cipher.decrypt(shop.access_token_enc) != refused:
            return False
        shop.access_token_enc = shop.refresh_token_enc = shop.token_expires_at = None
        audit.record(own, shop.id, "system", "shop.reauthorisation_needed", target_type="shop", target_id=shop.id,
                     details={"reason": reason})
        log.warning("%s: credentials dropped; the merchant must open the app to re-authorise", reason,
                    extra={"shop_id": shop.id})
        return True
