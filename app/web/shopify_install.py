"""Shopify install routes: the authorization code grant and the embedded App URL.

Code grant (`/shopify/install` → Shopify's consent screen → `/shopify/callback`):
- the `shop` parameter is validated before anything else, so no redirect or outbound call
  ever goes to a host that is not `name.myshopify.com`;
- `state` is a random nonce, also kept in a signed, HttpOnly, SameSite=Lax cookie bound to
  the shop: the callback must come back to the browser that started the install;
- the callback checks the HMAC (ShopifyAPI's Session.validate_hmac: constant-time) with the
  app secret and, during a secret rotation, SHOPIFY_OLD_API_SECRET too, the
  state against the cookie, the timestamp window below, and that the nonce is unused
  (Redis, with the cookie's lifetime as TTL), then exchanges the code (our own request, with a
  timeout: integrations.shopify.install.request_offline_token) and runs the shared post-install.
  Any failure of that request (refused, timed out, cut off, not JSON) answers 502 and installs nothing.

Embedded (`/shopify/app`, the App URL): Shopify-managed install, see
integrations.shopify.install.install_with_id_token.
"""
from __future__ import annotations

import functools
import hmac
import logging
import secrets
from datetime import UTC, datetime
from urllib.parse import urlencode

import shopify
import shopify_app
from flask import Blueprint, Response, current_app, redirect, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.errors import error_response
from app.extensions import db, redis_connection
from integrations.base import PlatformError
from integrations.shopify.domains import valid_shop_domain
from integrations.shopify.install import install_with_id_token, post_install, request_offline_token
from integrations.shopify.tokens import app_config

log = logging.getLogger(__name__)
bp = Blueprint("shopify_install", __name__, url_prefix="/shopify")

STATE_COOKIE = "lojal_shopify_state"
# The merchant reads the consent screen between install and callback: 10 minutes is enough
# for that and short enough that a stolen cookie is soon worthless.
STATE_MAX_AGE = 600
# Callback timestamp window. Shopify stamps the callback when it redirects the browser, so a
# genuine one arrives within seconds; 5 minutes covers slow networks and clock drift. A
# timestamp more than 90 s in the future (Shopify's JS library's tolerance) is clock skew
# we do not accept. Replays within the window are stopped by the single-use nonce.
CALLBACK_MAX_AGE = 300
CALLBACK_MAX_FUTURE = 90
PATCH_ID_TOKEN_PATH = "/shopify/patch-id-token"


@bp.before_request
def _require_shopify_config():
    if not current_app.config.get("SHOPIFY_API_KEY"):
        return error_response(503, "shopify_not_configured", "This server has no Shopify app credentials.")
    return None


def _state_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="shopify-oauth-state")


@functools.lru_cache(maxsize=8)
def _session_class(api_key: str, secret: str) -> type[shopify.Session]:
    # ShopifyAPI keeps the credentials on the Session class (Session.setup); a subclass per
    # credential pair keeps them out of global state shared by every app in the process.
    return type("LojalShopifySession", (shopify.Session,), {"api_key": api_key, "secret": secret})


def _signed_by_shopify(params: dict[str, str]) -> bool:
    """The callback's HMAC matches the app secret or, mid-rotation, the old one.

    Both secrets are always tried (each comparison constant-time), so the time taken does not
    tell which one matched.
    """
    config = current_app.config
    signed = False
    for secret in (config["SHOPIFY_API_SECRET"], config.get("SHOPIFY_OLD_API_SECRET")):
        if secret:
            signed |= _session_class(config["SHOPIFY_API_KEY"], secret).validate_hmac(params)
    return signed


def _shopify_session(domain: str) -> shopify.Session:
    config = current_app.config
    session_class = _session_class(config["SHOPIFY_API_KEY"], config["SHOPIFY_API_SECRET"])
    return session_class(domain, config["SHOPIFY_API_VERSION"])


def _redirect_uri() -> str:
    return f"{current_app.config['APP_URL'].rstrip('/')}/shopify/callback"


def _invalid_shop():
    return error_response(400, "invalid_shop", "shop must be a shop domain like name.myshopify.com.")


@bp.get("/install")
def install():
    domain = valid_shop_domain(request.args.get("shop"))
    if domain is None:
        return _invalid_shop()
    nonce = secrets.token_urlsafe(32)
    scopes = [s.strip() for s in current_app.config["SHOPIFY_SCOPES"].split(",") if s.strip()]
    url = _shopify_session(domain).create_permission_url(scopes, _redirect_uri(), state=nonce)
    response = redirect(url)
    response.set_cookie(
        STATE_COOKIE, _state_serializer().dumps({"nonce": nonce, "shop": domain}),
        max_age=STATE_MAX_AGE, path="/shopify", httponly=True, samesite="Lax",
        secure=current_app.config["APP_URL"].startswith("https://"),
    )
    return response


