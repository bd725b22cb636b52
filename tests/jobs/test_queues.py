"""The enqueue helper's defaults, in-process mode, and the worker command."""
from __future__ import annotations

import pytest
from rq.job import Job

from app import create_app
from app.extensions import db, redis_connection
from app.inbox import store_inbound_event
from app.models import WebhookEvent
from jobs.queues import QUEUE_NAMES, enqueue, queue
from tests.conftest import test_config
from tests.factories import make_shop


def test_enqueue_applies_timeout_retry_and_failure_ttl(worker_app):
    with worker_app.app_context():
        job = enqueue("jobs.inbox.sweep_inbox", queue_name="maintenance")
        fetched = Job.fetch(job.id, connection=redis_connection.client(worker_app), serializer=queue("maintenance").serializer)
    assert fetched.timeout == worker_app.config["JOB_TIMEOUT"]
    assert fetched.retries_left == worker_app.config["JOB_RETRIES"]
    assert fetched.retry_intervals[:2] == [10, 30]
    assert fetched.failure_ttl == worker_app.config["JOB_FAILURE_TTL"]
    assert fetched.func_name == "jobs.inbox.sweep_inbox"


def test_unknown_queue_is_refused(worker_app):
    with worker_app.app_context(), pytest.raises(ValueError, match="unknown queue"):
        enqueue("jobs.inbox.sweep_inbox", queue_name="default")
    assert set(QUEUE_NAMES) == {"webhooks", "rewards", "emails", "maintenance"}


def test_without_redis_jobs_run_in_process_at_once():
    app = create_app(test_config(REDIS_URL=""))
    with app.app_context():
        shop = make_shop(db.session)
        event_id = store_inbound_event(db.session, shop_id=shop.id, platform="demo", topic="orders/paid", event_key="e1",
                                       payload={"id": 1, "subtotal": "10", "total": "10", "paid_at": "2026-03-01T00:00:00+00:00",
                                                "customer": {"id": 1, "email": "a@example.com"}})
        db.session.commit()
        job = enqueue("jobs.inbox.process_webhook_event", event_id, queue_name="webhooks")
        assert job.get_status() == "finished"
        db.session.expire_all()
        assert db.session.get(WebhookEvent, event_id).status == "processed"
        db.session.remove()


def test_worker_command_refuses_without_redis():
    app = create_app(test_config(REDIS_URL=""))
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code != 0 and "REDIS_URL" in result.output


def test_worker_command_drains_the_queues(worker_app, wsession):
    shop = make_shop(wsession)
    event_id = store_inbound_event(wsession, shop_id=shop.id, platform="demo", topic="customers/create", event_key="c1",
                                   payload={"id": 5, "email": "b@example.com", "created_at": "2026-03-01T00:00:00+00:00"})
    wsession.commit()
    enqueue("jobs.inbox.process_webhook_event", event_id, queue_name="webhooks")
    result = worker_app.test_cli_runner().invoke(args=["worker", "webhooks", "--burst"])
    assert result.exit_code == 0, result.output
    wsession.expire_all()
    assert wsession.get(WebhookEvent, event_id).status == "processed"
