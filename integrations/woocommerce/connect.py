"""Connecting a WooCommerce store: the wc-auth key exchange and the CLI both end here.

`connect_store` owns its transaction (like integrations.shopify.install.post_install): it
upserts the shop with its REST keys, makes sure the shop has a webhook secret, a widget
secret and a program, commits, and only then enqueues the post-connect job (verify the keys,
create our webhooks, start the backfill), so the job never runs before the shop row exists.
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.crypto import token_cipher
from app.loyalty.program import create_default_program
from app.models import EarnRule, Shop
from jobs.queues import enqueue

log = logging.getLogger(__name__)

PLATFORM = "woocommerce"


def connect_store(session: Session, store_url: str, consumer_key: str, consumer_secret: str, *,
                  now: datetime) -> Shop:
    """Upsert the shop for `store_url` (already validated and normalised) with its keys; commit;
    enqueue jobs.woocommerce_connect.after_connect."""
    shop = _upsert_shop(session, store_url, now)
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
    log.info("woocommerce store connected", extra={"shop_id": shop.id})
    enqueue("jobs.woocommerce_connect.after_connect", shop.id, queue_name="maintenance")
    return shop


def _upsert_shop(session: Session, store_url: str, now: datetime) -> Shop:
    """The shop row, created if new, locked; a reconnect makes a disconnected shop active again.

    INSERT … ON CONFLICT DO NOTHING then SELECT … FOR UPDATE: two callbacks for one store at
    once end with one row, the second waiting for the first to commit.
    """
    session.execute(
        insert(Shop)
        .values(platform=PLATFORM, domain=store_url, name=urlsplit(store_url).hostname or store_url,
                installed_at=now)
        .on_conflict_do_nothing(index_elements=["platform", "domain"])
    )
    shop = session.execute(
        select(Shop).where(Shop.platform == PLATFORM, Shop.domain == store_url).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if shop.status != "active":
        shop.installed_at = now
    shop.status = "active"
    shop.uninstalled_at = None
    return shop
