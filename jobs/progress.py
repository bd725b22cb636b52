"""Where a shop's order backfill is: the chain of jobs and its progress (`lojal backfill`, console).

A backfill is a chain of jobs: each slice reports `job.meta = {"done", "total_estimate", "mode"}`
(the counts are cumulative over the chain) and hands the rest to a new job. Each job id is
chosen *before* its job is enqueued and stored under `lojal:backfill:{shop_id}`, so the key
always names the newest job of the chain (a hash: `job_id`, and the `done`/`total_estimate` handed
over, shown until that job reports its own): a finished job whose id is still the key's value
is the end of the chain (a slice that continues sets the key before it finishes).
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app
from rq.exceptions import NoSuchJobError
from rq import get_current_job
from rq.job import Job, JobStatus

from app.extensions import redis_connection
from jobs.queues import enqueue_in, platform_api_limit, queue

KEY_TTL = int(timedelta(days=7).total_seconds())
QUEUE = "maintenance"


def backfill_key(shop_id: int) -> str:
    return f"lojal:backfill:{shop_id}"


def next_backfill_job_id(shop_id: int, run=None, app: Flask | None = None) -> str:
    """A fresh id for the chain's next job, recorded as the newest before it is enqueued, with the
    progress so far (`run`: the SyncRun handed over), shown until the new job reports its own."""
    app = app or current_app._get_current_object()
    job_id = f"backfill-{shop_id}-{uuid.uuid4().hex}"
    carried = {"job_id": job_id, "done": run.done if run else 0, "skipped": run.skipped if run else 0,
               "total_estimate": "" if run is None or run.total_estimate is None else run.total_estimate}
    with redis_connection.client(app).pipeline() as pipeline:
        pipeline.delete(backfill_key(shop_id))
        pipeline.hset(backfill_key(shop_id), mapping=carried)
        pipeline.expire(backfill_key(shop_id), KEY_TTL)
        pipeline.execute()
    return job_id


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def latest_backfill_job_id(app: Flask, shop_id: int) -> str | None:
    return _text(redis_connection.client(app).hget(backfill_key(shop_id), "job_id"))


@dataclass(frozen=True)
class BackfillProgress:
    job_id: str
    status: str                # the newest job's RQ status
    done: int                  # orders applied so far (the whole chain)
    total_estimate: int | None
    finished: bool             # the chain has ended (the newest job finished or failed for good)
    skipped: int = 0           # malformed orders logged and passed over (the whole chain)
    result: str | None = None  # the last job's return value ("done", "failed", "skipped", ...)
    error: str | None = None   # the last line of the exception, if the last job failed


def backfill_progress(app: Flask, shop_id: int) -> BackfillProgress | None:
    """The chain's state as seen from its newest job; None if no backfill is known."""
    job_id = latest_backfill_job_id(app, shop_id)
    if job_id is None:
        return None
    q = queue(QUEUE, app)
    try:
        job = Job.fetch(job_id, connection=q.connection, serializer=q.serializer)
    except NoSuchJobError:
        return None
    status = job.get_status(refresh=False)
    meta = job.get_meta(refresh=False) or {}
    if "done" not in meta:  # not started yet: the progress its predecessor handed over
        carried = redis_connection.client(app).hmget(backfill_key(shop_id), "done", "total_estimate", "skipped")
        meta = {"done": _text(carried[0]), "total_estimate": _text(carried[1]), "skipped": _text(carried[2])}
    total = meta.get("total_estimate")
    done, total = int(meta.get("done") or 0), int(total) if total not in (None, "") else None
    skipped = int(meta.get("skipped") or 0)
    ended = status in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
    # A slice that continues records its successor before it finishes: if the key moved, go on.
    if ended and latest_backfill_job_id(app, shop_id) != job_id:
        return BackfillProgress(job_id, status, done, total, finished=False, skipped=skipped)
    result = error = None
    if status == JobStatus.FINISHED:
        result = job.return_value(refresh=True)
    elif ended:
        latest = job.latest_result()
        lines = (latest.exc_string or "").strip().splitlines() if latest else []
        error = lines[-1] if lines else str(status)
    return BackfillProgress(job_id, status, done, total, finished=ended, skipped=skipped, result=result,
                            error=error)


log = logging.getLogger(__name__)


def report_sync_progress(run) -> None:
    """An order sync's progress into its RQ job's meta (what `lojal backfill` and the console read)."""
    job = get_current_job()
    if job is None:
        return
    job.meta.update({"done": run.done, "total_estimate": run.total_estimate, "mode": run.mode,
                     "skipped": run.skipped})
    job.save_meta()


def continue_sync_later(job_module: str, mode: str, shop_id: int, run, delay: float, throttle_waits: int) -> None:
    """Hand an order sync's remaining pages to a new job of `job_module` (e.g. jobs.shopify_sync)."""
    # A backfill's successor becomes the chain's newest job before this one finishes.
    job_id = next_backfill_job_id(shop_id, run) if mode == "backfill" else None
    enqueue_in(delay, f"{job_module}.{mode}_orders", shop_id, run=run.to_json(), job_id=job_id,
               throttle_waits=throttle_waits, queue_name=QUEUE, rate_limit=platform_api_limit(shop_id))
    log.info("order sync continues later", extra={"shop_id": shop_id, "done": run.done, "delay": delay})
