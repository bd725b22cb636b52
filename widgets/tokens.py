"""Customer tokens for the widget: HS256 JWTs signed with the shop's widget secret (PyJWT).

Claims: `aud` = shop uid, `sub` = the customer's platform id (a string), `iat`, `exp`, with
exp - iat at most 24 h. The theme (Liquid), the WordPress plugin or a headless storefront's
server signs them; we only verify. The shop is looked up from the unverified `aud`, then the
signature is checked with that shop's secret, so a token of shop A can never act on shop B.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from datetime import datetime
from typing import NamedTuple

import jwt
from flask import current_app
from sqlalchemy.orm import Session

from app.crypto import token_cipher
from app.models import Shop

ALGORITHM = "HS256"
MAX_LIFETIME_SECONDS = 24 * 3600
# Storefront servers' clocks drift; a few seconds either way is not a replay.
LEEWAY_SECONDS = 30
_REQUIRED = ["exp", "iat", "sub", "aud"]
# Decrypted widget secrets per app, keyed by (shop id, stored ciphertext): Fernet decryption on
# every widget request is measurable CPU; a new or rotated secret is a new ciphertext, so a miss.
_SECRETS = "lojal_widget_secrets"
_MAX_CACHED_SECRETS = 10_000


class InvalidCustomerToken(Exception):
    """Not a token we accept; the message says why (shown in the 401 body)."""


def widget_secret(shop: Shop) -> str | None:
    encrypted = shop.widget_secret_enc
    if not encrypted:
        return None
    cache = current_app.extensions.setdefault(_SECRETS, {})
    key = (shop.id, encrypted)
    secret = cache.get(key)
    if secret is None:
        secret = token_cipher.decrypt(encrypted)
        if len(cache) >= _MAX_CACHED_SECRETS:  # bounded: rotated secrets' old entries go too
            cache.clear()
        cache[key] = secret
    return secret


def ensure_widget_secret(session: Session, shop: Shop) -> str:
    """The shop's widget secret, created (and stored encrypted) if it has none. The caller commits."""
    secret = widget_secret(shop)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        shop.widget_secret_enc = token_cipher.encrypt(secret)
        session.flush()
    return secret


def sign_customer_token(secret: str, shop_uid: str, customer_id: str, now: datetime, ttl: int = 3600) -> str:
    if not 0 < ttl <= MAX_LIFETIME_SECONDS:
        raise ValueError(f"ttl must be 1..{MAX_LIFETIME_SECONDS} seconds")
    issued = int(now.timestamp())
    claims = {"aud": shop_uid, "sub": str(customer_id), "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


# The shop is found from the token's unverified `aud` before anything is checked. That peek is
# a plain base64 + JSON read of the payload (PyJWT's unverified decode validates every base64
# character in Python and cost more than the rest of the peek); it decides nothing. The
# signature and claims are then checked by PyJWT, once.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class _Parsed(NamedTuple):
    header: dict
    claims: dict


def _segment(text: str) -> bytes:
    if len(text) % 4 == 1 or not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parse(token: str) -> _Parsed | None:
    """The token's parts, decoded; nothing in them is trusted yet."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = json.loads(_segment(parts[0])), json.loads(_segment(parts[1]))
    except (ValueError, binascii.Error):  # bad base64, bad UTF-8 or bad JSON
        return None
    except RecursionError:  # JSON nested deeper than the parser's recursion limit ("[[[[..."): garbage
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return _Parsed(header, claims)


def unverified_claims(token: str) -> tuple[str | None, str | None]:
    """(`aud`, `sub`) before any check: only used to find the shop whose secret verifies the token
    (and to read that customer in the same query); nothing is trusted until it verifies."""
    parsed = _parse(token)
    if parsed is None:
        return None, None
    audience, subject = parsed.claims.get("aud"), parsed.claims.get("sub")
    return (audience if _usable(audience) else None, subject if _usable(subject) else None)


def _usable(claim) -> bool:
    # A string the lookup can bind: PostgreSQL text holds no NUL (the driver refuses it: a 500).
    return isinstance(claim, str) and 0 < len(claim) <= 64 and "\x00" not in claim


def verify_customer_token(token: str, secret: str, shop_uid: str) -> str:
    """The customer's platform id (`sub`) if the token is valid for this shop, else InvalidCustomerToken."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=shop_uid, leeway=LEEWAY_SECONDS,
                            options={"require": _REQUIRED})
    except jwt.ExpiredSignatureError:
        raise InvalidCustomerToken("the token has expired") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidCustomerToken(f"the token has no `{exc.claim}` claim") from None
    except jwt.InvalidTokenError:
        raise InvalidCustomerToken("the token is not valid for this shop") from None
    issued, expires, subject = claims["iat"], claims["exp"], claims["sub"]
    if not isinstance(issued, int) or not isinstance(expires, int) or expires - issued > MAX_LIFETIME_SECONDS:
        raise InvalidCustomerToken("the token lives longer than 24 hours")
    if not _usable(subject):
        raise InvalidCustomerToken("the token's `sub` must be the customer id as a string")
    return subject
