"""WooCommerce key exchange (`/wc-auth/v1/authorize`): connect → the store's consent screen →
the store POSTs our keys to /woocommerce/callback → the merchant's browser comes back to
/woocommerce/return.

- `store_url` is validated (integrations.woocommerce.urls) before anything else, so no
  redirect ever goes to a host that could not be a public store;
- `user_id` is a random nonce kept in Redis for NONCE_TTL, mapped to the store URL: the
  callback is accepted once (GETDEL), only for a nonce we issued, and stores the keys for
  the store *we* sent the merchant to, never one named in the callback body;
- WooCommerce deletes the keys it just made unless the callback answers exactly 200, so the
  callback does the minimum (store encrypted, commit, enqueue) and answers 200 at once;
- both are public and write (a nonce; a shop row): each is limited per client IP (429 with
  Retry-After, on the widget's limiter), and a callback for a new store is refused (503) while
  WOOCOMMERCE_MAX_PENDING_STORES stores are pending.
/woocommerce/return sends the merchant to the console's store page (/admin/store), which shows
whether the store connected, declined or the keys never arrived.
"""
from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, redirect, request

from app.errors import error_response
from app.extensions import db, redis_connection
from integrations.woocommerce.connect import accepts_store, connect_store
from integrations.woocommerce.urls import valid_store_url
from widgets.hardening import hit_ip_limit

log = logging.getLogger(__name__)
bp = Blueprint("woocommerce_connect", __name__, url_prefix="/woocommerce")

# The merchant reads the store's consent screen (and may have to log in to WordPress first).
NONCE_TTL = 900
_NONCE_KEY = "lojal:woocommerce:connect-nonce:"
_CONNECTED_KEY = "lojal:woocommerce:connected:"  # nonce -> shop uid, for /woocommerce/return
_MAX_FIELD = 255
# Pending stores leave that state within a week (connected, or given up): try again later.
_PENDING_FULL_RETRY_AFTER = 3600


def _redis():
    return redis_connection.client(current_app._get_current_object())


def _app_url() -> str:
    return current_app.config["APP_URL"].rstrip("/")


@bp.get("/connect")
def connect():
    hit_ip_limit("WOOCOMMERCE_CONNECT_RATE_LIMIT", "woocommerce-connect")
    store_url = valid_store_url(request.args.get("store_url"),
                                allow_http=bool(current_app.config.get("WOOCOMMERCE_ALLOW_HTTP")))
    if store_url is None:
        return error_response(400, "invalid_store_url",
                              "store_url must be your store's public https address, e.g. https://shop.example.com.")
    nonce = secrets.token_urlsafe(32)
    _redis().set(_NONCE_KEY + nonce, store_url, ex=NONCE_TTL)
    query = urlencode({
        "app_name": "Lojal", "scope": "read_write", "user_id": nonce,
        "return_url": f"{_app_url()}/woocommerce/return", "callback_url": f"{_app_url()}/woocommerce/callback",
    })
    return redirect(f"{store_url}/wc-auth/v1/authorize?{query}")


def _text_field(body: dict, name: str) -> str | None:
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_FIELD:
        return None
    return value.strip()


@bp.post("/callback")
def callback():
    hit_ip_limit("WOOCOMMERCE_CALLBACK_RATE_LIMIT", "woocommerce-callback")
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    nonce = _text_field(body, "user_id")
    # GETDEL: one callback per nonce, even with two arriving at once.
    store_url = _redis().getdel(_NONCE_KEY + nonce) if nonce else None
    if store_url is None:
        return error_response(403, "unknown_user_id", "This connection was not started here, or was already used.")
    store_url = store_url.decode() if isinstance(store_url, bytes) else store_url
    consumer_key, consumer_secret = _text_field(body, "consumer_key"), _text_field(body, "consumer_secret")
    if consumer_key is None or consumer_secret is None:
        return error_response(400, "missing_keys", "consumer_key and consumer_secret are required.")
    # Not a secret: a plain comparison (compare_digest raises TypeError on non-ASCII text, a 500).
    if body.get("key_permissions") != "read_write":
        return error_response(400, "insufficient_permissions", "Lojal needs read_write access to the store.")
    if not accepts_store(db.session, store_url, current_app.config["WOOCOMMERCE_MAX_PENDING_STORES"]):
        db.session.rollback()
        log.warning("woocommerce connect refused: too many stores pending", extra={"store_url": store_url})
        response, status = error_response(503, "too_many_pending_stores",
                                          "Too many stores are waiting to finish connecting; try again later.")
        response.headers["Retry-After"] = str(_PENDING_FULL_RETRY_AFTER)
        return response, status
    shop = connect_store(db.session, store_url, consumer_key, consumer_secret, now=datetime.now(UTC))
    _redis().set(_CONNECTED_KEY + nonce, shop.uid, ex=NONCE_TTL)
    return jsonify(status="connected"), 200


@bp.get("/return")
def connect_return():
    """Back to the console's store page, which says what happened (after sign-in if need be)."""
    nonce = request.args.get("user_id", "")
    uid = _redis().get(_CONNECTED_KEY + nonce) if nonce and len(nonce) <= _MAX_FIELD else None
    if request.args.get("success") == "1" and uid is not None:
        outcome = "connected"
    else:
        outcome = "declined" if request.args.get("success") == "0" else "failed"
    return redirect(f"/admin/store?{urlencode({'connect': outcome})}")
