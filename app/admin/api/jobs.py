"""The shop's failed background jobs: list and retry (owner)."""
from __future__ import annotations

from flask import current_app

from app.admin.api.registry import commit, operation
from app.admin.failed_jobs import retry_shop_job, shop_failed_jobs
from app.admin.schemas.operations import FailedJobListSchema, RetriedSchema
from app.extensions import db
from app.loyalty import audit


@operation("/failed-jobs", "GET", tag="jobs", summary="The shop's failed background jobs", permission="settings",
           response=FailedJobListSchema())
def list_failed_jobs(identity):
    jobs = shop_failed_jobs(current_app._get_current_object(), db.session, identity.shop_id)
    return {"items": [{"id": j.id, "function": j.func, "queue": j.queue, "failed_at": j.failed_at, "error": j.error}
                      for j in jobs]}


@operation("/failed-jobs/<job_id>/retry", "POST", tag="jobs", summary="Requeue one failed job",
           permission="settings", response=RetriedSchema(), status=202)
def retry_failed_job(identity, job_id):
    requeued = retry_shop_job(current_app._get_current_object(), db.session, identity.shop_id, job_id)
    audit.record(db.session, identity.shop_id, identity.actor, "job.retry", target_type="job", target_id=requeued)
    commit()
    return {"requeued": [requeued]}
