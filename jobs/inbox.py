"""Processing the webhook inbox: one row -> domain events -> one transaction."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.loyalty.apply import apply_event
from app.models import Shop, WebhookEvent
from integrations.base import PermanentPlatformError
from integrations.registry import adapter_for
from jobs.context import app_job
from jobs.dispatch import dispatch
from jobs.queues import enqueue

log = logging.getLogger(__name__)
SWEEP_AFTER = timedelta(minutes=1)


def enqueue_processing(event_id: int) -> None:
    enqueue("jobs.inbox.process_webhook_event", event_id, queue_name="webhooks", job_id=f"webhook-event-{event_id}")


@app_job
def process_webhook_event(event_id: int) -> str:
    session = db.session
    row = session.scalars(
        select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return "busy-or-missing"  # another worker holds it, or it was purged with its shop
    if row.processed_at is not None:
        return "already-processed"
    shop = session.get(Shop, row.shop_id)
    intents: list = []
    try:
        events = adapter_for(row.platform).parse_event(shop, row.topic, row.payload, row.headers)
        statuses = []
        for event in events:
            outcome = apply_event(session, row.shop_id, event)
            intents += outcome.intents
            statuses.append(outcome.status)
        row.status = "processed"
    except PermanentPlatformError as exc:
        # Unparseable or unknown: keep the row for inspection, never retry it.
        session.rollback()
        row = session.get(WebhookEvent, event_id, with_for_update=True)
        row.status = "ignored"
        row.last_error = str(exc)[:2000]
        statuses = ["ignored"]
    except Exception as exc:
        # Record the failure on the row (its own transaction), then let RQ retry the job.
        session.rollback()
        row = session.get(WebhookEvent, event_id)
        row.attempts += 1
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        session.commit()
        raise
    row.attempts += 1
    row.processed_at = datetime.now(UTC)
    session.commit()
    dispatch(intents)
    return ",".join(statuses) or "no-events"


@app_job
def sweep_inbox() -> int:
    """Re-enqueue inbox rows nobody processed (Redis was down, a worker died)."""
    cutoff = datetime.now(UTC) - SWEEP_AFTER
    ids = db.session.scalars(
        select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None), WebhookEvent.status == "received",
                                      WebhookEvent.received_at < cutoff).order_by(WebhookEvent.id).limit(5000)
    ).all()
    db.session.rollback()
    for event_id in ids:
        enqueue_processing(event_id)
    return len(ids)
