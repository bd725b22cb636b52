"""Helpers for job tests against Shopify: what RQ scheduled, and running it now."""
from __future__ import annotations

from rq.job import Job
from rq.registry import ScheduledJobRegistry

from app.extensions import redis_connection
from jobs.queues import queue


def scheduled_jobs(app, queue_name: str) -> list[Job]:
    q = queue(queue_name, app)
    registry = ScheduledJobRegistry(queue=q)
    return [Job.fetch(job_id, connection=redis_connection.client(app), serializer=q.serializer)
            for job_id in registry.get_job_ids()]


def scheduled_in(app, queue_name: str, job: Job) -> float:
    """Seconds from the job's enqueue time to when it is scheduled to run."""
    registry = ScheduledJobRegistry(queue=queue(queue_name, app))
    return (registry.get_scheduled_time(job) - job.created_at).total_seconds()


def assert_delay(app, queue_name: str, job: Job, expected: float) -> None:
    """RQ keeps scheduled times in whole seconds, so the stored delay is `expected` cut by < 1 s."""
    delay = scheduled_in(app, queue_name, job)
    assert expected - 1.1 < delay <= expected + 0.1, delay


def release_scheduled(app, queue_name: str) -> list[Job]:
    """Move every scheduled job (retries, waits) onto its queue, as if its time had come."""
    q = queue(queue_name, app)
    registry = ScheduledJobRegistry(queue=q)
    jobs = scheduled_jobs(app, queue_name)
    for job in jobs:
        registry.remove(job)
        q.enqueue_job(job)  # rate-limited jobs go through their limiter again
    return jobs
