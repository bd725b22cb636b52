"""After a WooCommerce store connects: prove the keys work, create our webhooks, start the backfill.

A store whose first authenticated call kept failing through after_connect's retries stays
`pending`; the scheduler re-checks it (`recheck_pending_stores`) with back-off and, once the
store answers, runs after_connect as a connect would; after GIVE_UP_AFTER it is disconnected.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.extensions import db, redis_connection
from app.models import Shop
from integrations.base import PlatformError
from integrations.woocommerce.client import StoreDisconnected, call
from integrations.woocommerce.connect import PLATFORM, drop_parked_keys, take_parked_keys
from integrations.woocommerce.upkeep import ensure_webhooks, mark_disconnected, store_currency
from jobs.context import app_job, commit_keeping_rows, relock_shop
from jobs.maintenance import parse_now
from jobs.queues import enqueue, platform_api_limit
from jobs.woocommerce_sync import enqueue_backfill

log = logging.getLogger(__name__)

# Pending this long, a store has outlived after_connect's own retries (jobs.queues.RETRY_INTERVALS,
# about 45 minutes in all): from then on the scheduler re-checks it.
RECHECK_AFTER = timedelta(hours=1)
# Hourly in its first day pending, then every 6 hours, so a dead store is not hammered; after a
# week it is marked disconnected (audited with the reason) for the merchant to connect it again.
RECHECK_EVERY_FIRST_DAY = timedelta(hours=1)
RECHECK_EVERY_LATER = timedelta(hours=6)
GIVE_UP_AFTER = timedelta(days=7)
# When each store was last re-checked. The hourly run can come back a little early by this clock.
RECHECKED_AT = "lojal:woocommerce:connect-recheck:"
RECHECK_SLACK = timedelta(minutes=5)


@app_job
def after_connect(shop_id: int) -> str:
    session = db.session
    shop = session.get(Shop, shop_id)
    if shop is None or shop.platform != PLATFORM or shop.status not in ("active", "pending"):
        return "skipped"
    # The store is asked with no transaction open; what its answers change is written to the
    # shop locked and checked again.
    commit_keeping_rows(session, shop)
    try:
        # The cheapest authenticated read: a 401 here means the keys do not work.
        call(shop, "get", "orders", params={"per_page": 1})
        # Its orders' amounts are in the store's currency: the widget and emails must show it.
        currency = store_currency(shop)
        if shop.status == "pending" or (currency and currency != shop.currency):
            # Proven keys: the store is connected from now on (committed before the webhooks,
            # so a retry after a transient failure below finds it active).
            shop = relock_shop(session, shop_id)
            if shop is None or shop.status not in ("active", "pending"):
                session.rollback()
                return "skipped"  # disconnected (or purged) while the store answered
            shop.status = "active"
            shop.currency = currency or shop.currency
            commit_keeping_rows(session, shop)
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
    # Through the sync's own helper: it records the job as the backfill chain's newest, which the
    # console's Store page and `lojal backfill` follow.
    enqueue_backfill(shop_id)
    log.info("woocommerce store set up", extra={"shop_id": shop_id, "webhooks_created": repair.created})
    return "connected"


@app_job
def verify_new_keys(shop_id: int, token: str) -> str:
    """Swap in keys posted for an already-connected store only if they work against it."""
    session = db.session
    shop = session.get(Shop, shop_id)
    parked = take_parked_keys(shop_id, token)
    if shop is None or shop.platform != PLATFORM or parked is None:
        session.rollback()
        return "expired"
    if _disconnected_on_purpose(shop):
        session.rollback()
        drop_parked_keys(token)
        return "disconnected"
    # The store is asked with a detached copy and no transaction open: a lock on the shop row
    # held while it answers (up to the client's timeout) would hold up every webhook insert for
    # the shop (their foreign-key check) and its settings saves.
    candidate = Shop(id=shop.id, platform=shop.platform, domain=shop.domain, access_token_enc=parked[0],
                     api_secret_enc=parked[1])
    session.rollback()
    try:
        call(candidate, "get", "orders", params={"per_page": 1})
    except StoreDisconnected:
        # Made-up or revoked keys: the shop keeps the keys it had and stays connected.
        drop_parked_keys(token)
        log.warning("woocommerce keys refused by the store; kept the current ones", extra={"shop_id": shop_id})
        return "refused"
    # Transient errors propagate (RQ retries; the parked keys live for an hour).
    shop = session.get(Shop, shop_id, with_for_update=True, populate_existing=True)
    if shop is None or _disconnected_on_purpose(shop):  # purged or disconnected while the store answered
        session.rollback()
        drop_parked_keys(token)
        return "expired" if shop is None else "disconnected"
    shop.access_token_enc, shop.api_secret_enc = parked
    if shop.status != "active":
        # Pending (the keys in use were never proven) or marked disconnected meanwhile (the old
        # keys answered 401): proven keys connect it.
        shop.status = "active"
    session.commit()
    drop_parked_keys(token)
    enqueue("jobs.woocommerce_connect.after_connect", shop_id, queue_name="maintenance")
    return "replaced"


def _disconnected_on_purpose(shop: Shop) -> bool:
    """Disconnected since the keys were parked (disconnect drops the keys; a 401 keeps them): they
    must not connect the store again. A new connect stores keys directly."""
    return shop.status == "disconnected" and shop.access_token_enc is None


@app_job
def recheck_pending_stores(now: str | None = None) -> int:
    """For the scheduler: queue a keys re-check for each WooCommerce store pending past
    RECHECK_AFTER whose back-off has run out; disconnect those pending past GIVE_UP_AFTER.
    Returns how many re-checks were queued."""
    moment = parse_now(now)
    session = db.session
    pending = session.execute(
        select(Shop.id, Shop.installed_at, Shop.created_at).where(Shop.platform == PLATFORM, Shop.status == "pending")
    ).all()
    session.rollback()
    redis = redis_connection.client(current_app._get_current_object())
    queued = 0
    for shop_id, installed_at, created_at in pending:
        pending_for = moment - (installed_at or created_at)  # a (re)connect makes it pending and sets installed_at
        if pending_for < RECHECK_AFTER:
            continue
        if pending_for >= GIVE_UP_AFTER:
            _give_up(session, shop_id)
            continue
        every = RECHECK_EVERY_FIRST_DAY if pending_for < timedelta(days=1) else RECHECK_EVERY_LATER
        last = redis.get(RECHECKED_AT + str(shop_id))
        if last is not None and moment - datetime.fromisoformat(last.decode()) < every - RECHECK_SLACK:
            continue
        redis.set(RECHECKED_AT + str(shop_id), moment.isoformat(), ex=int(GIVE_UP_AFTER.total_seconds()))
        # No RQ retries: the schedule is this job's back-off.
        enqueue("jobs.woocommerce_connect.recheck_pending_store", shop_id, queue_name="maintenance", retries=0,
                rate_limit=platform_api_limit(shop_id))
        queued += 1
    return queued


@app_job
def recheck_pending_store(shop_id: int) -> str:
    """One scheduled keys check of a pending store; when it answers, after_connect sets it up."""
    session = db.session
    shop = session.get(Shop, shop_id)
    if shop is None or shop.platform != PLATFORM or shop.status != "pending":
        session.rollback()
        return "skipped"  # connected (or disconnected) another way since it was queued
    try:
        call(shop, "get", "orders", params={"per_page": 1})
    except StoreDisconnected as exc:
        session.rollback()
        mark_disconnected(session, shop_id, str(exc))
        session.commit()
        return "disconnected"
    except PlatformError as exc:
        # Still down, throttled or refusing (a 404, an address we will not call): the next
        # scheduled run tries again, and a week of this gives up. Not a failed job.
        session.rollback()
        log.warning("woocommerce store pending: keys check still failing",
                    extra={"shop_id": shop_id, "error": str(exc)[:200]})
        return "unreachable"
    session.rollback()
    # The normal setup (with its own retries): keys, currency, webhooks, backfill.
    enqueue("jobs.woocommerce_connect.after_connect", shop_id, queue_name="maintenance")
    return "answered"


def _give_up(session, shop_id: int) -> None:
    # Locked and read again: the store may have been connected since the listing.
    shop = session.get(Shop, shop_id, with_for_update=True, populate_existing=True)
    if shop is not None and shop.status == "pending":
        mark_disconnected(session, shop_id, f"the store did not answer an authenticated call for "
                                            f"{GIVE_UP_AFTER.days} days after connecting; connect it again")
    session.commit()
