"""Processing the webhook inbox: one row -> domain events -> one transaction."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import psycopg
from flask import current_app
from rq.job import Job, JobStatus
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import DataError

from app.extensions import db
from app.loyalty.apply import apply_event
from app.models import Shop, WebhookEvent
from integrations.base import PermanentPlatformError, PlatformReadNeeded
from integrations.registry import adapter_for
from jobs.context import app_job, commit_keeping_rows
from jobs.dispatch import dispatch
from jobs.maintenance import parse_now
from jobs.queues import enqueue, queue, runs_in_process

log = logging.getLogger(__name__)
SWEEP_AFTER = timedelta(minutes=1)
PRUNE_BATCH = 5000


def enqueue_processing(event_id: int) -> None:
    enqueue("jobs.inbox.process_webhook_event", event_id, queue_name="webhooks", job_id=event_job_id(event_id))


# Inbox-driven applies commit without waiting for the WAL flush (synchronous_commit = off, for
# this transaction only). What makes that safe: the inbox row was committed durably before the
# platform got its 200, and it is marked processed in the same transaction as the points, so a
# server crash loses at most the last few hundred ms of applies *together with* their processed
# marks, and sweep_inbox replays them (idempotent ledger keys). Nobody can spend points that could
# vanish: a redemption commits synchronously, and flushing its commit record flushes all WAL
# before it, every earlier asynchronous commit included. Redemptions, adjustments and every other
# transaction keep the server's setting (tests/jobs/test_inbox_commit.py).
ASYNC_COMMIT = func.set_config("synchronous_commit", "off", True).label("async_commit")
_MARK_PROCESSED = ("UPDATE webhook_events SET status = 'processed', attempts = attempts + 1, processed_at = %s "
                   "WHERE id = %s")


def claim_webhook_event(session, event_id: int, *, wait: bool = False) -> tuple[WebhookEvent, Shop] | None:
    """Lock the inbox row (skipping one another worker holds, unless `wait`) with its shop, and
    switch this transaction to asynchronous commit (see ASYNC_COMMIT), in one round trip."""
    claim = (select(WebhookEvent, Shop, ASYNC_COMMIT).join(Shop, Shop.id == WebhookEvent.shop_id)
             .where(WebhookEvent.id == event_id).with_for_update(of=WebhookEvent, skip_locked=not wait))
    if wait:  # a claim again, after a commit that kept the rows loaded: read them afresh
        claim = claim.execution_options(populate_existing=True)
    claimed = session.execute(claim).first()
    return None if claimed is None else (claimed[0], claimed[1])


@app_job
def process_webhook_event(event_id: int) -> str:
    session = db.session
    claimed = claim_webhook_event(session, event_id)
    if claimed is None:
        return "busy-or-missing"  # another worker holds it, or it was purged with its shop
    row, shop = claimed
    if row.processed_at is not None:
        return "already-processed"
    intents: list = []
    try:
        adapter = adapter_for(row.platform)
        events = adapter.parse_event(shop, row.topic, row.payload, row.headers)
        if any(isinstance(e, PlatformReadNeeded) for e in events):
            events = _with_platform_state(session, adapter, row, shop, events)
            if isinstance(events, str):
                return events
        statuses = []
        for event in events:
            outcome = apply_event(session, row.shop_id, event)
            intents += outcome.intents
            statuses.append(outcome.status)
        session.flush()
    except PermanentPlatformError as exc:
        # Unparseable or unknown: keep the row for inspection, never retry it.
        return _ignore(session, event_id, str(exc))
    except (DataError, psycopg.DataError) as exc:  # SQLAlchemy's, or raw psycopg's (new_sale's pipeline)
        # SQLSTATE class 22 (a value out of range, too long, invalid): the same payload fails the
        # same way on every attempt. Only the error's class goes on the row: its message and
        # DETAIL/CONTEXT may quote the values (shopper data).
        return _ignore(session, event_id, f"DataError: the database refused a value ({_data_error_kind(exc)})")
    except Exception as exc:
        # Record the failure on the row (its own transaction), then let RQ retry the job.
        session.rollback()
        row = session.get(WebhookEvent, event_id)
        row.attempts += 1
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        row.claimed_until = None  # RQ's retry may claim it at once
        session.commit()
        raise
    # The processed mark and COMMIT in one round trip (psycopg pipeline), in the points' transaction.
    # COMMIT is queued as a statement: raw.commit() inside a pipeline syncs at once, and leaving
    # the pipeline then syncs again, a second round trip that carries nothing.
    raw = session.connection().connection.driver_connection
    with raw.pipeline():
        raw.execute(_MARK_PROCESSED, (datetime.now(UTC), event_id))
        raw.execute("COMMIT")
    session.commit()  # the driver's transaction has ended: this only closes the session's (no round trip)
    dispatch(intents)
    return ",".join(statuses) or "no-events"


def _with_platform_state(session, adapter, row: WebhookEvent, shop: Shop, events: list) -> list | str:
    """Ask the platform what the delivery lacks (an edited order's state) with no transaction open.

    The row lock is the claim that one worker processes a delivery, and holding it across the
    call would keep the transaction open. So the claim is committed on the row instead
    (`claimed_until`, for as long as a job may run: a worker that dies mid-call leaves it to the
    sweeper once it runs out), the platform is asked, and the answer is applied in a new
    transaction that locks the row again and checks it is still unprocessed. Other workers and
    the sweeper leave a row whose claim has not run out to its job. Returns the completed events,
    or the job's outcome when there is nothing to apply."""
    now = datetime.now(UTC)
    if row.claimed_until is not None and row.claimed_until > now:
        session.rollback()
        return "busy-or-missing"  # another worker is reading the platform for it
    event_id = row.id
    row.claimed_until = now + timedelta(seconds=current_app.config["JOB_TIMEOUT"])
    commit_keeping_rows(session, shop)
    events = adapter.read_platform_state(shop, events)
    claimed = claim_webhook_event(session, event_id, wait=True)  # only a sweep's glance holds it now
    if claimed is None:
        return "busy-or-missing"  # purged with its shop meanwhile
    row = claimed[0]
    if row.processed_at is not None:
        return "already-processed"
    row.claimed_until = None
    return events


def _ignore(session, event_id: int, reason: str) -> str:
    session.rollback()
    row = session.get(WebhookEvent, event_id, with_for_update=True)
    row.status = "ignored"
    row.last_error = reason[:2000]
    row.attempts += 1
    row.processed_at = datetime.now(UTC)
    row.claimed_until = None
    session.commit()
    return "ignored"


def _data_error_kind(exc: DataError | psycopg.DataError) -> str:
    """psycopg's class for the SQLSTATE and the code, e.g. 'NumericValueOutOfRange, SQLSTATE 22003'."""
    error = exc.orig if isinstance(exc, DataError) else exc
    sqlstate = getattr(error, "sqlstate", None)
    return f"{type(error).__name__}, SQLSTATE {sqlstate}" if sqlstate else type(error).__name__


def event_job_id(event_id: int) -> str:
    return f"webhook-event-{event_id}"


@app_job
def sweep_inbox() -> int:
    """Re-enqueue inbox rows nobody processed (Redis was down, a worker died).

    Not a row whose job waits in the queue (a backlog: pushing it again would run it twice), nor
    one whose job RQ is handling a failure of: retrying after its back-off (scheduled) or
    failed and kept for `lojal jobs retry`; re-enqueueing those would run a failing row every
    minute. A started job whose row is locked is running: left to it. One whose row is free was
    abandoned (its worker died): re-enqueued, and that counts as an attempt, or a payload that kills
    its worker would be re-run every minute for ever, the row never recording a failure. A row that
    failed every attempt (attempts > JOB_RETRIES) stays for inspection, so such rows never crowd
    lost ones out of the batch."""
    app = current_app._get_current_object()
    cutoff = datetime.now(UTC) - SWEEP_AFTER
    ids = db.session.scalars(
        select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None), WebhookEvent.status == "received",
                                      WebhookEvent.received_at < cutoff,
                                      WebhookEvent.attempts <= app.config["JOB_RETRIES"])
        .order_by(WebhookEvent.id).limit(5000)
    ).all()
    db.session.rollback()
    if ids and not runs_in_process(app):
        q = queue("webhooks", app)
        jobs = Job.fetch_many([event_job_id(i) for i in ids], connection=q.connection, serializer=q.serializer)
        handled = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.FAILED)
        statuses = {i: None if job is None else job.get_status(refresh=False) for i, job in zip(ids, jobs, strict=True)}
        left = _count_abandoned([i for i, status in statuses.items() if status == JobStatus.STARTED],
                                app.config["JOB_RETRIES"])
        ids = [i for i, status in statuses.items() if status not in handled and i not in left]
    for event_id in ids:
        enqueue_processing(event_id)
    return len(ids)


