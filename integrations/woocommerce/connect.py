"""Connecting a WooCommerce store: the wc-auth key exchange and the CLI both end here.

`connect_store` owns its transaction (like integrations.shopify.install.post_install): it
upserts the shop with its REST keys, makes sure the shop has a webhook secret, a widget
secret and a program, commits, and only then enqueues the post-connect job (verify the keys,
create our webhooks, start the backfill), so the job never runs before the shop row exists.
"""
from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import insert
from flask import current_app
from sqlalchemy.orm import Session

from app.crypto import token_cipher
from app.extensions import redis_connection
from app.loyalty.program import create_default_program
from app.models import EarnRule, Shop
from integrations.woocommerce.urls import stored_forms
from jobs.queues import enqueue

log = logging.getLogger(__name__)

PLATFORM = "woocommerce"
PENDING_KEYS = "lojal:woocommerce:pending-keys:"
PENDING_KEYS_TTL = 3600


def connect_store(session: Session, store_url: str, consumer_key: str, consumer_secret: str, *,
                  now: datetime) -> Shop:
    """Upsert the shop for `store_url` (already validated and normalised) with its keys; commit;
    enqueue jobs.woocommerce_connect.after_connect."""
    shop, has_keys_in_use = _upsert_shop(session, store_url, now)
    if has_keys_in_use and shop.access_token_enc:
        # Anyone can start a connect for any store URL and post made-up keys to the callback:
        # keys in use (working, or a pending connect's) are only replaced by keys proven
        # against the store (verify_new_keys).
        session.commit()
        token = _park_keys(shop.id, consumer_key, consumer_secret)
        enqueue("jobs.woocommerce_connect.verify_new_keys", shop.id, token, queue_name="maintenance")
        return shop
    shop.access_token_enc = token_cipher.encrypt(consumer_key)
    shop.api_secret_enc = token_cipher.encrypt(consumer_secret)
    # Kept across reconnects: the store's existing webhooks keep signing with it.
    if not shop.webhook_secret_enc:
        shop.webhook_secret_enc = token_cipher.encrypt(secrets.token_urlsafe(32))
    if not shop.widget_secret_enc:
        shop.widget_secret_enc = token_cipher.encrypt(secrets.token_urlsafe(32))
    # A reconnect keeps the merchant's program; only a shop without one gets the default.
    if not session.scalar(select(exists().where(EarnRule.shop_id == shop.id))):
        create_default_program(session, shop.id)
    session.commit()
    # The shop stays "pending" (no job, widget or webhook acts for it) until after_connect's
    # first authenticated call with these keys succeeds.
    log.info("woocommerce store connected", extra={"shop_id": shop.id})
    enqueue("jobs.woocommerce_connect.after_connect", shop.id, queue_name="maintenance")
    return shop


def accepts_store(session: Session, store_url: str, max_pending: int) -> bool:
    """Whether a key callback may connect `store_url`: a store we have a row for always (a
    reconnect); a new one only while fewer than `max_pending` stores are pending. Anyone can start
    a connect for any host and post made-up keys, and each new store is a pending row re-checked
    for a week: the cap bounds what a flood leaves. Not under a lock: callbacks handled at the
    same moment can pass it together (a few over the cap, never unbounded)."""
    if session.scalar(select(exists().where(Shop.platform == PLATFORM, Shop.domain.in_(stored_forms(store_url))))):
        return True
    pending = session.scalar(select(func.count()).select_from(Shop).where(Shop.platform == PLATFORM,
                                                                           Shop.status == "pending"))
    return pending < max_pending


def _park_keys(shop_id: int, consumer_key: str, consumer_secret: str) -> str:
    """Keep new keys aside (encrypted, in Redis, for an hour) until they are verified."""
    token = secrets.token_urlsafe(16)
    value = json.dumps({"shop_id": shop_id, "key": token_cipher.encrypt(consumer_key),
                        "secret": token_cipher.encrypt(consumer_secret)})
    redis_connection.client(current_app).set(PENDING_KEYS + token, value, ex=PENDING_KEYS_TTL)
    return token


def take_parked_keys(shop_id: int, token: str) -> tuple[str, str] | None:
    """The parked (encrypted) key and secret for this shop, or None if expired or not this shop's."""
    raw = redis_connection.client(current_app).get(PENDING_KEYS + token)
    if raw is None:
        return None
    data = json.loads(raw)
    return (data["key"], data["secret"]) if data.get("shop_id") == shop_id else None


def drop_parked_keys(token: str) -> None:
    redis_connection.client(current_app).delete(PENDING_KEYS + token)


def rotate_parked_keys() -> int:
    """Re-encrypt parked keys with the newest key (`lojal keys rotate`): they live up to an hour,
    long enough to outlast the old key. XX + KEEPTTL: one taken or expired meanwhile stays gone."""
    client = redis_connection.client(current_app)
    rotated = 0
    for name in client.scan_iter(match=PENDING_KEYS + "*", count=500):
        raw = client.get(name)
        if raw is None:
            continue
        data = json.loads(raw)
        data["key"], data["secret"] = token_cipher.rotate(data["key"]), token_cipher.rotate(data["secret"])
        rotated += bool(client.set(name, json.dumps(data), xx=True, keepttl=True))
    return rotated


def _upsert_shop(session: Session, store_url: str, now: datetime) -> tuple[Shop, bool]:
    """The shop row, created if new, locked; a new or disconnected shop becomes "pending" (its
    keys are not proven yet). Also says whether the shop was active or pending (keys in use).

    A row stored before URLs were normalised (`:443`) is this store's too (stored_forms); if both
    exist, the one in use, else the normalised one. Otherwise INSERT … ON CONFLICT DO NOTHING then
    SELECT … FOR UPDATE: two callbacks for one store at once end with one row, the second waiting
    for the first to commit.
    """
    shop = _locked_shop(session, stored_forms(store_url), store_url)
    if shop is None:
        session.execute(
            insert(Shop)
            .values(platform=PLATFORM, domain=store_url, name=urlsplit(store_url).hostname or store_url,
                    installed_at=now, status="pending")
            .on_conflict_do_nothing(index_elements=["platform", "domain"])
        )
        shop = _locked_shop(session, (store_url,), store_url)
    in_use = shop.status in ("active", "pending")
    if not in_use:
        shop.installed_at = now
        shop.status = "pending"
    shop.uninstalled_at = None
    return shop, in_use


def _locked_shop(session: Session, domains: tuple[str, ...], store_url: str) -> Shop | None:
    return session.execute(
        select(Shop).where(Shop.platform == PLATFORM, Shop.domain.in_(domains))
        .order_by(Shop.status.in_(("active", "pending")).desc(), (Shop.domain == store_url).desc(), Shop.id)
        .limit(1).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
