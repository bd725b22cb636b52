"""Jobs run inside an app context with a session of their own, removed afterwards."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, has_app_context
from rq import get_current_job
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.models import Shop
from jobs.queues import runs_in_process

_worker_app: Flask | None = None
F = TypeVar("F", bound=Callable)


def set_worker_app(app: Flask) -> None:
    """The worker process builds one app at start and hands it here."""
    global _worker_app
    _worker_app = app


def app_job(func: F) -> F:
    """Run the job in a fresh app context (and so a fresh session), even when called in-process."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        app = current_app._get_current_object() if has_app_context() else _worker_app
        if app is None:
            raise RuntimeError("no app for this job: run it through `lojal worker`")
        with app.app_context():
            try:
                return func(*args, **kwargs)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # A pooled connection had died (database restart, failover): workers skip the
                # pool's pre-ping (app.extensions.use_worker_engine), so the job finds out here.
                # Its transaction is gone and the pool now hands out fresh connections; run the
                # job once more, as RQ's retry would, without the retry's back-off.
                db.session.remove()
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper  # type: ignore[return-value]


def is_final_attempt() -> bool:
    """True when RQ will not retry this job again if it fails now (or it runs outside RQ).

    In-process (no Redis) a job runs once inside RQ's synchronous queue, which records a failure
    but never retries it, and no scheduler sweeps up after it: that one attempt is the last.
    """
    job = get_current_job()
    if job is None or runs_in_process(current_app._get_current_object()):
        return True
    return not (job.retries_left and job.retries_left > 0)


def commit_keeping_rows(session, *rows) -> None:
    """Commit the job's transaction (usually reads only) before it calls a platform, keeping
    what it loaded.

    A slow platform answer (seconds, up to the client's timeout) must not leave the connection
    idle in transaction: that would hold back VACUUM and make a migration's ALTER TABLE wait.
    The loaded rows stay usable (not expired: no SQL reloads them) for the call; whatever the
    job records afterwards, it records in a new transaction that re-locks and re-checks its row,
    since others may have acted meanwhile. `rows`: ones the next call reads, reloaded first if
    anything expired them.
    """
    real = session() if callable(session) else session  # the scoped session's own Session
    for row in rows:
        # A row partly expired meanwhile (a Shopify token refresh expires the shop's token
        # columns) is reloaded now, not by a lazy load during the call.
        expired = inspect(row).expired_attributes
        if expired:
            real.refresh(row, list(expired))
    keep = real.expire_on_commit
    real.expire_on_commit = False
    try:
        real.commit()
    finally:
        real.expire_on_commit = keep


def relock_shop(session, shop_id: int):
    """The shop again after a platform call made with no transaction open (commit_keeping_rows):
    locked and read afresh, as others may have changed it meanwhile; None if it was purged.
    FOR NO KEY UPDATE: the inbox's inserts for the shop (their foreign-key checks) go on."""
    return session.get(Shop, shop_id, with_for_update={"key_share": True}, populate_existing=True)
