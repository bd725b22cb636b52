"""Scheduled per-shop upkeep: a fan-out enqueues one job per active shop; each job runs the
domain's own batch in the shop's timezone, commits once and dispatches its intents after.

Every job takes ids (and an optional ISO `now`, so tests can walk the calendar) and is safe
to run twice: the domain keys its ledger entries (release, expiry, birthday per year) and the
tier review records its period start in the database so it acts once per period.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from sqlalchemy import select

from app.extensions import db
from app.loyalty.actions import award_birthdays, unqueued_birthday_emails
from app.loyalty.calendar import local
from app.loyalty.expiry import expire_inactive_points, expiry_reminders as find_expiry_reminders
from app.loyalty.owed_emails import owed_emails
from app.loyalty.pending import release_pending_points
from app.loyalty.tier_review import review_due_tiers
from app.models import Shop
from integrations.base import PermanentPlatformError
from jobs.context import app_job
from jobs.dispatch import dispatch
from jobs.emails import without_email_jobs
from jobs.queues import QUEUE_NAMES, enqueue, queue, runs_in_process

log = logging.getLogger(__name__)
QUEUE = "maintenance"
PER_SHOP_JOBS = frozenset({
    "jobs.maintenance.release_pending",
    "jobs.maintenance.expire_points",
    "jobs.maintenance.expiry_reminders",
    "jobs.maintenance.birthdays",
    "jobs.maintenance.review_tiers_if_period_ended",
    "jobs.maintenance.resend_lost_emails",
    "jobs.winback.run_winback",
    "jobs.analytics.refresh_analytics_snapshots",
})
# The token refresh runs this often (jobs.schedule); a token is refreshed when it expires
# within REFRESH_MARGIN (integrations.shopify.tokens), so the fan-out picks the shops whose
# token expires before the run after next could catch it.
TOKEN_REFRESH_EVERY = timedelta(minutes=5)


def parse_now(now: str | None) -> datetime:
    """The job's clock: an ISO timestamp (naive means UTC), else the real time."""
    if now is None:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(now)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _now_kwargs(now: str | None) -> dict:
    return {} if now is None else {"now": now}


@app_job
def for_each_active_shop(job_path: str, now: str | None = None) -> int:
    """Enqueue `job_path(shop_id)` for every active shop (uninstalled and disconnected ones are skipped)."""
    if job_path not in PER_SHOP_JOBS:
        raise ValueError(f"{job_path!r} is not a per-shop job; one of {', '.join(sorted(PER_SHOP_JOBS))}")
    shop_ids = db.session.scalars(select(Shop.id).where(Shop.status == "active").order_by(Shop.id)).all()
    db.session.rollback()
    for shop_id in shop_ids:
        enqueue(job_path, shop_id, queue_name=QUEUE, **_now_kwargs(now))
    return len(shop_ids)


def _active_shop(shop_id: int) -> Shop | None:
    shop = db.session.get(Shop, shop_id)
    return shop if shop is not None and shop.status == "active" else None


def _apply_for_shop(shop_id: int, now: str | None, domain_step) -> str:
    """Run `domain_step(session, shop_id, now)` for an active shop: one commit, then its intents."""
    if _active_shop(shop_id) is None:
        return "skipped"
    outcome = domain_step(db.session, shop_id, parse_now(now))
    db.session.commit()
    dispatch(outcome.intents)
    return outcome.status


def _apply_in_batches(shop_id: int, now: str | None, domain_step) -> str:
    """Like _apply_for_shop for a batched step: a commit (then its intents) per batch, until the
    step has nothing more, so one run does everything due however many rows that is."""
    if _active_shop(shop_id) is None:
        return "skipped"
    moment = parse_now(now)
    status, after_id = "noop", 0
    while True:
        outcome = domain_step(db.session, shop_id, moment, after_id=after_id)
        db.session.commit()
        dispatch(outcome.intents)
        if outcome.status == "applied":
            status = "applied"
        if outcome.resume_after is None:
            return status
        after_id = outcome.resume_after


@app_job
def release_pending(shop_id: int, now: str | None = None) -> str:
    """Points whose return window has passed become spendable (every due order, in batches; hourly)."""
    return _apply_in_batches(shop_id, now, release_pending_points)


@app_job
def expire_points(shop_id: int, now: str | None = None) -> str:
    """Inactive customers' points expire (the domain computes the dates in the shop's timezone;
    every due customer, in batches)."""
    return _apply_in_batches(shop_id, now, expire_inactive_points)


@app_job
def expiry_reminders(shop_id: int, now: str | None = None) -> str:
    """`points_expiring` emails 30 and 7 days before a balance expires (the shop's local dates);
    the reminder key in email_sends makes a rerun, or the next day's run, send nothing twice."""
    return _apply_for_shop(shop_id, now, find_expiry_reminders)


