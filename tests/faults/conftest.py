"""Fault tests break real services: a Redis server of their own (never the machine's), a real
RQ worker process, the test database's own backends. Each test finishes in seconds."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from rq import SimpleWorker

from app import create_app
from app.extensions import db
from jobs.queues import queue
from jobs.worker import run_worker
from tests.app.web.shopify_helpers import SECRET
from tests.conftest import TEST_FERNET_KEY, _DATABASE_URL, app_session, test_config
from tests.ports import free_port


class OwnRedis:
    """A throw-away redis-server on a free port, without persistence, that a test may kill."""

    def __init__(self, workdir: Path):
        self.port, self.workdir, self.process = free_port(), workdir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.025)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture(autouse=True)
def loggers_enabled():
    """Alembic's fileConfig (run by the session's migration) disables every logger that existed
    before it; these tests assert on log records, so switch them on (and back afterwards)."""
    loggers = [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger) and lg.disabled]
    for logger in loggers:
        logger.disabled = False
    yield
    for logger in loggers:
        logger.disabled = True


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@contextmanager
def built_app(**overrides):
    """An app with the test settings and these overrides; its connections closed afterwards."""
    flask_app = create_app(test_config(**overrides))
    try:
        yield flask_app
    finally:
        with flask_app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def fault_app(app, own_redis):  # `app` has migrated the schema
    with built_app(REDIS_URL=own_redis.url, RUN_JOBS_IN_PROCESS=False, SHOPIFY_API_KEY="key",
                   SHOPIFY_API_SECRET=SECRET) as flask_app:
        yield flask_app


@pytest.fixture
def fsession(fault_app):
    with app_session(fault_app) as session:
        yield session


class Drain:
    """Run every queued job on the test's own Redis to completion, in this process; `window` is
    when the last run started and ended (what it parked was parked in between)."""

    def __init__(self, app):
        self.app = app
        self.window = (0.0, 0.0)

    def __call__(self) -> None:
        started = time.time()
        run_worker(self.app, burst=True, worker_class=SimpleWorker)
        self.window = (started, time.time())


@pytest.fixture
def drain(fault_app):
    return Drain(fault_app)


def assert_parked_for(app, queue_name: str, expected_seconds: float, parked_during: tuple[float, float]) -> None:
    """Every job parked in the queue's schedule is due `expected_seconds` after it was parked,
    i.e. within `parked_during` (a drain's window) shifted by that much: measured from the drain,
    not from now, so a slow worker shutdown on a loaded machine cannot make the delay look
    shorter. RQ keeps whole seconds, hence the second of slack below."""
    registry = queue(queue_name, app).scheduled_job_registry
    jobs = registry.get_job_ids()
    assert jobs, f"nothing is scheduled on {queue_name}"
    started, ended = parked_during
    for job_id in jobs:
        due = registry.get_scheduled_time(job_id).timestamp()
        assert started + expected_seconds - 1 < due <= ended + expected_seconds + 0.1, (
            job_id, due - started, due - ended, expected_seconds)


def worker_process(redis_url: str, *queues: str) -> subprocess.Popen:
    """`lojal worker` as production runs it, in its own process group (so its work horse dies with it)."""
    env = {**os.environ, "DATABASE_URL": _DATABASE_URL, "REDIS_URL": redis_url,
           "SECRET_KEY": "test-secret-key-0123456789abcdef", "APP_URL": "https://lojal.test", "TOKEN_ENCRYPTION_KEYS": TEST_FERNET_KEY, "LOG_LEVEL": "WARNING"}
    command = [str(Path(sys.executable).parent / "lojal"), "worker", *queues]
    return subprocess.Popen(command, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_with_children(pid: int) -> None:
    """SIGKILL a process and its children (an RQ work horse runs in a session of its own)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    for victim in (pid, *children):
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
