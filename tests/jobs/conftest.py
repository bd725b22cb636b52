"""Job tests drive a real RQ worker: on REDIS_URL's Redis when set, else over fakeredis."""
from __future__ import annotations

import pytest
from rq import SimpleWorker

from app import create_app
from app.extensions import db, redis_connection
from jobs.worker import run_worker
from tests.conftest import test_config


@pytest.fixture(scope="module")
def worker_app(app):
    if app.config.get("REDIS_URL"):
        return app
    return create_app(test_config(RUN_JOBS_IN_PROCESS=False))


@pytest.fixture
def wsession(worker_app):
    with worker_app.app_context():
        redis_connection.client(worker_app).flushdb()
        yield db.session
        db.session.rollback()
        db.session.remove()


@pytest.fixture
def run_jobs(worker_app):
    """Run every queued job to completion in this process (RQ SimpleWorker, burst mode)."""
    def run() -> None:
        run_worker(worker_app, burst=True, worker_class=SimpleWorker)
    return run
