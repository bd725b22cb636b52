"""`lojal worker [QUEUES]`: an RQ worker with the app loaded once."""
from __future__ import annotations

from collections.abc import Sequence

from flask import Flask
from rq import Worker
from rq.serializers import JSONSerializer

from app.extensions import redis_connection
from jobs.context import set_worker_app
from jobs.queues import QUEUE_NAMES, queue


def run_worker(app: Flask, queue_names: Sequence[str] = (), *, burst: bool = False, worker_class=Worker) -> bool:
    if not app.config.get("REDIS_URL"):
        raise RuntimeError("REDIS_URL is not set: without Redis, jobs run in-process and no worker is needed")
    set_worker_app(app)
    queues = [queue(name, app) for name in (queue_names or QUEUE_NAMES)]
    worker = worker_class(queues, connection=redis_connection.client(app), serializer=JSONSerializer)
    # with_scheduler: the worker also moves retries and delayed jobs back onto their queues.
    return worker.work(burst=burst, with_scheduler=True)
