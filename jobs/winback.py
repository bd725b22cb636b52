"""The daily win-back run for one shop: advance the sequences (every one due, in batches),
enroll the lapsing, then send.

Safe to run twice: a second run finds everyone it enrolled already active (one active
enrollment per customer), no step 2 due again (the step is on the row), and the emails are
keyed per (enrollment, step) in email_sends.
"""
from __future__ import annotations

from app.extensions import db
from app.loyalty.winback import INCENTIVE, advance_sequence, enroll_lapsing, unqueued_emails
from jobs.context import app_job
from jobs.dispatch import dispatch
from jobs.emails import without_email_jobs
from jobs.maintenance import _active_shop, parse_now


@app_job
def run_winback(shop_id: int, now: str | None = None) -> str:
    if _active_shop(shop_id) is None:
        return "skipped"
    moment = parse_now(now)
    # First the emails an earlier run committed but never queued (it died mid-dispatch).
    requeued = without_email_jobs(unqueued_emails(db.session, shop_id).intents)
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

