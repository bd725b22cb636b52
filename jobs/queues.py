"""The one enqueue helper: every job gets the same timeout, retry and failure TTL defaults.

Job functions are named by dotted path and take ids (JSON-serialised), never objects.
Without REDIS_URL the queue runs jobs synchronously in the calling process
(RUN_JOBS_IN_PROCESS; tests turn it off to drive a real worker over fakeredis).
"""
from __future__ import annotations

from datetime import timedelta

from flask import Flask, current_app
from rq import Queue, RateLimit, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from app.extensions import redis_connection

QUEUE_NAMES = ("webhooks", "rewards", "emails", "maintenance")
# Back off 10 s, 30 s, 2 min, 10 min, 30 min, then keep the failure for inspection.
RETRY_INTERVALS = [10, 30, 120, 600, 1800]


# Jobs that call a shop's platform API, per shop, at once. Shopify's cost bucket (and a
# WooCommerce store's own server) is per shop: more parallel calls only get throttled sooner,
# and one busy shop must not occupy every worker.
PLATFORM_API_CONCURRENCY = 2


def platform_api_limit(shop_id: int) -> RateLimit:
    """The RQ rate limit shared by every job that calls shop `shop_id`'s platform API."""
    return RateLimit(key=f"platform-api:{shop_id}", concurrency=PLATFORM_API_CONCURRENCY)


def runs_in_process(app: Flask) -> bool:
    return bool(app.config.get("RUN_JOBS_IN_PROCESS", not app.config.get("REDIS_URL")))


def queue(name: str, app: Flask | None = None) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}; queues are {', '.join(QUEUE_NAMES)}")
    app = app or current_app._get_current_object()
    return Queue(
        name,
        connection=redis_connection.client(app),
        serializer=JSONSerializer,
        is_async=not runs_in_process(app),
        default_timeout=app.config["JOB_TIMEOUT"],
    )


def enqueue(func: str, *args, queue_name: str, job_id: str | None = None, retries: int | None = None,
            rate_limit: RateLimit | None = None, app: Flask | None = None, **kwargs) -> Job:
    """Enqueue `func` (dotted path) with the project's defaults.

    `rate_limit` caps how many jobs sharing its key are queued or running at once (RQ holds
    the rest back). In-process mode runs one job at a time anyway, and RQ refuses rate limits
    on synchronous queues, so there it is not passed on.
    """
    app = app or current_app._get_current_object()
    q = queue(queue_name, app)
    options = _job_options(app, retries)
    if not q.is_async or rate_limit is not None:
        # In-process jobs run inside enqueue_call (their data must be saved first), and RQ
        # refuses a pipeline for rate-limited jobs: both take RQ's own round trips.
        return q.enqueue_call(func, args=args, kwargs=kwargs, job_id=job_id,
                              rate_limit=rate_limit if q.is_async else None, **options)
    # RQ's own enqueue, with its writes (queue registration, job hash, push) sent as one
    # MULTI/EXEC pipeline: one Redis round trip instead of two, the same job in the same keys.
    with q.connection.pipeline() as pipe:
        job = q.enqueue_call(func, args=args, kwargs=kwargs, job_id=job_id, pipeline=pipe, **options)
        pipe.execute()
    return job


def enqueue_in(delay_seconds: float, func: str, *args, queue_name: str, job_id: str | None = None,
               retries: int | None = None, rate_limit: RateLimit | None = None, app: Flask | None = None,
               **kwargs) -> Job:
    """Enqueue `func` to run after `delay_seconds` (a worker's scheduler moves it to its queue then).

    The rate limit applies when the job becomes due. In-process mode (development without
    Redis) has no scheduler and must never stall the caller (often a web request), so the job
    runs at once; callers bound their own re-enqueues (e.g. jobs.rewards' throttle waits).
    """
    app = app or current_app._get_current_object()
    q = queue(queue_name, app)
    if not q.is_async:
        return enqueue(func, *args, queue_name=queue_name, job_id=job_id, retries=retries, app=app, **kwargs)
    options = _job_options(app, retries)
    # Queue.enqueue_in parses its own keywords: the timeout is `job_timeout` there, and the
    # function's arguments go in `args`/`kwargs` so they cannot collide with RQ's.
    return q.enqueue_in(timedelta(seconds=max(delay_seconds, 0)), func, args=args, kwargs=kwargs, job_id=job_id,
                        rate_limit=rate_limit, job_timeout=options.pop("timeout"), **options)


def _job_options(app: Flask, retries: int | None) -> dict:
    retries = app.config["JOB_RETRIES"] if retries is None else retries
    return {
        "timeout": app.config["JOB_TIMEOUT"],
        "result_ttl": 3600,
        "failure_ttl": app.config["JOB_FAILURE_TTL"],
        "retry": Retry(max=retries, interval=RETRY_INTERVALS[:retries]) if retries else None,
    }
