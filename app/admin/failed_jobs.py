"""A shop's failed background jobs, from RQ's FailedJobRegistry (as `lojal jobs failed|retry`,
but scoped: a merchant sees and retries only jobs about their own shop).

A job is the shop's when its first argument is the shop id (every per-shop job takes it first),
or, for inbox processing, when the webhook event it names is the shop's.
"""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from rq.job import Job
from sqlalchemy.orm import Session

from app.loyalty.errors import NotFound
from app.models import WebhookEvent, get_for_shop
from jobs.maintenance import FailedJob, requeue_failed
from jobs.queues import QUEUE_NAMES, queue

_BY_EVENT_ID = {"jobs.inbox.process_webhook_event"}


def _belongs_to(session: Session, job: Job, shop_id: int) -> bool:
    args = job.args or ()
    first = args[0] if args else None
    if not isinstance(first, int) or isinstance(first, bool):
        return False
    if job.func_name in _BY_EVENT_ID:
        return get_for_shop(session, WebhookEvent, shop_id, first) is not None
    return first == shop_id


def _shop_failed(app: Flask, session: Session, shop_id: int):
    for name in QUEUE_NAMES:
        registry = queue(name, app).failed_job_registry
        for job in Job.fetch_many(registry.get_job_ids(), connection=registry.connection,
                                  serializer=registry.serializer):
            if job is not None and _belongs_to(session, job, shop_id):  # None: expired between the reads
                yield name, registry, job


def shop_failed_jobs(app: Flask, session: Session, shop_id: int) -> list[FailedJob]:
    found = []
    for name, _, job in _shop_failed(app, session, shop_id):
        result = job.latest_result()
        lines = (result.exc_string or "").strip().splitlines() if result else []
        found.append(FailedJob(job.id, job.func_name, name, job.ended_at, lines[-1] if lines else ""))
    return sorted(found, key=lambda j: j.failed_at or datetime.min.replace(tzinfo=UTC), reverse=True)


def retry_shop_job(app: Flask, session: Session, shop_id: int, job_id: str) -> str:
    for _, registry, job in _shop_failed(app, session, shop_id):
        if job.id == job_id and requeue_failed(app, registry, job.id):  # False: another retry took it
            return job.id
    raise NotFound("no such failed job for this shop", code="job_not_found")
