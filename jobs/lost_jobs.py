"""Redemptions waiting on a job that Redis no longer has (its enqueue was lost)."""
from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from rq.job import Job
from sqlalchemy import ColumnElement, select

from app.extensions import db, redis_connection
from app.models import Redemption
from jobs.queues import runs_in_process

# Rows read per query; every batch is read, so a backlog of redemptions whose jobs are alive
# (a rate-limited shop) never hides a lost one behind it.
BATCH = 1000


def redemptions_without_jobs(condition: ColumnElement[bool],
                             job_ids: Callable[[int, int], list[str]]) -> list[tuple[int, int]]:
    """(shop_id, redemption id) of the redemptions matching `condition` for which Redis holds
    none of `job_ids(shop_id, id)` (queued, scheduled, running, retrying or failed and kept)."""
    app = current_app._get_current_object()
    connection = None if runs_in_process(app) else redis_connection.client(app)
    lost: list[tuple[int, int]] = []
    after = 0
    while True:
        rows = db.session.execute(
            select(Redemption.shop_id, Redemption.id).where(condition, Redemption.id > after)
            .order_by(Redemption.id).limit(BATCH)
        ).all()
        db.session.rollback()
        lost += [(shop_id, rid) for shop_id, rid in rows
                 if connection is None or not any(Job.exists(job_id, connection) for job_id in job_ids(shop_id, rid))]
        if len(rows) < BATCH:
            return lost
        after = rows[-1][1]
