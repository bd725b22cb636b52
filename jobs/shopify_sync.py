"""Jobs that pull orders from Shopify: the install backfill and the periodic reconciliation.

Each job runs a bounded slice of pages, then hands the rest to a new job (same function, the
run's state as JSON): so no job nears JOB_TIMEOUT, the shop's RateLimit slot is released
between slices, and when Shopify's cost bucket is low the next slice is scheduled for when it
has refilled instead of a worker sleeping. Other transient errors (5xx, timeouts) raise and RQ's
Retry re-runs the slice from its starting cursor; orders it already applied are no-ops.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from rq.job import Job
from sqlalchemy import select

from app.extensions import db
from app.models import Shop
from integrations.base import PermanentPlatformError, TransientPlatformError
from integrations.shopify import sync
from jobs.context import app_job
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
    return enqueue("jobs.shopify_sync.backfill_orders", shop_id, queue_name=QUEUE,
                   job_id=next_backfill_job_id(shop_id), rate_limit=platform_api_limit(shop_id))


def enqueue_reconcile(shop_id: int) -> Job:
    return enqueue("jobs.shopify_sync.reconcile_orders", shop_id, queue_name=QUEUE,
                   rate_limit=platform_api_limit(shop_id))


@app_job
def backfill_orders(shop_id: int, run: dict | None = None, throttle_waits: int = 0) -> str:
    return _run_slice("backfill", shop_id, run, throttle_waits)


@app_job
def reconcile_orders(shop_id: int, run: dict | None = None, throttle_waits: int = 0) -> str:
    return _run_slice("reconcile", shop_id, run, throttle_waits)


@app_job
def reconcile_all_shops() -> int:
    """For the scheduler: one reconciliation per active Shopify shop that has a sync cursor."""
    shop_ids = db.session.scalars(
        select(Shop.id).where(Shop.platform == "shopify", Shop.status == "active", Shop.orders_synced_at.is_not(None))
    ).all()
    db.session.rollback()
    for shop_id in shop_ids:
        enqueue_reconcile(shop_id)
    return len(shop_ids)


def _run_slice(mode: str, shop_id: int, run_json: dict | None, throttle_waits: int) -> str:
    session = db.session
    shop = session.get(Shop, shop_id)
    if shop is None or shop.platform != "shopify" or shop.status != "active":
        return "skipped"  # uninstalled (or gone) since it was enqueued: stop all work for it
    now = datetime.now(UTC)
    if run_json:
        run = sync.SyncRun.from_json(run_json)
    else:
        run = sync.start_backfill(shop, now) if mode == "backfill" else sync.start_reconcile(shop, now)
    if run is None:
        return "skipped"  # no sync cursor yet: the backfill sets the first one
    try:
        result = sync.sync_orders(session, shop, run, max_pages=PAGES_PER_JOB, on_progress=report_sync_progress,
                                  # Live orders' notifications go out as for webhooks (the
                                  # sync passes none for imported history: it notifies nobody).
                                  after_commit=dispatch)
    except PermanentPlatformError as exc:
        # Revoked token, missing scope: retrying cannot help. The sync cursor has not moved, so the
        # next run (a scheduled reconciliation, or the backfill a reinstall enqueues) covers it all.
        log.warning("order sync stopped: %s", exc, extra={"shop_id": shop_id, "mode": mode, "done": run.done})
        return "failed"
    except TransientPlatformError as exc:
        if exc.retry_after is None or throttle_waits >= MAX_THROTTLE_WAITS:
            raise  # RQ's Retry re-runs this slice from its starting cursor
        continue_sync_later(__name__, mode, shop_id, run, exc.retry_after, throttle_waits + 1)  # `run` holds the last page done
        return "throttled"
    if result.status == "paused":
        continue_sync_later(__name__, mode, shop_id, result.run, result.wait_seconds, 0)
    return result.status