def _reject(status: int, code: str, message: str):
    body, status = error_response(status, code, message)
    body.status_code = status
    body.delete_cookie(STATE_COOKIE, path="/shopify")
    return body


def _timestamp_fresh(value: str | None, now: datetime) -> bool:
    if not value or not value.isdigit():
        return False
    age = now.timestamp() - int(value)
    return -CALLBACK_MAX_FUTURE <= age <= CALLBACK_MAX_AGE


def _cookie_state() -> dict | None:
    raw = request.cookies.get(STATE_COOKIE)
    if not raw:
        return None
    try:
        return _state_serializer().loads(raw, max_age=STATE_MAX_AGE)
    except BadSignature:  # also SignatureExpired
        return None


def _claim_nonce(nonce: str) -> bool:
    """Mark the nonce used; False if it already was (a replayed callback)."""
    client = redis_connection.client(current_app._get_current_object())
    return bool(client.set(f"lojal:shopify:oauth-nonce:{nonce}", 1, nx=True, ex=STATE_MAX_AGE))


@bp.get("/callback")
def callback():
    domain = valid_shop_domain(request.args.get("shop"))
    if domain is None:
        return _reject(400, "invalid_shop", "shop must be a shop domain like name.myshopify.com.")
    params = request.args.to_dict()
    if not _signed_by_shopify(params):
        return _reject(403, "invalid_hmac", "The request signature does not match.")
    now = datetime.now(UTC)
    if not _timestamp_fresh(params.get("timestamp"), now):
        return _reject(403, "stale_request", "The request timestamp is outside the accepted window.")
    state = _cookie_state()
    if state is None:
        return _reject(403, "state_missing", "No install in progress in this browser; start the install again.")
    if not hmac.compare_digest(str(params.get("state", "")), str(state["nonce"])) or state["shop"] != domain:
        return _reject(403, "state_mismatch", "The install state does not match this browser's.")
    if not params.get("code"):
        return _reject(400, "missing_code", "The callback carries no authorization code.")
    if not _claim_nonce(state["nonce"]):
        return _reject(403, "replayed", "This install callback was already used.")
    try:
        access_token = request_offline_token(domain, params["code"])
    except PlatformError as exc:  # its message never holds the code or a token
        log.warning("shopify code exchange failed for %s: %s", domain, exc)
        return _reject(502, "token_request_failed", "Shopify did not issue an access token; start the install again.")
    # The code grant asks for a non-expiring offline token (as ShopifyAPI's request_token did);
    # the embedded path (/shopify/app) gets expiring ones.
    post_install(db.session, domain, access_token, now=now)
    response = redirect(f"/admin?{urlencode({'shop': domain})}")
    response.delete_cookie(STATE_COOKIE, path="/shopify")
    return response


def _shopify_request() -> shopify_app.RequestInput:
    """The request as shopifyapp reads it, with our public URL (we may sit behind a proxy)."""
    query = request.query_string.decode()
    url = f"{current_app.config['APP_URL'].rstrip('/')}{request.path}" + (f"?{query}" if query else "")
    return {"method": request.method, "headers": dict(request.headers), "url": url, "body": ""}


def _from_shopify(res: shopify_app.Res, code: str):
    """Answer with shopifyapp's suggested response; errors in our JSON shape, keeping its headers."""
    if res.status >= 400:
        response, status = error_response(res.status, code, "Shopify session verification failed.")
    else:
        response, status = Response(res.body, mimetype="text/html"), res.status
    response.status_code = status
    for name, value in res.headers.items():
        response.headers[name] = value
    return response


@bp.get("/app")
def app_home():
    outcome = install_with_id_token(db.session, _shopify_request(), now=datetime.now(UTC),
                                    patch_id_token_path=PATCH_ID_TOKEN_PATH)
    if outcome.shop is None:
        return _from_shopify(outcome.response, outcome.code)
    target = {"shop": outcome.shop.domain}
    if request.args.get("host"):
        target["host"] = request.args["host"]  # App Bridge needs it in the console
    response = redirect(f"/admin?{urlencode(target)}")
    for name, value in outcome.response.headers.items():  # e.g. CSP frame-ancestors
        response.headers[name] = value
    return response


@bp.get("/patch-id-token")
def patch_id_token():
    """The page App Bridge loads to hand a fresh id token back to /shopify/app."""
    if valid_shop_domain(request.args.get("shop")) is None:
        return _invalid_shop()
    result = shopify_app.app_home_patch_id_token(_shopify_request(), app_config())
    return _from_shopify(result.response, result.log.code)
