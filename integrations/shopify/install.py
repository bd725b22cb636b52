"""Installing a Shopify shop: every path (code grant, token exchange, custom-app CLI) ends here.

`request_offline_token` is the code grant's token request (the callback's HMAC, state and
timestamp are checked by the route first).

`post_install` owns its transaction: it upserts the shop, stores the token, makes sure the
shop has a widget secret and a program, commits, and only then enqueues the follow-up jobs
(webhook subscriptions, order backfill), so a job never runs before the shop row exists.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

import httpx
import shopify_app
from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.crypto import token_cipher
from app.loyalty.program import create_default_program
from app.models import EarnRule, Shop
from integrations.shopify.domains import shop_handle, valid_shop_domain
from integrations.base import PermanentPlatformError, PlatformMisconfigured, TransientPlatformError
from integrations.shopify.tokens import (
    REFRESH_MARGIN, app_config, current_access_token, needs_refresh, parse_expiry, store_access_token,
)
from jobs.queues import enqueue
from jobs.shopify_sync import enqueue_backfill

log = logging.getLogger(__name__)

PLATFORM = "shopify"
# Shopify answers a token request in well under a second. ShopifyAPI's request_token offers no
# timeout (a bare urlopen), so we make the request ourselves: 10 s per connect/read/write keeps
# a hung call well inside gunicorn's 30 s worker timeout.
TOKEN_REQUEST_TIMEOUT = httpx.Timeout(10.0)
# Topics Lojal subscribes to per shop through Admin GraphQL (webhookSubscriptionCreate).
# The three mandatory compliance topics (customers/data_request, customers/redact,
# shop/redact) cannot be subscribed through the API: they are set in the app's
# shopify.app.toml / Partner Dashboard, pointing at the same {APP_URL}/shopify/webhooks.
WEBHOOK_TOPICS = (
    "orders/paid",
    "orders/create",
    "orders/fulfilled",
    "orders/cancelled",
    "orders/edited",  # items added after checkout earn (app.loyalty.order_edits.apply_order_edited)
    "refunds/create",
    "customers/create",
    "customers/update",
    "app/uninstalled",
)


def request_offline_token(domain: str, code: str) -> str:
    """Exchange a code-grant `code` for the shop's (non-expiring) offline access token.

    Every failure raises a PlatformError whose message names only its kind (the status or the
    exception's type, never the code or a token): no answer, a timeout, a dropped connection,
    429/5xx -> Transient; a refused code, a body that is not JSON or holds no token -> Permanent.
    """
    config = app_config()
    form = {"client_id": config["client_id"], "client_secret": config["client_secret"], "code": code}
    try:
        response = httpx.post(f"https://{domain}/admin/oauth/access_token", data=form,
                              headers={"Accept": "application/json"}, timeout=TOKEN_REQUEST_TIMEOUT)
    except httpx.HTTPError as exc:
        raise TransientPlatformError(f"Shopify token request failed ({type(exc).__name__})") from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientPlatformError(f"Shopify token request answered {status}")
    if status != 200:
        raise PermanentPlatformError(f"Shopify token request answered {status}")
    try:
        payload = response.json()
    except ValueError:  # also a body that is not UTF-8
        raise PermanentPlatformError("Shopify token request answered a body that is not JSON") from None
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise PermanentPlatformError("Shopify token request answered without an access token")
    return token


def post_install(session: Session, domain: str, access_token: str, *, refresh_token: str | None = None,
                 expires_at: datetime | None = None, now: datetime) -> Shop:
    """Upsert the shop with its token, commit, then enqueue webhook subscription and backfill."""
    shop = _upsert_shop(session, domain, now)
    replaced = shop.access_token_enc and (expires_at is not None
                                          or token_cipher.decrypt(shop.access_token_enc) != access_token)
    if replaced:
        # Shopify answers a repeated grant with the same non-expiring offline token and issues a
        # new one only after an uninstall: this is a reinstall even though the app/uninstalled
        # delivery has not been processed yet, and that late delivery must not undo it. An
        # exchanged (expiring) token replaces one only when that one stopped working (its refresh
        # refused, as after an uninstall) and proves the app is installed now: the same holds.
        shop.installed_at = now
    store_access_token(shop, access_token, refresh_token=refresh_token, expires_at=expires_at, now=now)
    if not shop.widget_secret_enc:
        shop.widget_secret_enc = token_cipher.encrypt(secrets.token_urlsafe(32))
    # A reinstall keeps the merchant's program; only a shop without one gets the default.
    if not session.scalar(select(exists().where(EarnRule.shop_id == shop.id))):
        create_default_program(session, shop.id)
    session.commit()
    log.info("shopify shop installed", extra={"shop_id": shop.id})
    enqueue("jobs.shopify_install.fetch_shop_details", shop.id, queue_name="maintenance")
    enqueue("jobs.shopify_install.subscribe_webhooks", shop.id, queue_name="maintenance")
    enqueue_backfill(shop.id)  # rate-limited per shop, like every Admin API job
    return shop


def _upsert_shop(session: Session, domain: str, now: datetime) -> Shop:
    """The shop row, created if new, locked; a reinstall after uninstall makes it active again.

    INSERT … ON CONFLICT DO NOTHING then SELECT … FOR UPDATE: two installs of one shop at
    once (a double-clicked callback, the console opening meanwhile) end with one row, and
    the second waits for the first to commit instead of failing on the unique key.
    """
    session.execute(
        insert(Shop)
        .values(platform=PLATFORM, domain=domain, name=shop_handle(domain), installed_at=now)
        .on_conflict_do_nothing(index_elements=["platform", "domain"])
    )
    shop = session.execute(
        select(Shop).where(Shop.platform == PLATFORM, Shop.domain == domain).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if shop.status != "active":
        shop.installed_at = now
    shop.status = "active"
    shop.uninstalled_at = None
    return shop


def has_usable_token(shop: Shop | None, now: datetime) -> bool:
    """True when the shop is installed with a token we can use (or refresh) without the merchant."""
    if shop is None or shop.status != "active" or not shop.access_token_enc:
        return False
    if shop.token_expires_at is None or shop.token_expires_at - now > REFRESH_MARGIN:
        return True
    return bool(shop.refresh_token_enc)


def _refresh_refused(session: Session, shop: Shop, now: datetime) -> bool:
    """Refresh a token that is due now; True if Shopify refuses the refresh token (expired after
    90 idle days, or revoked): the merchant is here with an id token that can exchange a new one."""
    if not needs_refresh(shop, now):
        return False
    try:
        current_access_token(session, shop, now=now)
    except PlatformMisconfigured:
        # invalid_client: a wrong secret, or (as shopifyapp reads it) an uninstall revoked the
        # tokens. The merchant is here: exchange a new one (a wrong secret fails that too, harmlessly).
        return True
    except TransientPlatformError:
        return False  # Shopify is down: let the merchant in; a job retries the refresh
    except PermanentPlatformError:
        return True
    return False


@dataclass(frozen=True)
class AppHomeOutcome:
    """What the embedded App URL answers: the shop when verified, and shopifyapp's response
    (on success its headers, e.g. Content-Security-Policy frame-ancestors, belong on ours)."""
    shop: Shop | None
    response: shopify_app.Res
    code: str  # shopifyapp's log code: "verified", "invalid_id_token", …
    installed: bool = False


def install_with_id_token(session: Session, id_token_request: shopify_app.RequestInput, *, now: datetime,
                          patch_id_token_path: str) -> AppHomeOutcome:
    """Shopify-managed install: verify the App Home id token; exchange it for an expiring
    offline token when the shop has none usable; then post-install.

    `id_token_request` is the request as shopifyapp reads it (method, headers, public URL, body).
    """
    config = app_config()
    verified = shopify_app.verify_app_home_req(id_token_request, config, patch_id_token_path)
    if not verified.ok:
        return AppHomeOutcome(None, verified.response, verified.log.code)
    domain = valid_shop_domain(f"{verified.shop}.myshopify.com")
    if domain is None:
        return AppHomeOutcome(None, shopify_app.Res(status=400, body="Bad Request", headers={}), "invalid_shop")
    shop = session.scalar(select(Shop).where(Shop.platform == PLATFORM, Shop.domain == domain))
    if has_usable_token(shop, now) and not _refresh_refused(session, shop, now):
        return AppHomeOutcome(shop, verified.response, verified.log.code)
    session.rollback()  # only reads so far: no transaction stays open while Shopify answers
    exchanged = shopify_app.token_exchange("offline", config, id_token=verified.id_token,
                                           invalid_token_response=verified.invalid_token_response, expiring=True)
    token = exchanged.access_token
    if not exchanged.ok or token is None:
        log.warning("shopify token exchange failed: %s", exchanged.log.code)
        return AppHomeOutcome(None, exchanged.response, exchanged.log.code)
    shop = post_install(session, domain, token.token, refresh_token=token.refresh_token,
                        expires_at=parse_expiry(token.expires), now=now)
    return AppHomeOutcome(shop, verified.response, verified.log.code, installed=True)
