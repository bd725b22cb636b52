"""`lojal worker [QUEUES]`: an RQ worker with the app loaded once."""
from __future__ import annotations

from collections.abc import Sequence

import click
from flask import Flask
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer

from app.extensions import redis_connection
from jobs.context import set_worker_app
from jobs.queues import QUEUE_NAMES, queue, runs_in_process


# Jobs run in the worker process by default: they are our own idempotent code, and forking a
# work horse per job costs a new database connection and cold SQLAlchemy caches every time
# (bench/e2e.py measured ~120 ms per job forked vs ~57 ms in-process). --fork restores RQ's Worker.
WORKER_CLASSES = {False: SimpleWorker, True: Worker}


def run_worker(app: Flask, queue_names: Sequence[str] = (), *, burst: bool = False,
               worker_class=SimpleWorker) -> bool:
    if runs_in_process(app):
        raise click.UsageError("REDIS_URL is not set: jobs run in-process, so there is nothing for a worker to do")
    set_worker_app(app)
    queues = [queue(name, app) for name in (queue_names or QUEUE_NAMES)]
    worker = worker_class(queues, connection=redis_connection.client(app), serializer=JSONSerializer)
    # with_scheduler: the worker also moves retries and delayed jobs back onto their queues.
    return worker.work(burst=burst, with_scheduler=True)
