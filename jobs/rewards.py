"""Turning a redemption into a real discount code on the shop's platform."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from rq import get_current_job

from app.extensions import db
from app.loyalty import redemptions
from app.loyalty.intents import IssueDiscount
from app.models import Redemption, Shop, get_for_shop
from integrations.base import PermanentPlatformError, PlatformError, TransientPlatformError, redemption_customer
from integrations.registry import adapter_for
from integrations.woocommerce.client import StoreDisconnected
from integrations.woocommerce.upkeep import mark_disconnected
from jobs.cancellations import lost_cancellations
from jobs.context import app_job, commit_keeping_rows, is_final_attempt
from jobs.dispatch import dispatch
from jobs.lost_jobs import redemptions_without_jobs
from jobs.queues import enqueue_in, platform_api_limit

log = logging.getLogger(__name__)
# A platform that says when to come back (Shopify's cost bucket, a Retry-After header) is
# doing flow control, not failing: the job is rescheduled for that moment instead of RQ's
# fixed back-off (10 s, 30 s, ...), keeping the retries it has left. Bounded, so a shop that
# is throttled forever still ends in RQ's back-off and, at the last attempt, in giving the
# points back; and a hint longer than MAX_RETRY_AFTER is left to that back-off too.
MAX_THROTTLE_WAITS = 10
MAX_RETRY_AFTER = 600.0
# A redemption still pending this long after it was made, with no job of its own in Redis,
# lost its job (Redis was down when the request tried to enqueue it): the sweeper re-issues it.
SWEEP_PENDING_AFTER = timedelta(minutes=2)


@app_job
def issue_discount(shop_id: int, redemption_id: int, throttle_waits: int = 0) -> str:
    session = db.session
    shop = session.get(Shop, shop_id)
    redemption = get_for_shop(session, Redemption, shop_id, redemption_id)
    if shop is None or redemption is None:
        return "missing"
    if redemption.status != "pending":
        return redemption.status  # a retry after success, or already given back
    customer = redemption_customer(session, shop, redemption)  # read now: the call needs no SQL
    commit_keeping_rows(session)
    now = datetime.now(UTC)
    try:
        platform_id = adapter_for(shop.platform).issue_discount(shop, redemption, customer)
    except PermanentPlatformError as exc:
        session.rollback()
        redemptions.fail_redemption(session, shop_id, redemption_id, str(exc)[:500], now)
        if isinstance(exc, StoreDisconnected):
            # The merchant revoked our WooCommerce keys: no job can reach the store any more.
            mark_disconnected(session, shop_id, str(exc))
        session.commit()
        return "failed"
    except TransientPlatformError as exc:
        commit_keeping_rows(session, shop)  # nothing was written; shop and redemption stay loaded
        if _come_back_when_told(exc, shop_id, redemption_id, throttle_waits):
            return "throttled"
        if not is_final_attempt():
            raise
        _no_code_left(shop, redemption, exc)
        redemptions.fail_redemption(session, shop_id, redemption_id, f"gave up after retries: {exc}"[:500], now)
        session.commit()
        return "failed"
    # A new transaction: mark_issued re-locks the row and records the code only on a redemption
    # still pending (or being cancelled: the revoke job, waiting for this attempt, deletes it).
    intents = redemptions.mark_issued(session, shop_id, redemption_id, platform_id, now)
    commit_keeping_rows(session, shop)  # the locked read's status stays loaded for what follows
    if redemption.status in ("cancelled", "failed"):
        _delete_unwanted_code(shop, redemption)
        return redemption.status
    dispatch(intents)
    return "issued"


def _delete_unwanted_code(shop: Shop, redemption: Redemption) -> None:
    """The redemption ended (cancelled, or given back) while this attempt created its code: its
    points are back, so the code must not work. Deleted; if that fails, logged for staff."""
    try:
        adapter_for(shop.platform).revoke_discount(shop, redemption)
    except PlatformError as exc:
        log.error("a discount code was created for a redemption that had ended meanwhile and could not be "
                  "deleted; delete it on the platform",
                  extra={"shop_id": shop.id, "redemption_id": redemption.id, "code_status": redemption.status,
                         "revoke_error": str(exc)[:200]})
        return
    log.warning("deleted a discount code created for a redemption that had ended meanwhile",
                extra={"shop_id": shop.id, "redemption_id": redemption.id, "status": redemption.status})


def _no_code_left(shop: Shop, redemption: Redemption, gave_up: TransientPlatformError) -> None:
    """Before the points come back: a failed attempt may have made the code all the same (a
    timeout or a 5xx after the platform saved it). Delete it; if that cannot be done or shown
    (no answer, or the code was already used), raise `gave_up`: the redemption stays pending
    and spent, and a later attempt (the sweeper's, once this failed job expires) finds the code."""
    try:
        adapter_for(shop.platform).revoke_discount(shop, redemption)
    except PlatformError as exc:
        log.warning("gave up issuing a code that may exist on the platform; the redemption stays pending",
                    extra={"shop_id": shop.id, "redemption_id": redemption.id, "revoke_error": str(exc)[:200]})
        raise gave_up from exc


def _come_back_when_told(exc: TransientPlatformError, shop_id: int, redemption_id: int, throttle_waits: int) -> bool:
    """Reschedule at the platform's `retry_after`, if it gave one we can honour; True if rescheduled."""
    if exc.retry_after is None or exc.retry_after > MAX_RETRY_AFTER or throttle_waits >= MAX_THROTTLE_WAITS:
        return False
    job = get_current_job()
    waits = throttle_waits + 1
    # A new job id per wait: this job's own hash is still being written by the worker.
    enqueue_in(exc.retry_after, "jobs.rewards.issue_discount", shop_id, redemption_id, throttle_waits=waits,
               queue_name="rewards", job_id=f"issue-discount-{shop_id}-{redemption_id}-wait{waits}",
               retries=job.retries_left if job is not None else None, rate_limit=platform_api_limit(shop_id))
    log.info("platform asked to wait before issuing the discount",
             extra={"shop_id": shop_id, "redemption_id": redemption_id, "retry_after": exc.retry_after})
    return True


def issue_job_ids(shop_id: int, redemption_id: int) -> list[str]:
    """Every job id an issue_discount for this redemption can have (dispatch's, then its waits)."""
    base = f"issue-discount-{shop_id}-{redemption_id}"
    return [base] + [f"{base}-wait{n}" for n in range(1, MAX_THROTTLE_WAITS + 1)]


@app_job
def sweep_pending_redemptions() -> int:
    """Re-dispatch pending redemptions whose issue job was lost, and cancellations whose revoke
    job was; returns how many.

    Points were debited when the shopper redeemed; without this a redemption whose enqueue
    failed would stay pending for ever. One with any job still in Redis (queued, scheduled,
    running, retrying, failed and kept) is left to it; the job itself is idempotent anyway.
    """
    cutoff = datetime.now(UTC) - SWEEP_PENDING_AFTER
    pending = redemptions_without_jobs((Redemption.status == "pending") & (Redemption.created_at < cutoff),
                                       issue_job_ids)
    dispatch([IssueDiscount(shop_id, rid) for shop_id, rid in pending])
    if pending:
        log.warning("re-dispatched redemptions whose issue job was lost", extra={"count": len(pending)})
    cancellations = lost_cancellations(datetime.now(UTC))
    dispatch(cancellations)
    return len(pending) + len(cancellations)
