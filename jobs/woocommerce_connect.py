"""After a WooCommerce store connects: prove the keys work, create our webhooks, start the backfill."""
from __future__ import annotations

import logging

from app.extensions import db
from app.models import Shop
from integrations.woocommerce.client import StoreDisconnected, call
from integrations.woocommerce.connect import PLATFORM, drop_parked_keys, take_parked_keys
from integrations.woocommerce.upkeep import ensure_webhooks, mark_disconnected, store_currency
from jobs.context import app_job
from jobs.queues import enqueue, platform_api_limit

log = logging.getLogger(__name__)


@app_job
def after_connect(shop_id: int) -> str:
    session = db.session
    shop = session.get(Shop, shop_id)
    if shop is None or shop.platform != PLATFORM or shop.status not in ("active", "pending"):
        return "skipped"
    try:
        # The cheapest authenticated read: a 401 here means the keys do not work.
        call(shop, "get", "orders", params={"per_page": 1})
        # Its orders' amounts are in the store's currency: the widget and emails must show it.
        currency = store_currency(shop)
        if shop.status == "pending" or (currency and currency != shop.currency):
            # Proven keys: the store is connected from now on (committed before the webhooks,
            # so a retry after a transient failure below finds it active).
            shop.status = "active"
            shop.currency = currency or shop.currency
            session.commit()
        # Creates the topics that have no active webhook of ours yet (a reconnect, a retry
        # after a transient failure): re-running never duplicates them.
        repair = ensure_webhooks(shop)
    except StoreDisconnected as exc:
        session.rollback()
        mark_disconnected(session, shop_id, str(exc))
        session.commit()
        return "disconnected"
    # Transient errors (429, 5xx, network) propagate above: RQ retries the whole job.
    session.rollback()  # nothing to write: end the read transaction before enqueuing
    enqueue("jobs.woocommerce_sync.backfill_orders", shop_id, queue_name="maintenance",
            rate_limit=platform_api_limit(shop_id))
    log.info("woocommerce store set up", extra={"shop_id": shop_id, "webhooks_created": repair.created})
    return "connected"


@app_job
def verify_new_keys(shop_id: int, token: str) -> str:
    """Swap in keys posted for an already-connected store only if they work against it."""
    session = db.session
    shop = session.get(Shop, shop_id, with_for_update=True)
    parked = take_parked_keys(shop_id, token)
    if shop is None or shop.platform != PLATFORM or parked is None:
        session.rollback()
        return "expired"
    shop.access_token_enc, shop.api_secret_enc = parked
    try:
        call(shop, "get", "orders", params={"per_page": 1})
    except StoreDisconnected:
        # Made-up or revoked keys: the shop keeps the keys it had and stays connected.
        session.rollback()
        drop_parked_keys(token)
        log.warning("woocommerce keys refused by the store; kept the current ones", extra={"shop_id": shop_id})
        return "refused"
    # Transient errors propagate (RQ retries; the parked keys live for an hour).
    if shop.status != "active":
        # Pending (the keys in use were never proven) or marked disconnected meanwhile (the old
        # keys answered 401): proven keys connect it.
        shop.status = "active"
    session.commit()
    drop_parked_keys(token)
    enqueue("jobs.woocommerce_connect.after_connect", shop_id, queue_name="maintenance")
    return "replaced"
