"""The daily inbox prune: handled rows (shopper data in their payloads) go after the retention."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

import jobs.inbox
from app.models import WebhookEvent
from jobs.inbox import enqueue_processing, prune_inbox
from tests.factories import make_shop
from tests.jobs.test_inbox import PAID, _store

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


def _age(session, event_id, days, **values):
    session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id)
                    .values(received_at=NOW - timedelta(days=days), **values))
    session.commit()


def _left(session, ids):
    session.expire_all()
    return set(session.scalars(select(WebhookEvent.id).where(WebhookEvent.id.in_(ids))))


def test_handled_rows_past_the_retention_are_deleted_and_newer_ones_kept(wsession, run_jobs):
    shop = make_shop(wsession)
    old_processed = _store(wsession, shop, key="old-processed")
    old_ignored = _store(wsession, shop, key="old-ignored", topic="products/update", payload={"id": 1})
    recent = _store(wsession, shop, key="recent", payload={**PAID, "id": 9002})
    for event_id in (old_processed, old_ignored, recent):
        enqueue_processing(event_id)
    run_jobs()
    _age(wsession, old_processed, 31)
    _age(wsession, old_ignored, 45)
    _age(wsession, recent, 29)
    assert prune_inbox(now=NOW.isoformat()) >= 2
    assert _left(wsession, [old_processed, old_ignored, recent]) == {recent}


def test_a_row_never_processed_stays_however_old_for_an_operator_to_retry(wsession):
    shop = make_shop(wsession)
    failed = _store(wsession, shop, key="failed-every-attempt")
    _age(wsession, failed, 400, attempts=6, last_error="RuntimeError: boom")
    prune_inbox(now=NOW.isoformat())
    assert _left(wsession, [failed]) == {failed}


def test_the_retention_setting_decides_the_cutoff(wsession, worker_app, run_jobs):
    shop = make_shop(wsession)
    event_id = _store(wsession, shop, key="ten-days-old")
    enqueue_processing(event_id)
    run_jobs()
    _age(wsession, event_id, 10)
    prune_inbox(now=NOW.isoformat())
    assert _left(wsession, [event_id]) == {event_id}
    worker_app.config["INBOX_RETENTION_DAYS"] = 7
    try:
        prune_inbox(now=NOW.isoformat())
    finally:
        worker_app.config["INBOX_RETENTION_DAYS"] = 30
    assert _left(wsession, [event_id]) == set()


def test_a_backlog_larger_than_one_batch_is_pruned_in_one_run(wsession, run_jobs, monkeypatch):
    monkeypatch.setattr(jobs.inbox, "PRUNE_BATCH", 2)
    shop = make_shop(wsession)
    ids = [_store(wsession, shop, key=f"backlog-{n}", payload={**PAID, "id": 9100 + n}) for n in range(5)]
    for event_id in ids:
        enqueue_processing(event_id)
    run_jobs()
    for event_id in ids:
        _age(wsession, event_id, 60)
    assert prune_inbox(now=NOW.isoformat()) >= 5
    assert _left(wsession, ids) == set()