@app_job
def birthdays(shop_id: int, now: str | None = None) -> str:
    """Birthday points for the shop's local date. Runs hourly, so every shop's local day is seen
    whatever its offset or DST; the per-year ledger key makes the later runs no-ops."""
    shop = _active_shop(shop_id)
    if shop is None:
        return "skipped"
    moment = parse_now(now)
    today = local(moment, shop.timezone).date()
    # First today's emails an earlier run granted but never queued (it died mid-dispatch).
    lost = without_email_jobs(unqueued_birthday_emails(db.session, shop_id, today))
    outcome = award_birthdays(db.session, shop_id, today, moment)
    db.session.commit()
    dispatch(lost + outcome.intents)
    return outcome.status


@app_job
def review_tiers_if_period_ended(shop_id: int, now: str | None = None) -> str:
    """Tiers set down as well as up, once per tier period start (app.loyalty.tier_review).

    Runs hourly: any hour of the shop's local first day does it; if none ran that day (workers
    or scheduler down), the next run catches it up, judged as of the period start.
    """
    if _active_shop(shop_id) is None:
        return "skipped"
    status = review_due_tiers(db.session, shop_id, parse_now(now))
    db.session.commit()
    return status


@app_job
def resend_lost_emails(shop_id: int, now: str | None = None) -> int:
    """Queue again the tier, referral, expired-points and code emails whose facts were committed
    but whose jobs never reached Redis or were lost from it (app.loyalty.owed_emails); returns
    how many. Hourly: a lost email goes out within the hour once Redis is back."""
    if _active_shop(shop_id) is None:
        return 0
    lost = without_email_jobs(owed_emails(db.session, shop_id, parse_now(now)))
    db.session.rollback()
    dispatch(lost)
    if lost:
        log.warning("queued again emails whose jobs were lost", extra={"shop_id": shop_id, "count": len(lost)})
    return len(lost)


@app_job
def refresh_expiring_tokens(now: str | None = None) -> int:
    """Enqueue a token refresh for each active Shopify shop whose token is about to expire."""
    from integrations.shopify.tokens import REFRESH_MARGIN

    horizon = parse_now(now) + REFRESH_MARGIN + TOKEN_REFRESH_EVERY
    shop_ids = db.session.scalars(
        select(Shop.id).where(Shop.platform == "shopify", Shop.status == "active",
                              Shop.token_expires_at.is_not(None), Shop.token_expires_at <= horizon)
        .order_by(Shop.id)
    ).all()
    db.session.rollback()
    for shop_id in shop_ids:
        enqueue("jobs.maintenance.refresh_token", shop_id, queue_name=QUEUE, **_now_kwargs(now))
    return len(shop_ids)


@app_job
def refresh_token(shop_id: int, now: str | None = None) -> str:
    """Refresh the shop's token if it is due (current_access_token decides, under a row lock)."""
    from integrations.shopify.tokens import current_access_token

    shop = _active_shop(shop_id)
    if shop is None or shop.platform != "shopify":
        return "skipped"
    try:
        current_access_token(db.session, shop, now=parse_now(now))
    except PermanentPlatformError as exc:
        # No refresh token, or it was revoked: only the merchant reopening the app helps.
        log.warning("token refresh impossible: %s", exc, extra={"shop_id": shop_id})
        return "needs-reauthorisation"
    db.session.rollback()
    return "ok"


# Failed jobs (`lojal jobs failed`, `lojal jobs retry`): RQ keeps them JOB_FAILURE_TTL seconds
# in each queue's FailedJobRegistry.

@dataclass(frozen=True)
class FailedJob:
    id: str
    func: str
    queue: str
    failed_at: datetime | None
    error: str  # the exception's last line


def failed_jobs(app: Flask) -> list[FailedJob]:
    found = []
    for name in QUEUE_NAMES:
        registry = queue(name, app).failed_job_registry
        job_ids = registry.get_job_ids()
        for job in Job.fetch_many(job_ids, connection=registry.connection, serializer=registry.serializer):
            if job is None:
                continue  # expired between the two reads
            result = job.latest_result()
            lines = (result.exc_string or "").strip().splitlines() if result else []
            found.append(FailedJob(job.id, job.func_name, name, job.ended_at, lines[-1] if lines else ""))
    return sorted(found, key=lambda j: j.failed_at or datetime.min.replace(tzinfo=UTC))


def retry_failed(app: Flask, job_id: str | None = None) -> list[str]:
    """Requeue one failed job (by id) or, with no id, all of them; returns the requeued ids."""
    requeued = []
    for name in QUEUE_NAMES:
        registry = queue(name, app).failed_job_registry
        for failed_id in registry.get_job_ids():
            if (job_id is None or failed_id == job_id) and requeue_failed(app, registry, failed_id):
                requeued.append(failed_id)
    return requeued


def requeue_failed(app: Flask, registry, job_id: str) -> bool:
    """Move a failed job back to its queue; False if it is no longer failed (another retry took
    it since it was listed, or it expired). In-process (no Redis) no worker would ever take it
    from a queue: it runs now, as an enqueue does in that mode."""
    try:
        if not runs_in_process(app):
            registry.requeue(job_id)
            return True
        job = Job.fetch(job_id, connection=registry.connection, serializer=registry.serializer)
    except (NoSuchJobError, InvalidJobOperation):
        return False
    if not registry.remove(job):
        return False
    queue(job.origin, app).enqueue_job(job)
    return True
