"""The one enqueue helper: every job gets the same timeout, retry and failure TTL defaults.

Job functions are named by dotted path and take ids (JSON-serialised), never objects.
Without REDIS_URL the queue runs jobs synchronously in the calling process
(RUN_JOBS_IN_PROCESS; tests turn it off to drive a real worker over fakeredis).
"""
from __future__ import annotations

from flask import Flask, current_app
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from app.extensions import redis_connection

QUEUE_NAMES = ("webhooks", "rewards", "emails", "maintenance")
# Back off 10 s, 30 s, 2 min, 10 min, 30 min, then keep the failure for inspection.
RETRY_INTERVALS = [10, 30, 120, 600, 1800]


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
            app: Flask | None = None, **kwargs) -> Job:
    """Enqueue `func` (dotted path) with the project's defaults."""
    app = app or current_app._get_current_object()
    retries = app.config["JOB_RETRIES"] if retries is None else retries
    return queue(queue_name, app).enqueue_call(
        func,
        args=args,
        kwargs=kwargs,
        timeout=app.config["JOB_TIMEOUT"],
        result_ttl=3600,
        failure_ttl=app.config["JOB_FAILURE_TTL"],
        retry=Retry(max=retries, interval=RETRY_INTERVALS[:retries]) if retries else None,
        job_id=job_id,
    )
