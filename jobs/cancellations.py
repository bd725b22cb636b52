"""Cancelling a redemption on the platform: delete the code, then give the points back.

The job is idempotent: it acts only on a `cancelling` redemption, the adapter's delete treats a
code that is already gone as done, and the refund's ledger key is unique, so a duplicated or
retried job changes nothing. Transient failures are retried by RQ (the enqueue helper's Retry);
the last one, or a permanent refusal, ends the cancellation as failed with no points back.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import current_app
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from app.extensions import db, redis_connection
from app.loyalty import redemption_cancel
from app.loyalty.intents import RevokeDiscount
from app.models import Redemption, Shop, get_for_shop
from integrations.base import DiscountAlreadyUsed, PermanentPlatformError, TransientPlatformError
from integrations.registry import adapter_for
from integrations.woocommerce.client import StoreDisconnected
from integrations.woocommerce.upkeep import mark_disconnected
from jobs.context import app_job, commit_keeping_rows, is_final_attempt
from jobs.lost_jobs import redemptions_without_jobs
from jobs.queues import runs_in_process

log = logging.getLogger(__name__)
# A cancellation still `cancelling` this long after it was asked for, with no job of its own in
# Redis, lost its job (Redis was down at enqueue time): the redemption sweeper dispatches it again.
SWEEP_CANCELLING_AFTER = timedelta(minutes=2)


def revoke_job_id(shop_id: int, redemption_id: int) -> str:
    return f"revoke-discount-{shop_id}-{redemption_id}"


@app_job
def revoke_discount(shop_id: int, redemption_id: int) -> str:
    session = db.session
    shop = session.get(Shop, shop_id)
    redemption = get_for_shop(session, Redemption, shop_id, redemption_id)
    if shop is None or redemption is None:
        return "missing"
    if redemption.status != "cancelling":
        return redemption.status  # a duplicate or a retry after it ended
    # No transaction while the platform answers; each outcome below re-locks the row and acts
    # only on a redemption still `cancelling`.
    commit_keeping_rows(session)
    now = datetime.now(UTC)
    try:
        if _issue_attempt_running(shop_id, redemption_id):
            # It may be creating the code right now: deleting first would miss it.
            raise TransientPlatformError("the code is still being created on the platform")
        deleted = adapter_for(shop.platform).revoke_discount(shop, redemption)
    except DiscountAlreadyUsed as exc:
        session.rollback()
        redemption_cancel.refuse_cancellation(session, shop_id, redemption_id, str(exc)[:500], now)
        session.commit()
        return "refused"
    except PermanentPlatformError as exc:
        session.rollback()
        redemption_cancel.fail_cancellation(session, shop_id, redemption_id,
                                            f"the platform would not delete the code: {exc}"[:500], now)
        if isinstance(exc, StoreDisconnected):
            mark_disconnected(session, shop_id, str(exc))
        session.commit()
        return "failed"
    except TransientPlatformError as exc:
        session.rollback()
        if not is_final_attempt():
            raise
        redemption_cancel.fail_cancellation(session, shop_id, redemption_id,
                                            f"could not delete the code after retries: {exc}"[:500], now)
        session.commit()
        return "failed"
    redemption_cancel.complete_cancellation(session, shop_id, redemption_id, deleted, now)
    session.commit()
    return "cancelled"


def _issue_attempt_running(shop_id: int, redemption_id: int) -> bool:
    """True while an issue_discount job for this redemption is executing on some worker.

    One that is queued or waiting to retry will see `cancelling` when it starts and create
    nothing; one that already started may still be calling the platform. In-process mode runs
    one job at a time, so none can be.
    """
    from jobs.rewards import issue_job_ids

    app = current_app._get_current_object()
    if runs_in_process(app):
        return False
    connection = redis_connection.client(app)
    for job_id in issue_job_ids(shop_id, redemption_id):
        if Job.exists(job_id, connection):
            status = Job.fetch(job_id, connection=connection, serializer=JSONSerializer).get_status(refresh=False)
            if status == JobStatus.STARTED:
                return True
    return False


def lost_cancellations(now: datetime) -> list[RevokeDiscount]:
    """Cancellations waiting for a job that Redis does not have (its enqueue was lost)."""
    rows = redemptions_without_jobs(
        (Redemption.status == "cancelling") & (Redemption.cancel_requested_at < now - SWEEP_CANCELLING_AFTER),
        lambda shop_id, rid: [revoke_job_id(shop_id, rid)])
    if rows:
        log.warning("re-dispatching cancellations whose job was lost", extra={"count": len(rows)})
    return [RevokeDiscount(shop_id, rid) for shop_id, rid in rows]