def _count_abandoned(event_ids: list[int], retries: int) -> set[int]:
    """Record an attempt on rows whose job was left started; returns those not to re-enqueue: now
    past `retries`, processed meanwhile, or locked or claimed (being processed: never waited for)."""
    if not event_ids:
        return set()
    free = (select(WebhookEvent.id).where(WebhookEvent.id.in_(event_ids), WebhookEvent.processed_at.is_(None),
                                          or_(WebhookEvent.claimed_until.is_(None),
                                              WebhookEvent.claimed_until <= func.now()))
            .with_for_update(skip_locked=True))
    counted = db.session.execute(
        update(WebhookEvent).where(WebhookEvent.id.in_(free.scalar_subquery()))
        .values(attempts=WebhookEvent.attempts + 1,
                last_error="its job was left started (the worker stopped while running it?); swept again")
        .returning(WebhookEvent.id, WebhookEvent.attempts)
    ).all()
    db.session.commit()
    return set(event_ids) - {event_id for event_id, attempts in counted if attempts <= retries}


@app_job
def prune_inbox(now: str | None = None) -> int:
    """Delete inbox rows handled more than INBOX_RETENTION_DAYS ago (processed or ignored); their
    payloads hold shopper data, and their work is in the ledger. Rows still unprocessed (failed
    every attempt, kept for `lojal jobs retry`) stay. A platform retries a delivery for two days at
    most, so deduplication by event key still covers every retry (the setting is at least 3 days).
    By id ranges of PRUNE_BATCH, each its own transaction: a big backlog never holds one long
    lock, and no batch re-reads what an earlier one deleted (dead until VACUUM)."""
    cutoff = parse_now(now) - timedelta(days=current_app.config["INBOX_RETENTION_DAYS"])
    old = (WebhookEvent.received_at < cutoff, WebhookEvent.processed_at.is_not(None))
    low, high = db.session.execute(select(func.min(WebhookEvent.id), func.max(WebhookEvent.id)).where(*old)).one()
    db.session.rollback()
    pruned = 0
    for start in range(low or 0, (high or -1) + 1, PRUNE_BATCH):
        pruned += db.session.execute(
            delete(WebhookEvent).where(WebhookEvent.id >= start, WebhookEvent.id < min(start + PRUNE_BATCH, high + 1),
                                       *old).execution_options(synchronize_session=False)).rowcount
        db.session.commit()
    return pruned
