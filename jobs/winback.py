"""The daily win-back run for one shop: advance the sequences (every one due, in batches),
enroll the lapsing, then send.

Safe to run twice: a second run finds everyone it enrolled already active (one active
enrollment per customer), no step 2 due again (the step is on the row), and the emails are
keyed per (enrollment, step) in email_sends.
"""
from __future__ import annotations

from flask import current_app
from rq.job import Job

from app.extensions import db, redis_connection
from app.loyalty.winback import INCENTIVE, advance_sequence, enroll_lapsing, unqueued_emails
from jobs.context import app_job
from jobs.dispatch import dispatch
from jobs.emails import email_job_id
from jobs.maintenance import _active_shop, parse_now
from jobs.queues import runs_in_process


@app_job
def run_winback(shop_id: int, now: str | None = None) -> str:
    if _active_shop(shop_id) is None:
        return "skipped"
    moment = parse_now(now)
    # First the emails an earlier run committed but never queued (it died mid-dispatch).
    requeued = _without_jobs(unqueued_emails(db.session, shop_id).intents)
    db.session.rollback()
    dispatch(requeued)
    advanced = 0
    while True:  # every sequence due, a commit (then its emails) per batch
        outcome = advance_sequence(db.session, shop_id, moment)
        db.session.commit()
        dispatch(outcome.intents)
        advanced += sum(1 for intent in outcome.intents if getattr(intent, "template", None) == INCENTIVE)
        if outcome.resume_after is None:
            break
    enrolled = enroll_lapsing(db.session, shop_id, moment)
    db.session.commit()
    dispatch(enrolled.intents)
    return f"enrolled:{len(enrolled.intents)} advanced:{advanced}" + (f" requeued:{len(requeued)}" if requeued else "")


def _without_jobs(intents: list) -> list:
    """The emails Redis holds no job for (queued, retrying or failed and kept): a backlog of
    queued emails is not queued twice."""
    app = current_app._get_current_object()
    if runs_in_process(app):
        return intents
    connection = redis_connection.client(app)
    return [i for i in intents if not Job.exists(email_job_id(i.shop_id, i.key), connection)]
