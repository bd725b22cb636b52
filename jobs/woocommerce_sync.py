"""Jobs that keep a WooCommerce store in step: backfill, reconciliation and webhook upkeep.

A sync job reads a bounded slice of pages, then hands the rest to a new job (same function, the
run's state as JSON), so no job nears JOB_TIMEOUT and the shop's RateLimit slot is released
between slices. A 429 with Retry-After reschedules the slice for then (workers never sleep);
other transient errors raise and RQ's Retry re-runs the slice from its starting page (orders it
already applied are no-ops). A 401 means the merchant revoked our keys: the shop is marked
disconnected and its work stops.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from rq.job import Job
from sqlalchemy import select

from app.extensions import db
from app.models import Shop
from integrations.base import PermanentPlatformError, TransientPlatformError
from integrations.woocommerce import sync, upkeep
from integrations.woocommerce.client import StoreDisconnected
from jobs.context import app_job, commit_keeping_rows, relock_shop
from jobs.dispatch import dispatch
from jobs.progress import continue_sync_later, next_backfill_job_id, report_sync_progress
from jobs.queues import enqueue, platform_api_limit

log = logging.getLogger(__name__)
PAGES_PER_JOB = 10
# Consecutive "come back in N s" answers honoured before the error goes to RQ's back-off.
MAX_THROTTLE_WAITS = 10
QUEUE = "maintenance"


def enqueue_backfill(shop_id: int) -> Job:
    # The id is recorded as the chain's newest (jobs.progress) before the job can run.
    return enqueue("jobs.woocommerce_sync.backfill_orders", shop_id, queue_name=QUEUE,
                   job_id=next_backfill_job_id(shop_id), rate_limit=platform_api_limit(shop_id))


def enqueue_reconcile(shop_id: int) -> Job:
    return enqueue("jobs.woocommerce_sync.reconcile_orders", shop_id, queue_name=QUEUE,
                   rate_limit=platform_api_limit(shop_id))


def enqueue_check_webhooks(shop_id: int) -> Job:
    return enqueue("jobs.woocommerce_sync.check_webhooks", shop_id, queue_name=QUEUE,
                   rate_limit=platform_api_limit(shop_id))


@app_job
def backfill_orders(shop_id: int, run: dict | None = None, throttle_waits: int = 0) -> str:
    return _run_slice("backfill", shop_id, run, throttle_waits)


@app_job
def reconcile_orders(shop_id: int, run: dict | None = None, throttle_waits: int = 0) -> str:
    return _run_slice("reconcile", shop_id, run, throttle_waits)


@app_job
def check_webhooks(shop_id: int) -> str:
    """Re-activate or re-create our webhooks in the store (WooCommerce disables failing ones)."""
    session = db.session
    shop = _active_shop(shop_id)
    if shop is None:
        return "skipped"
    commit_keeping_rows(session, shop)  # only a read: no transaction stays open while the store answers
    try:
        repair = upkeep.ensure_webhooks(shop)
    except StoreDisconnected as exc:
        session.rollback()
        upkeep.mark_disconnected(session, shop_id, str(exc))
        session.commit()
        return "disconnected"
    session.rollback()
    return "repaired" if repair.reactivated or repair.created else "ok"


@app_job
def reconcile_all_shops() -> int:
    """For the scheduler: per active WooCommerce shop, check its webhooks, then reconcile its orders
    (shops without a sync cursor yet wait for their backfill)."""
    shops = db.session.execute(
        select(Shop.id, Shop.orders_synced_at).where(Shop.platform == "woocommerce", Shop.status == "active")
    ).all()
    db.session.rollback()
    for shop_id, synced_at in shops:
        enqueue_check_webhooks(shop_id)
        if synced_at is not None:
            enqueue_reconcile(shop_id)
    return len(shops)


def _active_shop(shop_id: int) -> Shop | None:
    shop = db.session.get(Shop, shop_id)
    if shop is None or shop.platform != "woocommerce" or shop.status != "active":
        return None  # disconnected (or gone) since it was enqueued: stop all work for it
    return shop


def _refresh_currency(session, shop: Shop) -> None:
    """Read the store's currency before a reconciliation reads its orders: a shop whose currency
    is stale (connected before Lojal read it, or the merchant switched the store's) would refuse
    every order as foreign without a rate. Not readable now: go on with the one we have.
    Asked with no transaction open; a change is written to the shop locked again."""
    commit_keeping_rows(session, shop)
    try:
        currency = upkeep.store_currency(shop)
    except TransientPlatformError as exc:
        log.warning("woocommerce store currency not readable now; kept the shop's",
                    extra={"shop_id": shop.id, "error": str(exc)[:200]})
        return
    if currency and currency != shop.currency:
        log.info("woocommerce store currency changed", extra={"shop_id": shop.id, "was": shop.currency, "now": currency})
        relock_shop(session, shop.id).currency = currency  # the same object as `shop`, read afresh
        session.commit()


def _run_slice(mode: str, shop_id: int, run_json: dict | None, throttle_waits: int) -> str:
    session = db.session
    shop = _active_shop(shop_id)
    if shop is None:
        return "skipped"
    now = datetime.now(UTC)
    if run_json:
        run = sync.SyncRun.from_json(run_json)
    else:
        run = sync.start_backfill(now) if mode == "backfill" else sync.start_reconcile(shop, now)
    if run is None:
        return "skipped"  # no sync cursor yet: the backfill sets the first one
    try:
        if mode == "reconcile" and not run_json:
            _refresh_currency(session, shop)
        status = sync.sync_orders(session, shop, run, max_pages=PAGES_PER_JOB, on_progress=report_sync_progress,
                                  # Live orders' notifications go out as for webhooks (the
                                  # sync passes none for imported history: it notifies nobody).
                                  after_commit=dispatch)
    except StoreDisconnected as exc:
        # Keys revoked mid-run: orders already applied stay; the cursor has not moved, so the
        # backfill a reconnect enqueues covers the rest.
        session.rollback()
        upkeep.mark_disconnected(session, shop_id, str(exc))
        session.commit()
        return "disconnected"
    except PermanentPlatformError as exc:
        session.rollback()
        log.warning("order sync stopped: %s", exc, extra={"shop_id": shop_id, "mode": mode, "done": run.done})
        return "failed"
    except TransientPlatformError as exc:
        session.rollback()
        if exc.retry_after is None or throttle_waits >= MAX_THROTTLE_WAITS:
            raise  # RQ's Retry re-runs this slice from its starting page
        continue_sync_later(__name__, mode, shop_id, run, exc.retry_after, throttle_waits + 1)  # `run` holds the last page done
        return "throttled"
    if status == "paused":
        continue_sync_later(__name__, mode, shop_id, run, 0, 0)
    return status

